"""The one error hierarchy. Every expected failure is a ``KBError``.

Tasks never print tracebacks for these: ``common.cli`` turns them into one
``ERROR …`` line (plus ``TIP …`` when a fix is known) and a non-zero exit.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


class KBError(Exception):
    """An expected failure with a message for the user and an exit code."""

    code = 1

    def __init__(self, message: str, *, hint: str | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class UsageError(KBError):
    """Bad flag or argument: nothing was changed."""

    code = 2


class TreeError(KBError):
    """The Kubernetes tree is missing, not a tree, or not in a usable state."""

    code = 2


class ToolError(KBError):
    """A tool the task needs (go, git, make, a C cross compiler) is missing or too old."""

    code = 3


def exit_code_of(returncode: int) -> int:
    """A child's exit status as ours: its own when it is an ordinary failure code, else 1."""
    return returncode if 0 < returncode < 126 else 1


class CommandFailed(KBError):
    """An external command we ran exited non-zero."""

    def __init__(self, argv: Sequence[str], returncode: int, *, hint: str | None = None,
                 what: str | None = None) -> None:
        shown = " ".join(argv[:4]) + (" …" if len(argv) > 4 else "")
        super().__init__(f"{what or shown} failed (exit {returncode})", hint=hint,
                         code=exit_code_of(returncode))
        self.argv = tuple(argv)
        self.returncode = returncode


# The usual fix for a system error, by errno.
_HINTS = {
    errno.EROFS: "the file system is mounted read-only: work on a writable copy",
    errno.EACCES: "check the permissions (and the owner) of the path",
    errno.EPERM: "check the permissions, and for immutable files `lsattr`",
    errno.ENOSPC: "free some disk space",
    errno.ENOTDIR: "a file sits where a directory is needed: move it away",
    errno.EEXIST: "something is already there: move it away",
    errno.EISDIR: "a directory sits where a file is needed: move it away",
    errno.ENOENT: "check that the path exists",
}


class PathError(KBError):
    """A file-system operation failed: ``cannot <operation> <path>: <reason>``, with the usual fix as the TIP."""

    def __init__(self, exc: OSError, operation: str = "access",
                 path: str | os.PathLike[str] | None = None) -> None:
        paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
        if not paths and path is not None:
            paths = [os.fspath(path)]
        target = " -> ".join(paths) if paths else "(no path given)"
        super().__init__(f"cannot {operation} {target}: {exc.strerror or type(exc).__name__}",
                         hint=_HINTS.get(exc.errno or 0))
        self.operation = operation
        self.errno = exc.errno


@contextmanager
def file_op(operation: str, path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """An OSError in the block becomes a ``PathError`` saying what was being done to which path.

    The code doing the operation knows what it was (as pypa/build's ``_handle_backend`` knows the
    hook it called); the path comes from the OSError, else from ``path``. Wrap the I/O call itself,
    never code whose callers catch an OSError on purpose (a missing file meaning "absent").
    """
    try:
        yield
    except OSError as exc:
        raise PathError(exc, operation, path) from exc

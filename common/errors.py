"""The one error hierarchy. Every expected failure is a ``KBError``.

Tasks never print tracebacks for these: ``common.cli`` turns them into one
``ERROR …`` line (plus ``TIP …`` when a fix is known) and a non-zero exit.
"""

from __future__ import annotations

from collections.abc import Sequence


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

"""Faults nobody listed, as one line: OS errors, config files invoke can't read, errors before a task runs.

``as_error`` turns an exception the funnel catches into a ``KBError`` that
names the operation and the path; ``install_hook`` covers what happens in
invoke itself before any task body runs (it parses the project's and -f
config files after loading tasks.py; see install_hook for what comes before).
``KBUILD_TRACEBACK=1`` shows the traceback as well.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import traceback
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from common.config import ConfigError, check, load_error
from common.errors import KBError

TRACEBACK_ENV = "KBUILD_TRACEBACK"

# Calls whose name says what was being done to a path, innermost first in a traceback.
_OPERATIONS = {
    "mkdir": "create directory", "makedirs": "create directory", "touch": "create", "open": "open",
    "write_text": "write", "write_bytes": "write", "read_text": "read", "read_bytes": "read",
    "replace": "rename", "rename": "rename", "symlink_to": "create link", "symlink": "create link",
    "unlink": "remove", "remove": "remove", "rmdir": "remove directory", "rmtree": "remove",
    "chmod": "change mode of", "stat": "stat", "lstat": "stat", "scandir": "list", "iterdir": "list",
    "listdir": "list", "copyfile": "copy", "copy2": "copy", "copytree": "copy", "copy": "copy",
    "utime": "set times of", "link": "link", "readlink": "read link", "execute_child": "run",
    "_execute_child": "run", "chdir": "change to", "mkstemp": "create", "access": "check",
}
_OPENERS = {"write_text", "write_bytes", "read_text", "read_bytes", "touch"}
_CALL = re.compile(r"\.?(\w+)\(")


def wants_traceback(environ: Any = None) -> bool:
    """KBUILD_TRACEBACK set to anything but '', 0, false or no."""
    value = (environ if environ is not None else os.environ).get(TRACEBACK_ENV, "")
    return value.strip().lower() not in ("", "0", "false", "no")


def _operation(tb: TracebackType | None) -> str | None:
    """What the innermost frames were doing: the stdlib function, or the call on our line."""
    found: list[str] = []
    for frame in reversed(traceback.extract_tb(tb)):
        names = [frame.name] if frame.name in _OPERATIONS else [
            n for n in reversed(_CALL.findall(frame.line or "")) if n in _OPERATIONS][:1]
        found += names
        if found and (found[0] != "open" or len(found) > 1):
            break
    if len(found) > 1 and found[0] == "open" and found[1] in _OPENERS:
        return _OPERATIONS[found[1]]  # Path.read_text opens: "read" says more than "open"
    return _OPERATIONS[found[0]] if found else None


def describe_os_error(exc: OSError, tb: TracebackType | None = None) -> KBError:
    """One line: the operation, the path(s) and the system's reason; a TIP where the reason has a usual fix."""
    op = _operation(tb if tb is not None else exc.__traceback__) or "access"
    reason = exc.strerror or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    target = " -> ".join(paths) if paths else "(no path given)"
    hint = {
        errno.EROFS: "the file system is mounted read-only: work on a writable copy",
        errno.EACCES: "check the permissions (and the owner) of the path",
        errno.EPERM: "check the permissions, and for immutable files `lsattr`",
        errno.ENOSPC: "free some disk space",
        errno.ENOTDIR: "a file sits where a directory is needed: move it away",
        errno.EEXIST: "something is already there: move it away",
        errno.EISDIR: "a directory sits where a file is needed: move it away",
        errno.ENOENT: "check that the path exists",
    }.get(exc.errno or 0)
    return KBError(f"cannot {op} {target}: {reason}", hint=hint)


def as_error(exc: BaseException, tb: TracebackType | None = None) -> KBError | None:
    """The KBError to show for ``exc``, or None when it is a bug and should stay a traceback."""
    if isinstance(exc, KBError):
        return exc
    tb = tb if tb is not None else exc.__traceback__
    config = _config_in(tb)
    if config is not None:  # a value of the wrong shape that invoke choked on while merging
        try:
            check(config)
        except ConfigError as bad:
            return bad
    loading = _loading_file(tb)
    if loading is not None and not isinstance(exc, OSError | KeyboardInterrupt):
        return load_error(loading, exc)
    if isinstance(exc, OSError):
        return describe_os_error(exc, tb)
    if type(exc).__name__ in ("AmbiguousMergeError", "UnknownFileType", "UnpicklableConfigMember"):
        return ConfigError(f"invoke could not merge its config files: {exc}",
                           hint="check invoke.yaml, ~/.invoke.yaml and any -f file")
    return None


def _frames(tb: TracebackType | None) -> list[FrameType]:
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _loading_file(tb: TracebackType | None) -> str | None:
    """The config file invoke was parsing when ``tb`` was raised (its Config._load_file frame)."""
    for frame in _frames(tb):
        if frame.f_code.co_name == "_load_file" and "filepath" in frame.f_locals:
            return str(frame.f_locals["filepath"])
    return None


def _config_in(tb: TracebackType | None) -> Any:
    from invoke.config import Config

    for frame in reversed(_frames(tb)):
        for value in (frame.f_locals.get("self"), frame.f_locals.get("config")):
            if isinstance(value, Config):
                return value
            inner = getattr(value, "config", None)
            if isinstance(inner, Config):
                return inner
    return None


def _hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None,
          fallback: Callable[[type[BaseException], BaseException, TracebackType | None], Any]) -> None:
    from common.cli import error

    if isinstance(exc, KeyboardInterrupt) and not wants_traceback():
        error("interrupted")  # as the funnel says it; 130 as a shell reports a Ctrl-C
        sys.stderr.flush()
        sys.exit(130)
    shown = as_error(exc, tb)
    if shown is None or wants_traceback():
        fallback(kind, exc, tb)
        if shown is None:
            return
    error(shown.message, shown.hint)
    sys.stderr.flush()
    sys.exit(shown.code)  # from an excepthook, SystemExit sets the process's exit status


def install_hook() -> None:
    """Report faults raised in invoke itself (config parsing, merging) before any task runs, as one line.

    It is installed when invoke imports tasks.py, so it can't cover what comes before: Python's own
    start-up (site's .pth files), `inv` importing invoke, and invoke reading /etc/invoke.yaml and
    ~/.invoke.yaml (Program.create_config, the first step of Program.run; invoke skips only a missing
    file, so HOME=/dev/null is its NotADirectoryError traceback). A Ctrl-C there is Python's
    KeyboardInterrupt traceback (or invoke's silent exit 1, once Program.run has started).
    """
    previous = sys.excepthook
    if getattr(previous, "__kbuild__", False):
        return

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _hook(kind, exc, tb, previous)

    hook.__kbuild__ = True  # type: ignore[attr-defined]  # marks ours, so a re-import doesn't stack hooks
    sys.excepthook = hook

"""Faults nobody listed, as one line: an OSError no code translated, config files invoke can't read.

Errors are translated where they happen (``common.errors.file_op`` at each I/O site), so this
module only decides what to show: ``as_error`` gives the ``KBError`` for an exception the funnel
or the hook catches; ``install_hook`` covers what happens in invoke itself before any task body
runs (it parses the project's and -f config files after loading tasks.py; see install_hook for
what comes before). Which config file is at fault is found by reading the files invoke reads
(``common.config.fault``), never from invoke's internals. ``KBUILD_TRACEBACK=1`` shows the
traceback as well.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import NoReturn

from common.config import ConfigError, config_files, fault
from common.console import error, wants_traceback
from common.errors import KBError, PathError

__all__ = ["as_error", "install_hook"]

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]


def as_error(exc: BaseException) -> KBError | None:
    """The KBError to show for ``exc``, or None when it is a bug and should stay a traceback."""
    from invoke.config import AmbiguousMergeError
    from invoke.exceptions import UncastableEnvVar, UnknownFileType, UnpicklableConfigMember

    if isinstance(exc, KBError):
        return exc
    if isinstance(exc, OSError):  # no code said what it was doing: the path and the reason still help
        return PathError(exc)
    if isinstance(exc, AmbiguousMergeError | UnknownFileType | UnpicklableConfigMember):
        return ConfigError(f"invoke could not merge its config files: {exc}",
                           hint="check invoke.yaml, ~/.invoke.yaml and any -f file")
    if isinstance(exc, UncastableEnvVar):
        return ConfigError(f"invoke could not use an INVOKE_* environment variable: {exc}",
                           hint="unset it: only plain string settings can come from the environment")
    return None


def _hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None,
          fallback: ExceptHook, project: Path | None) -> None:
    if isinstance(exc, KeyboardInterrupt) and not wants_traceback():
        error("interrupted")  # as the funnel says it; 130 as a shell reports a Ctrl-C
        sys.stderr.flush()
        sys.exit(130)
    if isinstance(exc, BrokenPipeError):
        reader_left()
    shown = exc if isinstance(exc, KBError) else (
        fault(config_files(project, sys.argv, os.environ)) or as_error(exc))
    if shown is None or wants_traceback():
        fallback(kind, exc, tb)
        if shown is None:
            return
    error(shown.message, shown.hint)
    sys.stderr.flush()
    sys.exit(shown.code)  # from an excepthook, SystemExit sets the process's exit status


def reader_left() -> NoReturn:
    """The reader of our output went away (`kbuild --list | head -1`): stop quietly, as `git log | head`
    does (141: a shell's SIGPIPE status), with stdout pointed at /dev/null so the exit flush is silent."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(141)


def install_hook(project: str | os.PathLike[str] | None = None) -> None:
    """Report faults raised in invoke itself (config parsing, merging) before any task runs, as one line.

    ``project`` is the directory of tasks.py, where invoke looks for the project's invoke.yaml.
    It is installed when invoke imports tasks.py, so it can't cover what comes before: Python's own
    start-up (site's .pth files), `inv` importing invoke, and invoke reading /etc/invoke.yaml and
    ~/.invoke.yaml (Program.create_config, the first step of Program.run; invoke skips only a missing
    file, so HOME=/dev/null is its NotADirectoryError traceback). A Ctrl-C there is Python's
    KeyboardInterrupt traceback (or invoke's silent exit 1, once Program.run has started).
    """
    previous = sys.excepthook
    if getattr(previous, "__kbuild__", False):
        return
    where = Path(project) if project is not None else None

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _hook(kind, exc, tb, previous, where)

    hook.__kbuild__ = True  # type: ignore[attr-defined]  # marks ours, so a re-import doesn't stack hooks
    sys.excepthook = hook

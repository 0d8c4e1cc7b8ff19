"""Task decorator with the error funnel, and small output helpers.

``task`` wraps ``invoke.task`` so that a ``KBError`` raised anywhere below a
task becomes ``ERROR <message>`` / ``TIP <hint>`` on stderr and an
``invoke.Exit`` with the error's code, never a traceback. Errors are translated
where they happen (``common.errors.file_op``); the funnel only prints. An OSError
that no code translated still gets one line (``common.faults``); anything else is
a bug and keeps its traceback. ``KBUILD_TRACEBACK=1`` prints the traceback of
every failure before its one line.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import Task
from invoke.tasks import task as invoke_task

from common.config import check as check_config
from common.config import config_files
from common.console import error, info, wants_traceback
from common.faults import as_error, install_hook, reader_left

__all__ = ["as_list", "error", "funnel", "info", "install_hook", "task"]

P = ParamSpec("P")
R = TypeVar("R")


def funnel(body: Callable[P, R]) -> Callable[P, R]:
    """Check kbuild's config keys, then turn a KBError (or a stray OSError) into one line and a non-zero exit."""
    project = Path(inspect.getfile(body)).parent  # where invoke looks for the project's invoke.yaml

    @functools.wraps(body)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            if args and isinstance(args[0], Context):
                merged = dict(args[0].config.items())  # invoke's merged config, as plain data
                check_config(merged, config_files(project, sys.argv, os.environ))
            return body(*args, **kwargs)
        except KeyboardInterrupt:
            error("interrupted")
            raise Exit(code=130) from None
        except BrokenPipeError:
            reader_left()
        except Exception as exc:
            shown = as_error(exc)
            if shown is None:
                raise  # a bug: keep the traceback
            if wants_traceback():
                traceback.print_exc()
            error(shown.message, shown.hint)
            raise Exit(code=shown.code) from None

    return wrapper


def task(*args: object, **kwargs: object) -> Callable[[Callable[P, R]], Task[Callable[P, R]]]:
    """``invoke.task`` with the error funnel applied and no automatic short flags."""
    kwargs.setdefault("auto_shortflags", False)

    def decorate(body: Callable[P, R]) -> Task[Callable[P, R]]:
        made = invoke_task(funnel(body), *args, **kwargs)
        if not isinstance(made, Task):  # invoke.task is annotated as returning a bare Callable
            raise TypeError(f"invoke.task made {type(made).__name__}, not a Task")
        return made

    return decorate


def as_list(value: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Normalise an invoke ``iterable`` flag: [] on the CLI, None from Python."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)

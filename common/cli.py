"""Task decorator with the error funnel, and small output helpers.

``task`` wraps ``invoke.task`` so that a ``KBError`` raised anywhere below a
task becomes ``ERROR <message>`` / ``TIP <hint>`` on stderr and an
``invoke.Exit`` with the error's code, never a traceback. OS errors and bad
config values get the same treatment (``common.faults``); anything else is a
bug and keeps its traceback. ``KBUILD_TRACEBACK=1`` prints the traceback of
every failure before its one line.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task as invoke_task

from common.config import check as check_config
from common.faults import as_error, install_hook, wants_traceback

__all__ = ["as_list", "error", "funnel", "info", "install_hook", "task"]


def _colour(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def error(message: str, hint: str | None = None) -> None:
    """Print an error (and a tip) the way every task does."""
    from common.redact import redact

    red, yellow, reset = ("\033[31m", "\033[33m", "\033[0m") if _colour(sys.stderr) else ("", "", "")
    print(f"{red}ERROR{reset} {redact(message)}", file=sys.stderr)  # credentials in URLs become ***
    if hint:
        print(f"{yellow}TIP{reset} {redact(hint)}", file=sys.stderr)


def info(message: str) -> None:
    """A progress line on stderr, so stdout stays clean for --env/--json output."""
    from common.redact import redact

    print(redact(message), file=sys.stderr, flush=True)


def funnel(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn KBError, OSError and bad config values into a one-line message and a non-zero exit."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            if args and isinstance(args[0], Context):
                check_config(args[0].config)
            return body(*args, **kwargs)
        except KeyboardInterrupt:
            error("interrupted")
            raise Exit(code=130) from None
        except Exception as exc:
            shown = as_error(exc)
            if shown is None:
                raise  # a bug: keep the traceback
            if wants_traceback():
                traceback.print_exc()
            error(shown.message, shown.hint)
            raise Exit(code=shown.code) from None

    return wrapper


def task(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """``invoke.task`` with the error funnel applied and no automatic short flags."""
    kwargs.setdefault("auto_shortflags", False)

    # Any, not invoke.Task: invoke.task itself is annotated as returning a bare Callable.
    def decorate(body: Callable[..., Any]) -> Any:
        return invoke_task(funnel(body), *args, **kwargs)

    return decorate


def as_list(value: list[str] | tuple[str, ...] | str | None) -> list[str]:
    """Normalise an invoke ``iterable`` flag: [] on the CLI, None from Python."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)

"""Task decorator with the error funnel, and small output helpers.

``task`` wraps ``invoke.task`` so that a ``KBError`` raised anywhere below a
task becomes ``ERROR <message>`` / ``TIP <hint>`` on stderr and an
``invoke.Exit`` with the error's code, never a traceback.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from invoke.exceptions import Exit
from invoke.tasks import task as invoke_task

from common.errors import KBError


def _colour(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def error(message: str, hint: str | None = None) -> None:
    """Print an error (and a tip) the way every task does."""
    red, yellow, reset = ("\033[31m", "\033[33m", "\033[0m") if _colour(sys.stderr) else ("", "", "")
    print(f"{red}ERROR{reset} {message}", file=sys.stderr)
    if hint:
        print(f"{yellow}TIP{reset} {hint}", file=sys.stderr)


def info(message: str) -> None:
    """A progress line on stderr, so stdout stays clean for --env/--json output."""
    print(message, file=sys.stderr, flush=True)


def funnel(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn KBError into a one-line message and a non-zero exit."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except KBError as exc:
            error(exc.message, exc.hint)
            raise Exit(code=exc.code) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise Exit(code=130) from None

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

"""What kbuild says on stderr: ``ERROR …`` / ``TIP …`` lines and progress lines.

Both the task funnel (common.cli) and the start-up hook (common.faults) print through here, so
neither needs the other. stdout stays clean for --env/--json output.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from common.redact import redact

TRACEBACK_ENV = "KBUILD_TRACEBACK"


def colour(stream: object) -> bool:
    """NO_COLOR wins, then FORCE_COLOR, else colour only on a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False


def error(message: str, hint: str | None = None) -> None:
    """Print an error (and a tip) the way every task does."""
    red, yellow, reset = ("\033[31m", "\033[33m", "\033[0m") if colour(sys.stderr) else ("", "", "")
    print(f"{red}ERROR{reset} {redact(message)}", file=sys.stderr)  # credentials in URLs become ***
    if hint:
        print(f"{yellow}TIP{reset} {redact(hint)}", file=sys.stderr)


def info(message: str) -> None:
    """A progress line on stderr, so stdout stays clean for --env/--json output."""
    print(redact(message), file=sys.stderr, flush=True)


def wants_traceback(environ: Mapping[str, str] | None = None) -> bool:
    """KBUILD_TRACEBACK set to anything but '', 0, false or no."""
    value = (environ if environ is not None else os.environ).get(TRACEBACK_ENV, "")
    return value.strip().lower() not in ("", "0", "false", "no")


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Inside: everything written to stdout goes to stderr, this process's and its children's (file
    descriptor 1 itself), so that stdout can carry one JSON document (`--json`) once it is restored."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


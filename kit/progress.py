"""Progress for the kit's big parts: common.progress's bars (one per part, bytes done of its size) on a
terminal, else kit.unpack's plain lines with a heartbeat (CI)."""

from __future__ import annotations

import sys
from typing import IO

from common.progress import Bars, on_terminal
from kit.unpack import PlainReporter, Reporter


def make_reporter(stream: IO[str] | None = None) -> Reporter:
    stream = stream or sys.stderr
    return Bars(stream) if on_terminal(stream) else PlainReporter(stream)

"""Progress for image work: live bars on a terminal; plain lines and a heartbeat elsewhere (CI).

The engine work reports ``(image, state, bytes)``; this maps it onto common.progress's bars and lines."""

from __future__ import annotations

import sys
from typing import IO

from common.progress import HEARTBEAT_SECONDS, Bars, BarStyle, Lines, mb, on_terminal

DONE = ("present", "pulled", "retagged", "failed")


class LineProgress(Lines):
    """One line per state change, and a heartbeat when nothing was said for a while. No escape codes."""

    def __init__(self, stream: IO[str] | None = None, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        super().__init__(stream, every=heartbeat, beat=self._busy)
        self.state: dict[str, tuple[str, int]] = {}

    def __call__(self, name: str, state: str, nbytes: int) -> None:
        with self.lock:
            previous = self.state.get(name)
            self.state[name] = (state, nbytes)
            if previous and previous[0] == state:
                return  # byte counts alone don't make a line
            self.say(f"{name}: {state}")

    def _busy(self) -> str:
        busy = [f"{n} ({s}, {mb(b)})" for n, (s, b) in self.state.items() if s.startswith(("pulling", "resolving"))]
        return "still working: " + ("; ".join(busy) if busy else "waiting")


class LiveProgress(Bars):
    """rich progress bars, one per image (terminal only)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(stream or sys.stderr, BarStyle(detail=True))

    def __call__(self, name: str, state: str, nbytes: int) -> None:
        with self.lock:
            if name not in self:
                self.start(name, None, detail=state)
            self.update(name, completed=nbytes, detail=state, total=nbytes if state in DONE else None)


def make_progress(stream: IO[str] | None = None) -> LineProgress | LiveProgress:
    stream = stream or sys.stderr
    return LiveProgress(stream) if on_terminal(stream) else LineProgress(stream)

"""Progress for image work: live bars on a terminal; plain lines and a heartbeat elsewhere (CI)."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

HEARTBEAT_SECONDS = 30.0


def _mb(n: int) -> str:
    return f"{n / 1048576:.1f} MB"


class LineProgress:
    """One line per state change, and a heartbeat when nothing was said for a while. No escape codes."""

    def __init__(self, stream: TextIO = sys.stderr, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.stream = stream
        self.heartbeat = heartbeat
        self.state: dict[str, tuple[str, int]] = {}
        self.lock = threading.Lock()
        self.last_line = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LineProgress:
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=1)

    def __call__(self, name: str, state: str, nbytes: int) -> None:
        with self.lock:
            previous = self.state.get(name)
            self.state[name] = (state, nbytes)
            if previous and previous[0] == state:
                return  # byte counts alone don't make a line
            self._say(f"{name}: {state}")

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)
        self.last_line = time.monotonic()

    def _beat(self) -> None:
        while not self._stop.wait(min(self.heartbeat, 5.0)):
            with self.lock:
                if time.monotonic() - self.last_line < self.heartbeat:
                    continue
                busy = [f"{n} ({s}, {_mb(b)})" for n, (s, b) in self.state.items()
                        if s.startswith(("pulling", "resolving"))]
                self._say("still working: " + ("; ".join(busy) if busy else "waiting"))


class LiveProgress:
    """rich progress bars, one per image (terminal only)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TextColumn("{task.fields[state]}"), TimeElapsedColumn(),
                                 console=None, transient=False)
        self.ids: dict[str, Any] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> LiveProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, name: str, state: str, nbytes: int) -> None:
        with self.lock:
            if name not in self.ids:
                self.ids[name] = self.progress.add_task(name, total=None, state=state)
            done = state in ("present", "pulled", "retagged", "failed")
            self.progress.update(self.ids[name], completed=nbytes, state=state,
                                 total=nbytes if done else None)


def make_progress(stream: TextIO = sys.stderr) -> LineProgress | LiveProgress:
    import os

    if stream.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb":
        return LiveProgress()
    return LineProgress(stream)

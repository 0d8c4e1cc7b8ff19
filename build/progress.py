"""Progress of a go build: packages compiled so far against what the last build of the same
target compiled, elapsed time and an estimate of what is left.

go prints the import path of each package it compiles when given ``-v`` (cached packages are
not printed), on stderr, between its other output. :class:`GoOutput` counts those lines and
passes every other line (errors, warnings) through unchanged. On a terminal the count is a
rich bar; elsewhere (CI) a plain line every ``HEARTBEAT_SECONDS``: both are common.progress's,
this module only reads go's output. The history (packages and seconds of the last build per target
and platform) lives beside the up-to-date stamps. :class:`PhaseClock` times the phases of the tree's
scripts from their status lines (the release's).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from common.progress import HEARTBEAT_SECONDS, Bars, BarStyle, Ticker, duration, on_terminal, progress_seconds

_IMPORT_PATH = re.compile(r"^[A-Za-z0-9_.~+\-]+(?:/[A-Za-z0-9_.~+\-]+)*$")


def is_package_line(line: str) -> bool:
    """True for the bare import paths ``go build -v`` prints (never for an error or a `# pkg` header)."""
    return bool(_IMPORT_PATH.match(line)) and line not in ("go", "ok")


@dataclass(frozen=True)
class Estimate:
    """What the last build of this target and platform did."""

    packages: int
    seconds: float


class History:
    """``progress.json`` beside the stamps: {key: {"packages": n, "seconds": s}}; garbage reads as empty."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, object]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> Estimate | None:
        item = self._load().get(key)
        if not isinstance(item, dict):
            return None
        packages, seconds = item.get("packages"), item.get("seconds")
        if isinstance(packages, int) and isinstance(seconds, (int, float)) and packages > 0 and seconds >= 0:
            return Estimate(packages, float(seconds))
        return None

    def put(self, key: str, estimate: Estimate) -> None:
        """Best effort: a read-only or missing directory just means no estimate next time."""
        data = self._load()
        data[key] = {"packages": estimate.packages, "seconds": round(estimate.seconds, 1)}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)
        except OSError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass


class _Display:
    hits: Callable[[], tuple[int, int]] | None = None  # (remote, local) cache hits, with a remote cache

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def cache_hits(self) -> str:
        """", cache hits: 812 remote, 40 local" while a remote cache is in use (go -v lists compiles only)."""
        if self.hits is None:
            return ""
        remote, local = self.hits()
        return f", cache hits: {remote} remote, {local} local"

    def update(self, done: int, elapsed: float) -> None: ...

    def close(self, done: int, elapsed: float, ok: bool) -> None: ...

    def write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


class PlainDisplay(_Display):
    """A line every ``every`` seconds: "kube-apiserver linux/amd64: 812/1930 packages, 1m30s"."""

    def __init__(self, label: str, estimate: Estimate | None, say: Callable[[str], None] | None,
                 stream: TextIO, every: float = HEARTBEAT_SECONDS) -> None:
        super().__init__(stream)
        self.label, self.estimate, self.every = label, estimate, every
        self.say = say or self.write
        self.last = 0.0

    def line(self, done: int, elapsed: float) -> str:
        total = f"/{self.estimate.packages}" if self.estimate else ""
        left = ""
        if self.estimate and self.estimate.seconds > elapsed:
            left = f", about {duration(self.estimate.seconds - elapsed)} left"
        compiled = " compiled" if self.hits else ""
        return f"{self.label}: {done}{total} packages{compiled}{self.cache_hits()}, {duration(elapsed)}{left}"

    def update(self, done: int, elapsed: float) -> None:
        if elapsed - self.last >= self.every:
            self.last = elapsed
            self.say(self.line(done, elapsed))


class RichDisplay(_Display):
    """A rich bar: packages done of the expected count, elapsed, time left from the last build."""

    def __init__(self, label: str, estimate: Estimate | None, stream: TextIO) -> None:
        super().__init__(stream)
        self.label, self.estimate = label, estimate
        self.bars = Bars(stream, BarStyle(unit="packages", detail=True, after=True, transient=True))
        self.bars.start(label, estimate.packages if estimate else None, detail="packages")

    def update(self, done: int, elapsed: float) -> None:
        left = ""
        total = None
        if self.estimate:
            total = max(self.estimate.packages, done)
            if self.estimate.seconds > elapsed:
                left = f"~{duration(self.estimate.seconds - elapsed)} left"
        self.bars.update(self.label, completed=done, total=total, detail=f"packages{self.cache_hits()}", after=left)

    def close(self, done: int, elapsed: float, ok: bool) -> None:
        self.bars.close()

    def write(self, line: str) -> None:
        self.bars.say(line)


class GoOutput:
    """Feed it go's stderr lines: package lines count, the rest go to ``passthrough`` unchanged.
    A background tick keeps the display (and CI's heartbeat) moving while go is quiet."""

    def __init__(self, label: str, estimate: Estimate | None, *, stream: TextIO = sys.stderr,
                 say: Callable[[str], None] | None = None, live: bool | None = None,
                 every: float | None = None, hits: Callable[[], tuple[int, int]] | None = None) -> None:
        self.stream = stream
        self.packages = 0
        self.start = time.monotonic()
        live = on_terminal(stream) if live is None else live
        self.display: _Display = (RichDisplay(label, estimate, stream) if live else
                                  PlainDisplay(label, estimate, say, stream,
                                               progress_seconds() if every is None else every))
        self.display.hits = hits
        self._lock = threading.Lock()
        self._ticker = Ticker(self._tick, 1.0)

    def __enter__(self) -> GoOutput:
        self._ticker.start()
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._ticker.stop()
        self.display.close(self.packages, self.elapsed, exc_type is None)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def feed(self, line: str) -> None:
        text = line.rstrip("\n")
        with self._lock:
            if is_package_line(text):
                self.packages += 1
                self.display.update(self.packages, self.elapsed)
                return
            self.display.write(text)

    def _tick(self) -> None:
        with self._lock:
            self.display.update(self.packages, self.elapsed)


_PHASE = re.compile(r"^\+\+\+ \[\d{4} \d{2}:\d{2}:\d{2}\] (?P<what>.+?)\s*$")


class PhaseClock:
    """The phases of one of the tree's scripts: each `+++ [MMDD HH:MM:SS] ...` status line
    (kube::log::status) starts one. ``feed`` returns the line saying how long the previous took."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.current: str | None = None
        self.started = now()

    def feed(self, line: str) -> str | None:
        m = _PHASE.match(line)
        if not m:
            return None
        done = self.finish()
        self.current, self.started = m.group("what"), self.now()
        return done

    def finish(self) -> str | None:
        """The line for the phase running now, if any (call it when the script ends)."""
        if self.current is None:
            return None
        line = f"+++ {duration(self.now() - self.started)} for: {self.current}"
        self.current = None
        return line

    def elapsed(self) -> float:
        return self.now() - self.started

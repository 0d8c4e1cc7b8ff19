"""Progress of a go build: packages compiled so far against what the last build of the same
target compiled, elapsed time and an estimate of what is left.

go prints the import path of each package it compiles when given ``-v`` (cached packages are
not printed), on stderr, between its other output. :class:`GoOutput` counts those lines and
passes every other line (errors, warnings) through unchanged. On a terminal the count is a
rich bar; elsewhere (CI) a plain line every ``HEARTBEAT_SECONDS``. The history (packages and
seconds of the last build per target and platform) lives beside the up-to-date stamps.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

HEARTBEAT_SECONDS = 30.0


def progress_seconds(environ: Mapping[str, str] = os.environ) -> float:
    """How often the plain (CI) lines come: KBUILD_PROGRESS_SECONDS, else every 30 s."""
    from common.config import env_number

    return env_number(environ, "KBUILD_PROGRESS_SECONDS", HEARTBEAT_SECONDS, what="seconds between progress lines")


_IMPORT_PATH = re.compile(r"^[A-Za-z0-9_.~+\-]+(?:/[A-Za-z0-9_.~+\-]+)*$")


def is_package_line(line: str) -> bool:
    """True for the bare import paths ``go build -v`` prints (never for an error or a `# pkg` header)."""
    return bool(_IMPORT_PATH.match(line)) and line not in ("go", "ok")


def duration(seconds: float) -> str:
    """90 → 1m30s; 5 → 5s."""
    s = int(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@dataclass(frozen=True)
class Estimate:
    """What the last build of this target and platform did."""

    packages: int
    seconds: float


class History:
    """``progress.json`` beside the stamps: {key: {"packages": n, "seconds": s}}; garbage reads as empty."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
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
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        super().__init__(stream)
        self.estimate = estimate
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("packages{task.fields[hits]}"), TimeElapsedColumn(),
                                 TextColumn("{task.fields[left]}"),
                                 console=Console(file=stream), transient=True)
        self.progress.start()
        self.task = self.progress.add_task(label, total=estimate.packages if estimate else None, left="", hits="")

    def update(self, done: int, elapsed: float) -> None:
        left = ""
        total = None
        if self.estimate:
            total = max(self.estimate.packages, done)
            if self.estimate.seconds > elapsed:
                left = f"~{duration(self.estimate.seconds - elapsed)} left"
        self.progress.update(self.task, completed=done, total=total, left=left, hits=self.cache_hits())

    def close(self, done: int, elapsed: float, ok: bool) -> None:
        self.progress.stop()

    def write(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)


def on_terminal(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


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
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> GoOutput:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._done.set()
        self._thread.join(timeout=2)
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
        while not self._done.wait(1.0):
            with self._lock:
                self.display.update(self.packages, self.elapsed)


class Heartbeat:
    """A line every ``every`` seconds of silence, so a quiet CI job is not taken for a hung one."""

    def __init__(self, label: str, every: float = HEARTBEAT_SECONDS) -> None:
        self.label, self.every = label, every
        self.start = self.last = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def touch(self) -> None:
        self.last = time.monotonic()

    def _run(self) -> None:
        from common.cli import info

        while not self._done.wait(min(5.0, self.every)):
            if time.monotonic() - self.last >= self.every:
                info(f"... {self.label}: still running, {time.monotonic() - self.start:.0f}s")
                self.last = time.monotonic()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()


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

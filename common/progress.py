"""Progress, one mechanism for build, images, kit and release.

On a terminal (a tty, not CI, TERM not dumb: :func:`on_terminal`) animated rich bars, one per
named item (:class:`Bars`). Elsewhere, in a CI log: plain lines, one per state change, and a
heartbeat line after ``HEARTBEAT_SECONDS`` without one (:class:`Lines`), so a quiet job is not taken
for a hung one; never an escape code. Colour on the terminal follows NO_COLOR and FORCE_COLOR (rich's
console reads both); FORCE_COLOR never turns a log into an animation, since only :func:`on_terminal`
chooses the bars. :class:`Ticker` is the one background thread every display runs on.

What each user reads from its source stays beside it, as a thin adapter over this module:
go's ``-v`` package lines (build.progress), the engine's pull events (images.progress), the kit's
parts (kit.progress, kit.unpack).

Standard library only at import (rich is imported by :class:`Bars` when it is made): install.sh
carries this module, with kit.unpack, to machines where only Python is present.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Self  # not at run time: install.sh may meet a Python older than 3.11

    from rich.progress import Progress, ProgressColumn, Task, TaskID

HEARTBEAT_SECONDS = 30.0


def on_terminal(stream: IO[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Animate only into a terminal: a tty, outside CI, and not TERM=dumb (FORCE_COLOR is colour, not a tty)."""
    return stream.isatty() and not environ.get("CI") and environ.get("TERM") != "dumb"


def progress_seconds(environ: Mapping[str, str] = os.environ) -> float:
    """How often the plain (CI) lines come: KBUILD_PROGRESS_SECONDS, else every 30 s."""
    from common.config import env_number

    return env_number(environ, "KBUILD_PROGRESS_SECONDS", HEARTBEAT_SECONDS, what="seconds between progress lines")


def duration(seconds: float) -> str:
    """90 → 1m30s; 5 → 5s."""
    s = int(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def mb(nbytes: int) -> str:
    """3145728 → 3.0 MiB (common.units.size, the one size formatter)."""
    from common.units import size

    return size(nbytes)


class Ticker:
    """Calls ``tick`` every ``period`` seconds on a daemon thread, from ``start`` until ``stop``."""

    def __init__(self, tick: Callable[[], None], period: float) -> None:
        self.tick = tick
        self.period = max(period, 0.01)  # a zero interval must not spin a core
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=wait)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.tick()


class Lines:
    """Plain progress for a log: ``say`` writes one line; after ``every`` seconds without one, the line
    ``beat()`` returns is said (a heartbeat). ``touch`` counts other output as a sign of life.
    ``out`` replaces printing to ``stream`` (default: stderr). ``lock`` guards the caller's state too."""

    def __init__(self, stream: IO[str] | None = None, *, every: float = HEARTBEAT_SECONDS,
                 beat: Callable[[], str] | None = None, out: Callable[[str], None] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.beat = beat
        self.out = out or self._print
        self.lock = threading.RLock()
        self.last = time.monotonic()
        self._ticker = Ticker(self._check, min(5.0, every))

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def say(self, line: str) -> None:
        with self.lock:
            self.out(line)
            self.last = time.monotonic()

    def touch(self) -> None:
        self.last = time.monotonic()

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def _check(self) -> None:
        with self.lock:
            if self.beat is not None and time.monotonic() - self.last >= self.every:
                self.say(self.beat())


class Heartbeat(Lines):
    """A line every ``every`` seconds of silence while a command runs ("... make: still running, 90s"),
    so a quiet CI job is not taken for a hung one. ``touch`` on each line of its output; ``label``
    may change (the phase running now). Its lines go through common.cli's ``info`` (credentials hidden)."""

    def __init__(self, label: str, every: float = HEARTBEAT_SECONDS) -> None:
        super().__init__(every=every, beat=self._line, out=_info)
        self.label = label
        self.began = time.monotonic()

    def _line(self) -> str:
        return f"... {self.label}: still running, {time.monotonic() - self.began:.0f}s"


def _info(line: str) -> None:
    from common.cli import info

    info(line)


@dataclass(frozen=True)
class BarStyle:
    """The columns of a bar: name, bar, the count (``unit`` "bytes": 1.2 MiB/3.4 MiB; else 3/10), then if
    asked the bar's ``detail`` text ("packages", a pull's state), elapsed time, its ``after`` text."""

    unit: str = "bytes"
    detail: bool = False
    after: bool = False
    transient: bool = False  # the bars go when done (a build) or stay on screen (images, kit parts)


def _size_column() -> ProgressColumn:
    """done/total in common.units.size's words (rich's DownloadColumn counts in decimal MB)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    from common.units import size

    class SizeColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            total = f"/{size(task.total)}" if task.total else ""
            return Text(f"{size(task.completed)}{total}", style="progress.download")

    return SizeColumn()


class Bars:
    """Animated rich bars on ``stream``, one per name; other output goes through ``say``, above them.
    The methods are the kit's Reporter protocol (start, advance, finish, say, close) and ``update``."""

    def __init__(self, stream: IO[str], style: BarStyle = BarStyle()) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        count: ProgressColumn = _size_column() if style.unit == "bytes" else MofNCompleteColumn()
        columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn(), count]
        columns += [TextColumn("{task.fields[detail]}")] if style.detail else []
        columns += [TimeElapsedColumn()]
        columns += [TextColumn("{task.fields[after]}")] if style.after else []
        self.progress: Progress = RichProgress(*columns, console=Console(file=stream), transient=style.transient)
        self.ids: dict[str, TaskID] = {}
        self.lock = threading.RLock()  # also the caller's, for a check-then-start
        self.progress.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __contains__(self, name: str) -> bool:
        return name in self.ids

    def start(self, name: str, total: int | None, *, detail: str = "", after: str = "") -> None:
        """A new bar; ``total`` 0 or None: not known (a pulse until it is)."""
        with self.lock:
            self.ids[name] = self.progress.add_task(name, total=total or None, detail=detail, after=after)

    def update(self, name: str, *, completed: int, total: int | None = None, detail: str = "",
               after: str = "") -> None:
        """``total`` None leaves the bar's total as it is."""
        with self.lock:
            if name in self.ids:
                self.progress.update(self.ids[name], completed=completed, total=total, detail=detail, after=after)

    def advance(self, name: str, nbytes: int) -> None:
        with self.lock:
            if name in self.ids:
                self.progress.advance(self.ids[name], nbytes)

    def finish(self, name: str) -> None:
        """The bar full at what was done, kept on screen."""
        with self.lock:
            task_id = self.ids.pop(name, None)
            if task_id is not None:
                done = next(t.completed for t in self.progress.tasks if t.id == task_id)
                self.progress.update(task_id, total=done, completed=done)

    def say(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        self.progress.stop()

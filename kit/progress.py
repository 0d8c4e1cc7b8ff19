"""Progress for the kit's big parts: a rich bar per part on a terminal, else kit.unpack's plain lines
with a heartbeat (CI). The terminal test is the build progress's (build.progress.on_terminal)."""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO

from build.progress import on_terminal
from kit.unpack import PlainReporter, Reporter


class RichReporter:
    """One bar per part (bytes done of the part's size, when known), kept on screen when done."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TimeElapsedColumn(), console=Console(file=stream))
        self.progress.start()
        self.ids: dict[str, Any] = {}
        self.lock = threading.Lock()

    def start(self, name: str, total: int) -> None:
        with self.lock:
            self.ids[name] = self.progress.add_task(name, total=total or None)

    def advance(self, name: str, nbytes: int) -> None:
        with self.lock:
            if name in self.ids:
                self.progress.advance(self.ids[name], nbytes)

    def finish(self, name: str) -> None:
        with self.lock:
            task_id = self.ids.pop(name, None)
            if task_id is not None:
                done = next(t.completed for t in self.progress.tasks if t.id == task_id)
                self.progress.update(task_id, total=done, completed=done)

    def say(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


def make_reporter(stream: TextIO = sys.stderr) -> Reporter:
    return RichReporter(stream) if on_terminal(stream) else PlainReporter(stream)

"""A timeline of a build or a release, as a Chrome trace-event file (`_output/kbuild/trace.json`).

Open it in https://ui.perfetto.dev or chrome://tracing, as Bazel's `--profile` is opened. Each span is
one complete event (``"ph": "X"``: name, category, start and duration in microseconds, the thread that
ran it, and its arguments); the file is ``{"traceEvents": [...], "displayTimeUnit": "ms"}``, as the
Trace Event Format describes. One recording is active at a time; ``span`` outside one does nothing, so
the layers that mark their steps (code generation, each go command, each release phase) need not know
whether anyone records.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

TRACE = "_output/kbuild/trace.json"  # under the tree: the timeline of its last build or release
_ACTIVE: Recording | None = None
_LOCK = threading.Lock()


class Recording:
    """The events of one run, from its start."""

    def __init__(self) -> None:
        self.started_ns = time.monotonic_ns()
        self.events: list[dict[str, object]] = []
        self.keep = True   # write the file at the end (when the run succeeded)

    def add(self, name: str, category: str, start_ns: int, end_ns: int, args: Mapping[str, object]) -> None:
        event: dict[str, object] = {
            "name": name, "cat": category, "ph": "X", "pid": os.getpid(), "tid": threading.get_ident() % 2**31,
            "ts": (start_ns - self.started_ns) // 1000, "dur": max(0, (end_ns - start_ns) // 1000)}
        if args:
            event["args"] = {k: v if isinstance(v, (str, int, float, bool)) else str(v) for k, v in args.items()}
        with _LOCK:
            self.events.append(event)

    def document(self) -> dict[str, object]:
        with _LOCK:
            events = sorted(self.events, key=lambda e: (int(str(e["ts"])), str(e["name"])))
        return {"traceEvents": events, "displayTimeUnit": "ms"}


@contextmanager
def span(name: str, category: str, **args: object) -> Iterator[None]:
    """Mark a step; its outcome (ok, or the exception's type) goes in its arguments."""
    recording = _ACTIVE
    if recording is None:
        yield
        return
    start = time.monotonic_ns()
    outcome = "failed"
    try:
        yield
        outcome = "ok"
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        recording.add(name, category, start, time.monotonic_ns(), {**args, "outcome": outcome})


@contextmanager
def recording(path: Path, root: Path, name: str) -> Iterator[Recording]:
    """Record the spans inside, as one top span ``name``, and write the file when the block succeeds and
    the caller left ``keep`` set (a run that fails changes nothing it need not: the file stays the last
    good run's; a CI run that returns a failure clears ``keep``). A recording inside another adds to it."""
    global _ACTIVE
    if _ACTIVE is not None:
        with span(name, "run"):
            yield _ACTIVE
        return
    current = _ACTIVE = Recording()
    ok = False
    try:
        with span(name, "run"):
            yield current
        ok = True
    finally:
        _ACTIVE = None
        if ok and current.keep:
            _write(path, root, current)


def _write(path: Path, root: Path, rec: Recording) -> None:
    """The file, whole or not at all; a timeline that can't be written never fails the run it describes."""
    from common.errors import KBError
    from common.outputs import write_file

    try:
        write_file(path, json.dumps(rec.document()) + "\n", step="the build timeline", root=root, make_parent=True)
    except (KBError, OSError) as exc:
        from common.console import info

        info(f"the timeline {path} was not written: {getattr(exc, 'message', None) or exc}")

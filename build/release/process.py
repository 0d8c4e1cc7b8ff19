"""Running one of the tree's scripts with its output streamed live, kept in a log, and a
heartbeat when it is quiet; Ctrl-C stops its whole process group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from common.errors import KBError, exit_code_of

HEARTBEAT_SECONDS = 30.0


def run_logged(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], overlay: Mapping[str, str],
               log: Path, out: Callable[[str], None], label: str,
               on_interrupt: Callable[[], None] | None = None,
               heartbeat: float = HEARTBEAT_SECONDS) -> int:
    """Run ``argv``; every line goes to ``out`` and ``log`` (appended). Returns the exit code."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8", errors="replace", buffering=1) as fh:  # tail -f keeps up
        fh.write(f"# {' '.join(argv)}\n# env: {json.dumps(dict(overlay), sort_keys=True)}\n")
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                text=True, errors="replace", bufsize=1)
        with Heartbeat(label, heartbeat) as beat:
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    beat.touch()
                    fh.write(line)
                    out(line.rstrip("\n"))
                return proc.wait()
            except KeyboardInterrupt:
                stop_group(proc)
                if on_interrupt is not None:
                    on_interrupt()
                fh.write("# interrupted\n")
                raise


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


def stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGINT, then SIGTERM, then SIGKILL to the whole process group."""
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def failed(message: str, returncode: int, log: Path, hint: str | None = None) -> KBError:
    """The error for a script or container that exited non-zero: its last lines go to stderr first."""
    for line in tail(log):
        print(f"  | {line}", file=sys.stderr)
    return KBError(f"{message} (exit {returncode}); full log: {log}", hint=hint, code=exit_code_of(returncode))


def tail(path: Path, lines: int = 20) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []

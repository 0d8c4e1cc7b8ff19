"""Running one of the tree's scripts with its output streamed live, kept in a log, and a
heartbeat when it is quiet; Ctrl-C stops its whole process group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from build.progress import HEARTBEAT_SECONDS, Heartbeat, PhaseClock
from common.errors import KBError, exit_code_of


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
        clock = PhaseClock()
        with Heartbeat(label, heartbeat) as beat:
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    beat.touch()
                    text = line.rstrip("\n")
                    done = clock.feed(text)
                    if done:
                        out(done)
                    if clock.current:
                        beat.label = f"{label} [{clock.current}]"
                    fh.write(line)
                    out(text)
                code = proc.wait()
                done = clock.finish()
                if done:
                    out(done)
                return code
            except KeyboardInterrupt:
                stop_group(proc)
                if on_interrupt is not None:
                    on_interrupt()
                fh.write("# interrupted\n")
                raise


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

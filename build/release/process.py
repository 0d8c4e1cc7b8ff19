"""Running one of the tree's scripts with its output streamed live, kept in a log, and a
heartbeat when it is quiet; Ctrl-C stops its whole process group."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from build.progress import PhaseClock
from common.errors import KBError, exit_code_of
from common.progress import HEARTBEAT_SECONDS, Heartbeat
from common.redact import redact

_NO_SPACE = "No space left on device"
# A tool's line about a write the full disk cut short: `cp: error writing '/…': No space left on device`,
# `tar: /….tar.gz: Wrote only 2048 of 10240 bytes` (its gzip child only says `stdout: No space …`).
_SHORT_WRITE = re.compile(r"No space left on device|Wrote only \d+ of \d+ bytes")
_ABSOLUTE = re.compile(r"/[^\s'\":`]+")


def _no_space(label: str, code: int, lines: list[str], log_error: OSError | None, log: Path,
              writes: Path | None) -> KBError:
    """The disk filled while ``label`` ran: name the file it could not write (from the tool's own line,
    e.g. `cp: error writing '/…': No space left on device`), else the log or the directory it writes."""
    # The last path before the complaint is the one being written (cp names the source first).
    where = next((found[-1] for line in lines for found in [_ABSOLUTE.findall(_SHORT_WRITE.split(line)[0])]
                  if found), None)
    if where is None:
        where = str(log if log_error is not None else (writes or log.parent))
    ended = f" (exit {code})" if code else ""
    return KBError(f"no space left on device during {label}: cannot write {where}{ended}",
                   hint=f"free some disk space on the file system of {os.path.dirname(where)}, then run it again",
                   code=exit_code_of(code) if code else 1)


@dataclass(frozen=True)
class Command:
    """One of the tree's scripts to run: ``argv`` in ``cwd`` with ``environ`` and kbuild's ``overlay`` on top
    (the overlay is what the log records); ``label`` names the step, ``writes`` the directory it writes."""

    argv: Sequence[str]
    cwd: Path
    environ: Mapping[str, str]
    overlay: Mapping[str, str]
    label: str
    writes: Path | None = None


def run_logged(command: Command, *, log: Path, out: Callable[[str], None],
               on_interrupt: Callable[[], None] | None = None, heartbeat: float = HEARTBEAT_SECONDS) -> int:
    """Run the command; every line goes to ``out`` and ``log`` (appended), credentials in URLs as ***.
    Returns the exit code. A full disk (the tool says so, or the log can't be written) is one error
    naming the file and the step (its label); its ``writes`` is the directory named when nothing better is."""
    from common.outputs import os_failure

    argv, overlay, label = command.argv, command.overlay, command.label

    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        fh = log.open("a", encoding="utf-8", errors="replace", buffering=1)  # tail -f keeps up
    except OSError as exc:
        raise os_failure(exc, f"create the log of {label}", log) from None
    log_error: OSError | None = None
    full: list[str] = []  # the tool's lines about short writes

    def keep(text: str) -> None:
        nonlocal log_error
        if _SHORT_WRITE.search(text):
            full.append(text)
        if log_error is None:
            try:
                fh.write(redact(text))
            except OSError as exc:  # keep going: the output still reaches the terminal
                log_error = exc

    try:
        keep(f"# {' '.join(argv)}\n# env: {json.dumps(dict(overlay), sort_keys=True)}\n")
        code = _follow(argv, command.cwd, {**command.environ, **overlay}, out, label, on_interrupt, heartbeat,
                       keep)
    finally:
        try:
            fh.close()
        except OSError as exc:
            log_error = log_error or exc
    if any(_NO_SPACE in line for line in full) or (log_error is not None
                                                     and log_error.errno in (errno.ENOSPC, errno.EDQUOT)):
        raise _no_space(label, code, full, log_error, log, command.writes)
    if log_error is not None:
        raise os_failure(log_error, f"write the log of {label}", log, name_given=True)
    return code


def _follow(argv: Sequence[str], cwd: Path, env: Mapping[str, str], out: Callable[[str], None], label: str,
            on_interrupt: Callable[[], None] | None, heartbeat: float, keep: Callable[[str], None]) -> int:
    """Start ``argv`` in its own process group and feed each line to ``keep`` (the log) and ``out``."""
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
                keep(line)
                out(redact(text))
            code = proc.wait()
            done = clock.finish()
            if done:
                out(done)
            return code
        except KeyboardInterrupt:
            stop_group(proc)
            if on_interrupt is not None:
                on_interrupt()
            keep("# interrupted\n")
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
        print(f"  | {redact(line)}", file=sys.stderr)
    return KBError(f"{message} (exit {returncode}); full log: {log}", hint=hint, code=exit_code_of(returncode))


def tail(path: Path, lines: int = 20) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []

"""What the build calls: the go command's environment overlay, the per-command stats, one warning
line and one summary line per build.

Enabled only when a remote cache is configured (``KBUILD_REMOTE_CACHE`` in the environment the
tasks pass down); otherwise :func:`start` returns None and the build is exactly as without it.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cache.config import ENV_MODE, ENV_URL, Remote, parse

if TYPE_CHECKING:
    from build.release.modes import Mode  # the release mode, for release_note

MIN_GO = (1, 24)
PROG = Path(__file__).resolve().parent / "prog.py"
SCRIPT_NOTE = ("the remote cache is not used by --mode {mode}: go runs inside the tree's kube-cross image there, "
               "whose Go may be older than 1.24 (GOCACHEPROG); --mode native builds with this host's Go and uses it")


def go_supports(version: str) -> bool:
    """go1.24 and later have GOCACHEPROG (``go1.27.3``, ``go1.24rc1``, ``devel`` count as new)."""
    m = re.match(r"go(\d+)\.(\d+)", version)
    if not m:
        return version.startswith("devel")
    return (int(m.group(1)), int(m.group(2))) >= MIN_GO


def prog_command(python: str = sys.executable, prog: Path = PROG) -> str | None:
    """GOCACHEPROG's value: go splits it into words, honouring '…' and "…" (cmd/internal/quoted)."""
    words = []
    for word in (python, str(prog)):
        if "'" not in word and '"' not in word and " " not in word and "\t" not in word:
            words.append(word)
        elif "'" not in word:
            words.append(f"'{word}'")
        elif '"' not in word:
            words.append(f'"{word}"')
        else:
            return None
    return " ".join(words)


def remote_of(environ: Mapping[str, str]) -> Remote | None:
    url = environ.get(ENV_URL, "")
    if not url:
        return None
    return parse(url, environ.get(ENV_MODE) or "readwrite", ENV_URL)


def human(n: float) -> str:
    from common.units import size

    return size(n)


def summary_line(remote: Remote, totals: Mapping[str, float], compiled: int | None) -> str:
    """One line: remote hits, misses, bytes down/up, time waiting on the remote (pure; tested)."""
    parts = [f"{totals.get('remote_hits', 0):.0f} remote hits", f"{totals.get('local_hits', 0):.0f} local hits",
             f"{totals.get('misses', 0):.0f} misses"]
    if compiled is not None:
        parts.append(f"{compiled} packages compiled")
    parts += [f"{human(totals.get('bytes_down', 0))} down", f"{human(totals.get('bytes_up', 0))} up"
              + ("" if remote.writes else " (read-only)"),
              f"{float(totals.get('wait_seconds', 0.0)):.1f}s waiting on the remote"]
    return f"remote cache {remote.url}: " + ", ".join(parts)


def warning_line(remote: Remote, problems: Mapping[str, str]) -> str:
    """The one warning of a build: what went wrong (first of each kind) and that the build goes on."""
    order = ["setup", "unreachable", "server", "denied", "corrupt"]
    shown = "; ".join(problems[k] for k in sorted(problems, key=lambda k: order.index(k) if k in order else 9))
    return (f"WARNING remote cache {remote.url}: {shown} — building on without it where it failed "
            "(a faulty entry is never used; the result is the same)")


class Session:
    """One build's use of the remote cache, across its go commands."""

    def __init__(self, remote: Remote, command: str, say: Callable[[str], None]) -> None:
        self.remote, self.command, self.say = remote, command, say
        self.dir = Path(tempfile.mkdtemp(prefix="kbuild-cache-"))
        atexit.register(shutil.rmtree, self.dir, True)  # also when the build fails before finish()
        self.totals: dict[str, float] = {}
        self.compiled = 0
        self.problems: dict[str, str] = {}
        self.warned = False
        self.off = False            # the store failed for a whole command: later commands go without it
        self.read_only = not remote.writes
        self.current: Path | None = None
        self.count = 0

    def env(self) -> dict[str, str]:
        """The overlay for the next go command (empty once the store has been found down)."""
        if self.off:
            return {}
        self.count += 1
        self.current = self.dir / f"stats-{self.count}.json"
        return {"GOCACHEPROG": self.command, ENV_URL: self.remote.url,
                ENV_MODE: "read" if self.read_only else "readwrite", "KBUILD_CACHEPROG_STATS": str(self.current)}

    def hits(self) -> tuple[int, int]:
        """(remote, local) cache hits of the running go command so far: the progress display polls this."""
        now = _read(self.current) if self.current is not None else {}
        return int(_number(now, "remote_hits")), int(_number(now, "local_hits"))

    def absorb(self, compiled: int | None = None) -> None:
        """After a go command: add its counters; say the warning once; open the build-wide breakers."""
        if self.current is None:
            return
        stats = _read(self.current)
        self.current = None
        for key, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.totals[key] = self.totals.get(key, 0) + value
        self.compiled += compiled or 0
        problems = stats.get("problems")
        for kind, message in (problems.items() if isinstance(problems, dict) else ()):
            self.problems.setdefault(str(kind), str(message))
        if stats.get("remote_off"):
            self.off = True
        if stats.get("writes_off"):
            self.read_only = True
        if self.problems and not self.warned:
            self.warned = True
            self.say(warning_line(self.remote, self.problems))

    def finish(self) -> str:
        """The summary line (also said); removes the stats files."""
        for path in self.dir.glob("*"):
            path.unlink(missing_ok=True)
        try:
            self.dir.rmdir()
        except OSError:
            pass
        line = summary_line(self.remote, self.totals, self.compiled)
        self.say(line)
        return line


def _number(doc: Mapping[str, object], key: str) -> float:
    value = doc.get(key, 0)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _read(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def start(environ: Mapping[str, str], go_version: str, say: Callable[[str], None]) -> Session | None:
    """The build's remote-cache session, or None (not configured; or said once why it is not used)."""
    remote = remote_of(environ)
    if remote is None:
        return None
    if not go_supports(go_version):
        say(f"remote cache {remote.url} not used: {go_version} has no GOCACHEPROG (Go 1.24 or later has)")
        return None
    command = prog_command()
    if command is None:
        say(f"remote cache {remote.url} not used: the path of kbuild or python has both kinds of quote")
        return None
    return Session(remote, command, say)


def release_note(environ: Mapping[str, str], mode: Mode) -> str | None:
    """For script and direct releases: the one line saying the remote cache is not used there, and why."""
    if not mode.builds_in_container or not environ.get(ENV_URL):
        return None
    return SCRIPT_NOTE.format(mode=mode.value)


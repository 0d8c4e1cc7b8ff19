"""What every release mode leaves behind: SHA256SUMS, the JSON report, and phase timings."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from common.errors import KBError
from common.outputs import translate_os_errors, write_file
from common.redact import redact_data
from common.system import sha256_of

PHASES = ("images", "build", "package")


@dataclass
class Phases:
    """Wall time per phase, in the order they ran; `info` announces each."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        from common.cli import info
        from common.trace import span

        info(f"== {name}")
        start = time.monotonic()
        ended = "failed after"
        try:
            with span(name, "release"):
                yield
            ended = "done in"
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.monotonic() - start, 1)
            info(f"== {name} {ended} {self.seconds[name]:.0f}s")

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = round(self.seconds.get(name, 0.0) + seconds, 1)

    @property
    def total(self) -> float:
        return round(sum(self.seconds.values()), 1)


class Tarball(TypedDict):
    """One tarball the release wrote, as SHA256SUMS and the report list it."""

    name: str
    size: int
    sha256: str


@dataclass
class ReleaseResult:
    code: int
    log: Path
    tarballs: list[Tarball] = field(default_factory=list)
    seconds: float = 0.0
    report: Path | None = None
    images: list[dict[str, object]] = field(default_factory=list)
    mode: str = "script"
    body: dict[str, object] = field(default_factory=dict)   # the JSON report's content


def write_sums(tars: Path) -> list[Tarball]:
    """SHA256SUMS beside the tarballs (sha256sum format); returns their names, sizes and digests."""
    entries: list[Tarball] = []
    with translate_os_errors("read the tarball", tars):
        for tar in sorted(tars.glob("*.tar.gz")):
            entries.append(Tarball(name=tar.name, size=tar.stat().st_size, sha256=sha256_of(tar)))
    if not entries:
        raise KBError(f"the release finished but wrote no tarballs to {tars}")
    write_file(tars / "SHA256SUMS", "".join(f"{e['sha256']}  {e['name']}\n" for e in entries),
               step="the release checksums")
    return entries


def clear_previous(tars: Path) -> list[str]:
    """The previous release's tarballs, checksums and report, removed before a new one builds (the tree's
    packaging removes release-tars too, but only once it starts): a release that fails earlier must not
    leave the last one's outputs looking like its own. Regular files only; returns their names."""
    if not tars.is_dir() or tars.is_symlink():
        return []
    gone = []
    with translate_os_errors("remove the previous release's file", tars):
        for entry in sorted(tars.iterdir()):
            if (entry.name.endswith(".tar.gz") or entry.name in ("SHA256SUMS", "release-report.json")) \
                    and entry.is_file() and not entry.is_symlink():
                entry.unlink()
                gone.append(entry.name)
    return gone


def write_report(path: Path, body: Mapping[str, object], *, root: Path | None = None, user_named: bool = False) -> Path:
    """The JSON report, whole or not at all; credentials in any URL it quotes become ***.
    A ``--report`` path's directory must exist; the default one (release-tars) is made."""
    text = json.dumps(redact_data(body), indent=2, default=str) + "\n"
    return write_file(path, text, step="the release report", root=root, flag="--report" if user_named else None,
                      example="release-report.json", make_parent=not user_named)

"""Small facts about this machine and its files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from common.outputs import output_target as output_target  # moved to the output guard; kept for callers


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mem_available_gb() -> float:
    """MemAvailable from /proc/meminfo in GiB (inf where there is no such file)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1048576
    except OSError:
        pass
    return float("inf")

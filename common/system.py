"""Small facts about this machine and its files."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from common.errors import KBError, UsageError


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


def output_target(path: Path, flag: str, example: str) -> bool:
    """Check where ``flag PATH`` will write, before any work is done: a directory is refused, and a
    regular file (new or not) needs an existing, writable directory. Returns True for a device, a pipe
    or a /dev/... path, which is written directly (renaming over a device node would replace it)."""
    try:
        mode: int | None = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise KBError(f"{flag} {path}: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"{flag} {path}: is a directory", hint=f"give a file name, e.g. {path / example}")
    if (mode is not None and not stat.S_ISREG(mode)) or str(path).startswith(("/dev/", "/proc/self/fd/")):
        return True
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: the directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise KBError(f"{flag} {path}: the directory {path.parent} is not writable")
    return False

"""The first level: Go's own GOCACHE layout, so entries are shared with plain (cache-less) builds.

An action's index entry is ``GOCACHE/xx/<ActionID>-a`` holding
``v1 <ActionID> <OutputID> <size:20> <time:20>\\n``; the output is ``GOCACHE/xx/<OutputID>-d``
(``cmd/go/internal/cache/cache.go``). Files are written to a temporary name and renamed, so a
reader (go itself, or another build) never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

HEX = 64
ENTRY_SIZE = 2 + 1 + HEX + 1 + HEX + 1 + 20 + 1 + 20 + 1


@dataclass(frozen=True)
class Entry:
    """What an action produced: the output's id (sha256 of its bytes, hex) and size."""

    output: str
    size: int


def format_entry(action: str, output: str, size: int, now_ns: int | None = None) -> bytes:
    stamp = time.time_ns() if now_ns is None else now_ns
    return f"v1 {action} {output} {size:20d} {stamp:20d}\n".encode()


def parse_entry(action: str, data: bytes) -> Entry | None:
    """The entry in an ``-a`` file, or None when it is not one for ``action`` (as go reads it)."""
    if len(data) != ENTRY_SIZE or not data.startswith(b"v1 ") or not data.endswith(b"\n"):
        return None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    fields = text[3:].split(" ", 2)
    if len(fields) != 3 or fields[0] != action or not is_hex_id(fields[1]):
        return None
    size_text = text[3 + HEX + 1 + HEX + 1:3 + HEX + 1 + HEX + 1 + 20].strip()
    if not size_text.isdigit():
        return None
    return Entry(fields[1], int(size_text))


def is_hex_id(text: str) -> bool:
    return len(text) == HEX and all(c in "0123456789abcdef" for c in text)


class LocalCache:
    """GOCACHE as a GOCACHEPROG first level: look up, place a body, record an entry."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, ident: str, kind: str) -> Path:
        return self.root / ident[:2] / f"{ident}-{kind}"

    def get(self, action: str) -> tuple[Entry, Path] | None:
        """The entry and its output file when both are here and the sizes agree."""
        try:
            data = self.path(action, "a").read_bytes()
        except OSError:
            return None
        entry = parse_entry(action, data)
        if entry is None:
            return None
        out = self.path(entry.output, "d")
        try:
            st = out.stat()
        except OSError:
            return None
        if not out.is_file() or st.st_size != entry.size:
            return None
        return entry, out

    def has_output(self, output: str, size: int) -> Path | None:
        out = self.path(output, "d")
        try:
            return out if out.is_file() and out.stat().st_size == size else None
        except OSError:
            return None

    def put_body(self, output: str, body: bytes) -> Path:
        """The output file for ``body`` (written unless it is already there whole)."""
        out = self.path(output, "d")
        if out.is_dir():  # go's executable cache keeps a directory here: keep the body beside it
            out = self.path(output, "kbuild")
        if out.is_file() and out.stat().st_size == len(body):
            return out
        self._atomic(out, lambda fh: fh.write(body))
        return out

    def put_entry(self, action: str, output: str, size: int) -> None:
        self._atomic(self.path(action, "a"), lambda fh: fh.write(format_entry(action, output, size)))

    def temp_for(self, output: str) -> Path:
        """A temporary file beside where ``output`` goes (rename it into place with :meth:`adopt`)."""
        d = self.root / output[:2]
        d.mkdir(parents=True, exist_ok=True)
        return d / f".{output}-d.{os.getpid()}.{time.monotonic_ns()}.tmp"

    def adopt(self, tmp: Path, output: str) -> Path:
        out = self.path(output, "d")
        if out.is_dir():
            out = self.path(output, "kbuild")
        os.replace(tmp, out)
        return out

    def _atomic(self, dest: Path, write: Callable[[BinaryIO], object]) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                write(fh)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def sha256_file(fh: BinaryIO) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()

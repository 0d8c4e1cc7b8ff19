"""What every remote store offers the cache program, and how its failures are told apart."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Protocol

# Kinds of failure: each trips its own breaker in the program.
UNREACHABLE = "unreachable"   # refused, reset, DNS, TLS, a timeout: stop using the store
SERVER = "server"             # 5xx or an answer that makes no sense: stop using the store
DENIED = "denied"             # 401/403/405 on a write, read-only storage: stop writing
CORRUPT = "corrupt"           # a blob whose sha256 or size is not what the entry says: that entry is a miss

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0


class StoreError(Exception):
    """A failure talking to the store; ``kind`` is one of the constants above."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class Store(Protocol):
    def lookup(self, action: str) -> tuple[str, int] | None:
        """(OutputID, size) stored for the ActionID (hex), None when there is none."""

    def download(self, output: str, size: int, dest: BinaryIO) -> None:
        """Write the output blob's bytes to ``dest`` (the caller checks sha256 and size)."""

    def upload(self, action: str, output: str, size: int, body: Path) -> int:
        """Store the output (unless present) and the entry; returns the bytes sent."""

    def ping(self) -> None:
        """Raise StoreError unless the store answers."""

    def probe_write(self) -> None:
        """Raise StoreError(DENIED) unless this store takes writes (writes a tiny marker)."""

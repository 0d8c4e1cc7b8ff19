"""kbuild's GOCACHEPROG program: go starts it and asks it for build outputs over stdin/stdout.

The first level is the local GOCACHE in go's own layout (go needs a file on disk for every
output); a local miss asks the remote store; a ``put`` is written locally, answered at once and
uploaded in the background (``readwrite`` only); ``close`` waits for the uploads. Nothing the
store does can fail the build: a fault is a miss, and after the first fault of a kind that
kind's breaker stays open for the rest of this go command. Counters and the first fault of each
kind go to the stats file (``KBUILD_CACHEPROG_STATS``), rewritten twice a second while they
change, which kbuild reads for its progress and its summary line.

Run by go as ``python3 PATH/cache/prog.py``; its settings come from the environment:
``KBUILD_REMOTE_CACHE``, ``KBUILD_REMOTE_CACHE_MODE``, ``KBUILD_CACHEPROG_STATS``, ``GOCACHE``.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

if __package__ in (None, ""):  # run as a file by go: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cache import protocol  # noqa: E402
from cache.local import LocalCache, sha256_file  # noqa: E402
from cache.store import CORRUPT, DENIED, Store, StoreError  # noqa: E402

WORKERS = 8
UPLOADERS = 4
DRAIN_SECONDS = 600.0   # at most this long at close for the uploads still queued
STATS_EVERY = 0.5

ENV_STATS = "KBUILD_CACHEPROG_STATS"


class Stats:
    """The counters of one go command, written as JSON."""

    FIELDS = ("local_hits", "remote_hits", "misses", "puts", "uploads", "bytes_down", "bytes_up")

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(self.FIELDS, 0)
        self.wait_seconds = 0.0
        self.problems: dict[str, str] = {}
        self.remote_off = False
        self.writes_off = False
        self.dirty = True

    def add(self, **counts: int) -> None:
        with self.lock:
            for key, n in counts.items():
                self.counts[key] += n
            self.dirty = True

    def waited(self, seconds: float) -> None:
        with self.lock:
            self.wait_seconds += seconds
            self.dirty = True

    def fault(self, err: StoreError) -> None:
        """Record the first fault of its kind and open that kind's breaker."""
        with self.lock:
            self.problems.setdefault(err.kind, err.message)
            if err.kind == DENIED:
                self.writes_off = True
            elif err.kind != CORRUPT:
                self.remote_off = True
            self.dirty = True

    def snapshot(self) -> dict[str, object]:
        with self.lock:
            self.dirty = False
            return {**self.counts, "wait_seconds": round(self.wait_seconds, 3), "problems": dict(self.problems),
                    "remote_off": self.remote_off, "writes_off": self.writes_off}

    def write(self, final: bool = False) -> None:
        if self.path is None:
            return
        doc = self.snapshot()
        doc["final"] = final
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self.path)
        except OSError:
            pass  # stats are a report, never a reason to fail


class Program:
    """The cache: local level, optional remote store, breakers, counters."""

    def __init__(self, local: LocalCache, store: Store | None, writes: bool, stats: Stats) -> None:
        self.local, self.store, self.writes, self.stats = local, store, writes, stats
        self.uploads = concurrent.futures.ThreadPoolExecutor(max_workers=UPLOADERS, thread_name_prefix="upload")
        self.pending: list[concurrent.futures.Future[None]] = []

    def _remote(self) -> Store | None:
        return None if self.store is None or self.stats.remote_off else self.store

    def get(self, req: protocol.Request) -> dict[str, object]:
        found = self.local.get(req.action)
        if found is not None:
            entry, path = found
            self.stats.add(local_hits=1)
            return protocol.hit(req.id, entry.output, entry.size, str(path))
        store = self._remote()
        if store is None:
            self.stats.add(misses=1)
            return protocol.miss(req.id)
        start = time.monotonic()
        try:
            got = self._fetch(store, req.action)
        except StoreError as err:
            self.stats.fault(err)
            got = None
        finally:
            self.stats.waited(time.monotonic() - start)
        if got is None:
            self.stats.add(misses=1)
            return protocol.miss(req.id)
        output, size, path = got
        self.stats.add(remote_hits=1)
        return protocol.hit(req.id, output, size, str(path))

    def _fetch(self, store: Store, action: str) -> tuple[str, int, Path] | None:
        named = store.lookup(action)
        if named is None:
            return None
        output, size = named
        path = self.local.has_output(output, size)
        if path is None:
            tmp = self.local.temp_for(output)
            try:
                with open(tmp, "w+b") as fh:
                    store.download(output, size, fh)
                    got = fh.tell()
                    fh.seek(0)
                    digest = sha256_file(fh)
                if got != size or digest != output:
                    raise StoreError(CORRUPT, f"a blob from the store is not what its entry says (sha256 "
                                              f"{digest[:12]}…, {got} bytes; expected {output[:12]}…, {size} bytes)")
                path = self.local.adopt(tmp, output)
            finally:
                tmp.unlink(missing_ok=True)
            self.stats.add(bytes_down=size)
        self.local.put_entry(action, output, size)
        return output, size, path

    def put(self, req: protocol.Request) -> dict[str, object]:
        path = self.local.put_body(req.output, req.body)
        self.local.put_entry(req.action, req.output, len(req.body))
        self.stats.add(puts=1)
        if self.writes and self._remote() is not None and not self.stats.writes_off:
            self.pending.append(self.uploads.submit(self._upload, req.action, req.output, len(req.body), path))
        return protocol.stored(req.id, str(path))

    def _upload(self, action: str, output: str, size: int, path: Path) -> None:
        store = self._remote()
        if store is None or self.stats.writes_off:
            return
        try:
            sent = store.upload(action, output, size, path)
        except StoreError as err:
            self.stats.fault(err)
            return
        except OSError:
            return  # the local file went away (trimmed): nothing to upload
        self.stats.add(uploads=1, bytes_up=sent)

    def drain(self) -> None:
        """Wait (bounded) for the queued uploads; what is left is dropped."""
        start = time.monotonic()
        concurrent.futures.wait(list(self.pending), timeout=DRAIN_SECONDS)
        self.uploads.shutdown(wait=False, cancel_futures=True)
        if self.pending:
            self.stats.waited(time.monotonic() - start)

    def handle(self, req: protocol.Request) -> dict[str, object]:
        """Any request but close; never raises (a failure is a miss, or an error for go to report)."""
        try:
            if req.command == "get":
                return self.get(req)
            if req.command == "put":
                return self.put(req)
            return protocol.failed(req.id, f"unknown command {req.command!r}")
        except Exception as exc:  # noqa: BLE001 - nothing may take the build down
            if req.command == "get":
                self.stats.add(misses=1)
                return protocol.miss(req.id)
            return protocol.failed(req.id, f"kbuild cache: {type(exc).__name__}: {exc}")


def serve(stdin: BinaryIO, stdout: BinaryIO, program: Program, greet: bool = True) -> None:
    """Answer go until it says close (or its end of input)."""
    out_lock = threading.Lock()

    def answer(response: dict[str, object]) -> None:
        data = protocol.encode(response)
        with out_lock:
            stdout.write(data)
            stdout.flush()

    if greet:
        answer({"ID": 0, "KnownCommands": list(protocol.KNOWN_COMMANDS)})
    done = threading.Event()

    def ticker() -> None:
        while not done.wait(STATS_EVERY):
            if program.stats.dirty:
                program.stats.write()

    def respond(req: protocol.Request) -> None:
        answer(program.handle(req))

    threading.Thread(target=ticker, daemon=True).start()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="request")
    closing: protocol.Request | None = None
    try:
        while True:
            try:
                req = protocol.read_request(stdin)
            except protocol.ProtocolError as exc:
                print(f"kbuild cache: {exc}", file=sys.stderr)
                break
            if req is None:
                break
            if req.command == "close":
                closing = req
                break
            pool.submit(respond, req)
    finally:
        pool.shutdown(wait=True)
        program.drain()
        done.set()
        program.stats.write(final=True)
        if closing is not None:
            answer({"ID": closing.id})


def program_from_env(environ: Mapping[str, str]) -> Program:
    from cache.config import parse
    from cache.stores import open_store

    root = environ.get("GOCACHE") or str(Path.home() / ".cache" / "go-build")
    stats = Stats(Path(environ[ENV_STATS]) if environ.get(ENV_STATS) else None)
    store: Store | None = None
    writes = False
    url = environ.get("KBUILD_REMOTE_CACHE", "")
    if url:
        try:
            remote = parse(url, environ.get("KBUILD_REMOTE_CACHE_MODE", "readwrite"))
            store, writes = open_store(remote, environ), remote.writes
        except Exception as exc:  # noqa: BLE001 - a bad setting or a missing library: local only
            stats.problems["setup"] = f"{type(exc).__name__}: {exc}"
    return Program(LocalCache(Path(root)), store, writes, stats)


def main() -> int:
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but responses may reach go on stdout
    # Answer go's first question before the store's library (requests, boto3) is imported.
    stdout.write(protocol.hello())
    stdout.flush()
    serve(sys.stdin.buffer, stdout, program_from_env(os.environ), greet=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

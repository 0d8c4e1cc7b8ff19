"""Misbehaving registries on loopback, for the fault tests: a TCP proxy in front of a real registry.

Modes (counted per connection, so a registry's small answers pass and only a blob trips them):
- ``silent``: accepts and never answers (never reads, never writes, never connects upstream);
- ``stop-sending``: forwards, then stops sending to the client once ``after`` bytes of one response
  passed (a registry that stalls mid-blob), holding both connections open;
- ``stop-reading``: forwards, then stops reading from the client once ``after`` bytes of one request
  passed (a registry that stops reading a blob upload); a small receive buffer makes the client's
  writes block soon after;
- ``cut``: forwards, then, once ``after`` bytes of one response passed, closes every connection and
  its listening socket (a registry killed mid-pull: reconnecting is refused).

``stalled`` is set when the fault begins. ``stop()`` closes everything it opened.
"""

from __future__ import annotations

import contextlib
import socket
import threading

MODES = ("silent", "stop-sending", "stop-reading", "cut")


class StallProxy:
    def __init__(self, upstream: str, mode: str, after: int = 1 << 20) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: choose from {', '.join(MODES)}")
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.mode, self.after = mode, after
        self.stalled = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if mode == "stop-reading":  # inherited by accepted sockets: the client's writes block early
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> StallProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._close_all()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _close_all(self) -> None:
        with self._lock:
            socks, self._sockets = [self.listener, *self._sockets], []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept/recv on it
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._track(conn)
            if self.mode == "silent":
                self.stalled.set()
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=5)
                up.settimeout(None)
            except OSError:
                conn.close()
                continue
            self._track(up)
            threading.Thread(target=self._pump, args=(conn, up, "up"), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn, "down"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        passed = 0
        while not self._stop.is_set():
            if self.mode == "stop-reading" and direction == "up" and passed >= self.after:
                self.stalled.set()
                self._stop.wait()
                return
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            if direction == "down" and self.mode in ("stop-sending", "cut") and passed + len(data) > self.after:
                keep = self.after - passed
                with contextlib.suppress(OSError):
                    dst.sendall(data[:keep])
                self.stalled.set()
                if self.mode == "cut":
                    self._stop.set()
                    self._close_all()
                else:
                    self._stop.wait()
                return
            try:
                dst.sendall(data)
            except OSError:
                break
            passed += len(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

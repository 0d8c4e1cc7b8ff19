"""Docker engines that really are remote: they cannot see this machine's trees.

Each one is a dockerd on a free loopback TCP port, started by ``setsid unshare -m`` in a mount
namespace of its own where tmpfs hides /root and /tmp (where the tests' trees and pytest's tmp_path
live), so a bind mount of a host tree path shows an empty directory in its containers and only the
engine's API (a volume filled with a tar stream) can bring a tree there. Its data and exec roots
live under ``/var/lib/kbuild-test-engines/NAME`` (outside the masked directories). Stopping kills its
process group, then any stray shim or container process naming its directory, then removes it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests._support.engine import (
    EngineError,
    _child_env,
    _die_with_parent,
    _kill_matching,
    _search_path,
    _tail,
    free_port,
)

BASE = Path("/var/lib/kbuild-test-engines")
_live: set[RemoteEngine] = set()
MASKED = ("/root", "/tmp")


class RemoteEngine:
    """A running masked dockerd; ``url`` is its ``tcp://127.0.0.1:PORT``."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], port: int, workdir: Path) -> None:
        self.name, self.proc, self.port, self.workdir = name, proc, port, workdir
        self.pid = proc.pid

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dockerd.log"

    def ping(self, timeout: float = 2.0) -> bool:
        return _ping(self.port, timeout)

    def client(self, timeout: float | None = 120.0):  # noqa: ANN201 - docker is imported lazily
        import docker

        return docker.DockerClient(base_url=self.url, timeout=timeout)  # type: ignore[arg-type]

    def kill(self) -> None:
        """SIGKILL the daemon's whole process group at once (a machine that died), and its containers."""
        _kill_group(self.pid, signal.SIGKILL)
        _kill_matching(f"{self.workdir}/", grace=2.0)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after a few seconds, then strays, then its directory."""
        if self.proc.poll() is None:
            _kill_group(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                _kill_group(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        _kill_matching(f"{self.workdir}/", grace=2.0)
        shutil.rmtree(self.workdir, ignore_errors=True)
        _live.discard(self)

    def __repr__(self) -> str:
        return f"<RemoteEngine {self.name} pid={self.pid} {self.url}>"


def start_remote_engine(name: str, *, timeout: float = 60.0) -> RemoteEngine:
    """Start one masked dockerd on a free loopback port and wait (bounded) until it answers /_ping."""
    for tool in ("dockerd", "unshare"):
        if shutil.which(tool, path=_search_path()) is None:
            raise EngineError(f"{tool} is not installed (apt-get install docker.io util-linux)")
    if os.geteuid() != 0:
        raise EngineError("a masked dockerd needs root (unshare -m, mount -t tmpfs)")
    workdir = BASE / f"{name}-{os.getpid()}"
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        (workdir / "data").mkdir(parents=True)
        (workdir / "exec").mkdir()
        (workdir / "daemon.json").write_text("{}\n")  # never the machine's /etc/docker/daemon.json
    except OSError as exc:
        raise EngineError(f"cannot make {workdir}: {exc.strerror}") from None
    port = free_port()
    dockerd = [
        "dockerd", "--storage-driver=vfs", "--iptables=false", "--bridge=none", f"-H=tcp://127.0.0.1:{port}",
        f"--data-root={workdir / 'data'}", f"--exec-root={workdir / 'exec'}", f"--pidfile={workdir / 'pid'}",
        f"--config-file={workdir / 'daemon.json'}", "--shutdown-timeout=3",
    ]
    masks = " && ".join(f"mount -t tmpfs none {d}" for d in MASKED)
    # "$@" carries dockerd's arguments: nothing is spliced into the shell text.
    # start_new_session is setsid(2): the daemon leads its own process group (setsid(1) would fork here).
    argv = ["unshare", "-m", "--propagation", "private", "bash", "-c", f'{masks} && exec "$@"',
            "bash", *dockerd]
    log = (workdir / "dockerd.log").open("ab")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=_child_env(), start_new_session=True, preexec_fn=_die_with_parent)
    finally:
        log.close()
    engine = RemoteEngine(name, proc, port, workdir)
    _live.add(engine)
    deadline = time.monotonic() + timeout
    while not engine.ping():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = _tail(engine.log_path, 40)
            engine.stop()
            raise EngineError(f"the masked dockerd {name} did not answer /_ping on port {port}", log=tail)
        time.sleep(0.2)
    return engine


def load_images(source, engine: RemoteEngine, names: list[str]) -> None:  # noqa: ANN001 - a docker client
    """`docker save` from ``source`` piped into `docker load` on ``engine``, through the SDK."""
    data = source.api.get_image(names[0]) if len(names) == 1 else _save_many(source, names)
    client = engine.client(timeout=600)
    try:
        for event in client.api.load_image(_chunks(data)):
            if "error" in event or "errorDetail" in event:
                raise EngineError(f"docker load into {engine.name} failed: {event}")
    finally:
        client.close()


def _save_many(source, names: list[str]):  # noqa: ANN001, ANN202
    res = source.api._get(source.api._url("/images/get"), params={"names": names}, stream=True)
    source.api._raise_for_status(res)
    return res.iter_content(chunk_size=1 << 20)


def _chunks(data):  # noqa: ANN001, ANN202 - the SDK's stream, re-yielded so load_image streams it
    yield from data


@atexit.register
def _stop_leftovers() -> None:
    """Last resort when a test session dies before its fixtures' teardown."""
    for engine in list(_live):
        try:
            engine.stop()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


def _kill_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _ping(port: int, timeout: float) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/_ping", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False

"""A private, real Docker engine and registry for tests, plus tiny offline images.

Every daemon started here is isolated from any engine the machine already runs: its own
socket, data root, exec root, pidfile and config file, and the containerd that dockerd
starts for itself lives under its exec root. Several can run at once (a session engine
and a test's fresh one). Stopping is by pid; stray children (managed containerd, shims)
are found by their command line, which names the daemon's private run directory.

The docker SDK is imported lazily, so importing this module is cheap.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

BUSYBOX = Path("/bin/busybox")
MARKER_PATH = "etc/kbuild-marker"
# Applets linked into test images so containers can run simple commands.
APPLETS = ("sh", "ls", "cat", "echo", "sleep", "true", "false", "env", "mkdir", "rm", "cp", "wc", "sha256sum")
# Keep the daemons' own environment free of settings meant for a client or another daemon.
_SCRUB_PREFIXES = ("DOCKER_", "REGISTRY_", "CONTAINERD_")
_SCRUB = ("NOTIFY_SOCKET",)
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_MNT_DETACH = 2
_PR_SET_PDEATHSIG = 1

_live: set[Daemon | Registry] = set()


class EngineError(Exception):
    """A test engine or registry could not be started, or an engine operation failed."""

    def __init__(self, message: str, *, log: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.log = log

    def __str__(self) -> str:
        if not self.log:
            return self.message
        return f"{self.message}\n--- log tail ---\n{self.log}"


class OperationError(EngineError):
    """An engine operation (import, push, pull) failed, by HTTP status or in-band in a 200 stream."""

    def __init__(self, operation: str, ref: str, reason: str, *, event: dict[str, Any] | None = None) -> None:
        super().__init__(f"{operation} {ref} failed: {reason}")
        self.operation = operation
        self.ref = ref
        self.reason = reason
        self.event = event

    @classmethod
    def from_event(cls, operation: str, ref: str, event: dict[str, Any]) -> OperationError:
        detail = event.get("errorDetail") or {}
        reason = event.get("error") or detail.get("message") or json.dumps(event)
        return cls(operation, ref, str(reason), event=event)


# ---------------------------------------------------------------------------------------------
# dockerd


class _Service:
    """A child process we started: stop it by pid, and use it as a context manager."""

    proc: subprocess.Popen[bytes]
    pid: int
    log_path: Path

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def _terminate(self, timeout: float) -> None:
        """SIGTERM by pid and wait; SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            _signal(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal(self.pid, signal.SIGKILL)
                self.proc.wait(10)

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Daemon(_Service):
    """A running private dockerd. Use `.host` for DOCKER_HOST and `.client()` to talk to it."""

    def __init__(self, proc: subprocess.Popen[bytes], *, workdir: Path, rundir: Path, log_path: Path) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.workdir = workdir
        self.rundir = rundir
        self.log_path = log_path
        self._clients: list[docker.DockerClient] = []
        self.tcp_port: int | None = None

    @property
    def tcp_host(self) -> str:
        """`tcp://127.0.0.1:PORT` when started with tcp=True."""
        if not self.tcp_port:
            raise EngineError("this daemon listens on its unix socket only")
        return f"tcp://127.0.0.1:{self.tcp_port}"

    @property
    def socket_path(self) -> Path:
        return self.rundir / "docker.sock"

    @property
    def host(self) -> str:
        """The `unix://...` URL to use as DOCKER_HOST."""
        return f"unix://{self.socket_path}"

    @property
    def data_root(self) -> Path:
        return self.workdir / "data"

    @property
    def exec_root(self) -> Path:
        # Under the short run dir: containerd's sockets live here and unix paths are limited to ~100 chars.
        return self.rundir / "exec"

    @property
    def pidfile(self) -> Path:
        return self.workdir / "docker.pid"

    def ping(self, timeout: float = 5.0) -> bool:
        """True if the daemon answers `GET /_ping` with OK."""
        return _unix_ping(self.socket_path, timeout)

    def client(self, timeout: float | None = None) -> docker.DockerClient:
        """A docker client for this daemon; closed by `stop()`.

        `timeout=None` (no read timeout) keeps long streams (logs, push, pull) alive;
        pass seconds to bound every request instead.
        """
        import docker

        client = docker.DockerClient(base_url=self.host, timeout=timeout)  # type: ignore[arg-type]
        self._clients.append(client)
        return client

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM by pid and wait; SIGKILL after `timeout`; then kill strays, unmount and remove dirs."""
        for client in self._clients:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self._clients.clear()
        strays = _pids_matching(f"{self.rundir}/")  # managed containerd and shims, to watch until gone
        self._terminate(timeout)
        # After a clean shutdown there is nothing left; after SIGKILL the managed containerd and shims are.
        _kill_matching(f"{self.rundir}/")
        _wait_gone(strays)
        _unmount_under((self.data_root, self.rundir))
        for path in (self.data_root, self.rundir, self.pidfile):
            _remove(path)
        _live.discard(self)

    def __repr__(self) -> str:
        return f"<Daemon pid={self.pid} host={self.host}>"


def start_dockerd(workdir: Path, *, bridge: bool = False, timeout: float = 60.0,
                  shutdown_timeout: int = 3, tcp: bool = False) -> Daemon:
    """Start a private dockerd (vfs storage) and wait until it answers `/_ping`.

    The data root, pidfile, config file and log live under `workdir`; the socket and exec
    root (which holds the managed containerd's sockets) under a short mkdtemp in /tmp.
    With `bridge=False` the daemon has no bridge and leaves iptables alone: containers get
    only loopback and cannot publish ports. With `bridge=True` it creates the default
    `docker0` bridge, so only one such daemon can run on the machine at a time.
    """
    exe = shutil.which("dockerd", path=_search_path())
    if exe is None:
        raise EngineError("dockerd is not installed (apt-get install docker.io)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    rundir = Path(tempfile.mkdtemp(prefix="kbd-", dir="/tmp"))
    config = workdir / "daemon.json"
    config.write_text("{}\n")  # never read the machine's /etc/docker/daemon.json
    log_path = workdir / "dockerd.log"
    argv = [
        exe,
        f"--host=unix://{rundir / 'docker.sock'}",
        f"--data-root={workdir / 'data'}",
        f"--exec-root={rundir / 'exec'}",
        f"--pidfile={workdir / 'docker.pid'}",
        f"--config-file={config}",
        "--storage-driver=vfs",
        # Teardown should not wait the default 15 s for containers that ignore SIGTERM.
        f"--shutdown-timeout={shutdown_timeout}",
    ]
    if not bridge:
        argv += ["--iptables=false", "--bridge=none"]
    tcp_port = free_port() if tcp else None
    if tcp_port:  # loopback only: stands in for a remote engine
        argv.append(f"--host=tcp://127.0.0.1:{tcp_port}")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=_child_env(), start_new_session=True, preexec_fn=_die_with_parent)
    daemon = Daemon(proc, workdir=workdir, rundir=rundir, log_path=log_path)
    daemon.tcp_port = tcp_port
    _live.add(daemon)
    deadline = time.monotonic() + timeout
    while not daemon.ping(timeout=2.0):
        if proc.poll() is not None:
            tail = daemon.log_tail()
            daemon.stop()
            raise EngineError(f"dockerd exited with code {proc.returncode} while starting ({' '.join(argv)})", log=tail)
        if time.monotonic() > deadline:
            tail = daemon.log_tail()
            daemon.stop()
            raise EngineError(f"dockerd did not answer /_ping within {timeout:.0f} s", log=tail)
        time.sleep(0.2)
    return daemon


def _unix_ping(path: Path, timeout: float) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    except OSError:
        return False
    head, _, body = data.partition(b"\r\n\r\n")
    return head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n", 1)[0] and body.strip() == b"OK"


# ---------------------------------------------------------------------------------------------
# registry


class Registry(_Service):
    """A running Debian `docker-registry` on 127.0.0.1; `.address` is `127.0.0.1:PORT`."""

    def __init__(self, proc: subprocess.Popen[bytes], *, port: int, workdir: Path, log_path: Path) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.port = port
        self.workdir = workdir
        self.log_path = log_path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def storage(self) -> Path:
        return self.workdir / "storage"

    def ping(self, timeout: float = 5.0) -> bool:
        """True if `GET /v2/` answers 200."""
        return _http_ok(f"{self.url}/v2/", timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM by pid and wait; SIGKILL after `timeout`; then remove its storage."""
        self._terminate(timeout)
        _remove(self.storage)
        _live.discard(self)

    def __repr__(self) -> str:
        return f"<Registry pid={self.pid} address={self.address}>"


def registry_config(port: int, storage: Path) -> str:
    """The YAML config for `docker-registry serve` (JSON strings are valid YAML scalars)."""
    return "\n".join([
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {json.dumps(str(storage))}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: kbuild-test-registry",
        "",
    ])


def start_registry(workdir: Path, *, timeout: float = 30.0, attempts: int = 3) -> Registry:
    """Start `docker-registry serve` on a free loopback port and wait until `/v2/` answers.

    The free port is picked by binding port 0 and closing, so another process may take it
    first; a start that fails with "address already in use" is retried on a new port.
    """
    exe = shutil.which("docker-registry", path=_search_path())
    if exe is None:
        raise EngineError("docker-registry is not installed (apt-get install docker-registry)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "registry.yml"
    log_path = workdir / "registry.log"
    for attempt in range(1, attempts + 1):
        port = free_port()
        config.write_text(registry_config(port, workdir / "storage"))
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([exe, "serve", str(config)], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, env=_child_env(), start_new_session=True,
                                    preexec_fn=_die_with_parent)
        registry = Registry(proc, port=port, workdir=workdir, log_path=log_path)
        _live.add(registry)
        deadline = time.monotonic() + timeout
        while not registry.ping(timeout=2.0):
            if proc.poll() is not None:
                tail = registry.log_tail()
                registry.stop()
                if "address already in use" in tail and attempt < attempts:
                    break
                raise EngineError(f"docker-registry exited with code {proc.returncode} while starting", log=tail)
            if time.monotonic() > deadline:
                tail = registry.log_tail()
                registry.stop()
                raise EngineError(f"docker-registry did not answer /v2/ within {timeout:.0f} s", log=tail)
            time.sleep(0.1)
        else:
            return registry
    raise AssertionError("unreachable")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http_ok(url: str, timeout: float) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(url, timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


# ---------------------------------------------------------------------------------------------
# images


def rootfs_tar(marker: str, busybox: Path = BUSYBOX) -> bytes:
    """A tiny root filesystem as tar bytes: static busybox, a few applet links, the marker file.

    Entries have fixed owners and mtimes, so the same marker gives the same layer.
    """
    if not busybox.is_file():
        raise EngineError(f"{busybox} is missing (apt-get install busybox-static)")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
            info.linkname = link
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in ("bin", "etc", "root", "var"):
            add(d, tarfile.DIRTYPE, 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("bin/busybox", tarfile.REGTYPE, 0o755, busybox.read_bytes())
        for applet in APPLETS:
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add(MARKER_PATH, tarfile.REGTYPE, 0o644, marker.encode())
    return buf.getvalue()


def make_image(client: docker.DockerClient, repo_tag: str, marker: str) -> str:
    """Import a tiny busybox image offline, tagged `repo_tag`, with `marker` in /etc/kbuild-marker.

    Different markers give different layers and digests. Returns the image id.
    """
    repo, tag = split_ref(repo_tag)
    with _api_errors("import", repo_tag):
        raw = client.api.import_image_from_data(rootfs_tar(marker), repository=repo, tag=tag,
                                                changes=["ENV PATH=/bin", 'CMD ["/bin/sh"]'])
        for event in _json_lines(raw):
            if "error" in event or "errorDetail" in event:
                raise OperationError.from_event("import", repo_tag, event)
        return str(client.api.inspect_image(f"{repo}:{tag}")["Id"])


def push(client: docker.DockerClient, repo_tag: str) -> str:
    """Push `repo_tag`, raising OperationError on an HTTP or in-band error; returns the manifest digest."""
    repo, tag = split_ref(repo_tag)
    digest = ""
    with _api_errors("push", repo_tag):
        for event in client.api.push(repo, tag=tag, stream=True, decode=True):
            if "error" in event or "errorDetail" in event:
                raise OperationError.from_event("push", repo_tag, event)
            aux = event.get("aux") or {}
            digest = aux.get("Digest") or digest
        if not digest:
            digest = client.api.inspect_distribution(f"{repo}:{tag}")["Descriptor"]["digest"]
    return str(digest)


def pull(client: docker.DockerClient, repo_tag: str) -> str:
    """Pull `repo_tag`, raising OperationError on an HTTP or in-band error; returns the local image id."""
    repo, tag = split_ref(repo_tag)
    with _api_errors("pull", repo_tag):
        for event in client.api.pull(repo, tag=tag, stream=True, decode=True):
            if "error" in event or "errorDetail" in event:
                raise OperationError.from_event("pull", repo_tag, event)
        return str(client.api.inspect_image(f"{repo}:{tag}")["Id"])


def repo_digests(client: docker.DockerClient, ref: str) -> list[str]:
    """The image's RepoDigests (`repo@sha256:...`); what to compare against a registry digest."""
    return list(client.api.inspect_image(ref).get("RepoDigests") or [])


def split_ref(repo_tag: str) -> tuple[str, str]:
    """`host:port/name:tag` -> (`host:port/name`, `tag`); the tag defaults to `latest`."""
    last = repo_tag.rsplit("/", 1)[-1]
    if "@" in repo_tag:
        raise ValueError(f"expected a tag, not a digest reference: {repo_tag}")
    if ":" in last:
        repo, tag = repo_tag.rsplit(":", 1)
        return repo, tag
    return repo_tag, "latest"


@contextlib.contextmanager
def _api_errors(operation: str, ref: str) -> Iterator[None]:
    """Turn the SDK's HTTP errors (404 manifest unknown, 500 ...) into OperationError."""
    import docker.errors

    try:
        yield
    except docker.errors.APIError as exc:
        raise OperationError(operation, ref, str(exc.explanation or exc)) from exc


def _json_lines(raw: str | bytes) -> Iterable[dict[str, Any]]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        if isinstance(obj, dict):
            yield obj


# ---------------------------------------------------------------------------------------------
# processes, mounts, files


def _search_path() -> str:
    return os.pathsep.join(p for p in (os.environ.get("PATH", ""), _SYSTEM_PATH) if p)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB}
    env["PATH"] = _search_path()  # dockerd finds containerd, runc and docker-proxy on PATH
    return env


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the test process dies, even by SIGKILL.

    Its own session keeps a terminal's Ctrl-C away from it, so teardown stops it in order;
    this covers the case where teardown never runs.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _pids_matching(needle: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(entry.name))
    return pids


def _descendants(pids: Iterable[int]) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _kill_matching(needle: str, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, every process whose command line contains `needle`.

    Their descendants (the processes of containers whose shim this is) are SIGKILLed first:
    without their shim nothing else would ever stop them.
    """
    pids = _pids_matching(needle)
    for pid in _descendants(pids):
        _signal(pid, signal.SIGKILL)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            _signal(pid, signal.SIGKILL)


def _wait_gone(pids: Iterable[int], timeout: float = 3.0) -> None:
    """Wait until `pids` are reaped, so a check right after stop() sees no zombie shims."""
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if len(fields) > 4:
            # Octal escapes: \040 for space and the like.
            points.append(fields[4].encode().decode("unicode_escape"))
    return points


def _unmount_under(roots: Iterable[Path]) -> None:
    """Lazily unmount anything mounted at or below `roots`, deepest first."""
    prefixes = [str(r) for r in roots]
    under = [p for p in _mount_points() if any(p == r or p.startswith(r + "/") for r in prefixes)]
    if not under:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for point in sorted(under, key=len, reverse=True):
        if libc.umount2(point.encode(), _MNT_DETACH) != 0:
            warnings.warn(f"could not unmount {point}: {os.strerror(ctypes.get_errno())}", stacklevel=2)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
    if path.exists():
        warnings.warn(f"could not remove {path}", stacklevel=2)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@atexit.register
def _stop_leftovers() -> None:
    """Last resort when a test session dies before its fixtures' teardown."""
    for thing in list(_live):
        try:
            thing.stop()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass

"""The shared build cache (cache/): protocol and settings as pure units; then the real go driving
kbuild's GOCACHEPROG program against a real registry and moto's real S3 server: two runners that
share nothing but the store, and the faults (down mid-build, corrupted blob, 500, hang, read-only).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cache import protocol
from cache.config import parse, resolve
from cache.env import go_supports, prog_command, summary_line, warning_line
from cache.local import LocalCache, format_entry, parse_entry
from cache.oci import manifest_for, output_of
from cache.s3 import entry_body, parse_entry_body
from cache.store import StoreError
from common.errors import UsageError
from tests.conftest import inv, require

TARGET = "cmd/kubectl"
BIN = Path("_output/local/bin/linux/amd64/kubectl")


# --- pure units --------------------------------------------------------------------------------

def _request_bytes(req_id: int, command: str, action: bytes = b"", output: bytes = b"", body: bytes = b"") -> bytes:
    doc: dict[str, object] = {"ID": req_id, "Command": command}
    if action:
        doc["ActionID"] = base64.b64encode(action).decode()
    if output:
        doc["OutputID"] = base64.b64encode(output).decode()
    if body:
        doc["BodySize"] = len(body)
    out = json.dumps(doc).encode() + b"\n\n"  # go's encoder newline, then its own
    if body:
        out += json.dumps(base64.b64encode(body).decode()).encode() + b"\n"
    return out


def test_protocol_reads_requests_with_bodies() -> None:
    body = b"object bytes"
    aid, oid = hashlib.sha256(b"a").digest(), hashlib.sha256(body).digest()
    stream = io.BytesIO(_request_bytes(1, "get", aid) + _request_bytes(2, "put", aid, oid, body)
                        + _request_bytes(3, "put", aid, hashlib.sha256(b"").digest()) + _request_bytes(4, "close"))
    got = [protocol.read_request(stream) for _ in range(5)]
    assert got[0] == protocol.Request(1, "get", aid.hex())
    assert got[1] == protocol.Request(2, "put", aid.hex(), oid.hex(), body)
    assert got[2] is not None and got[2].body == b"" and got[2].output == hashlib.sha256(b"").hexdigest()
    assert got[3] is not None and got[3].command == "close"
    assert got[4] is None


@pytest.mark.parametrize("raw", [b"not json\n", b'{"Command":"get"}\n', b'{"ID":1,"Command":"get","ActionID":"eA=="}\n',
                                 b'{"ID":1,"Command":"put","BodySize":5}\n"YWJj"\n'])
def test_protocol_refuses_garbage(raw: bytes) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.read_request(io.BytesIO(raw))


def test_protocol_answers() -> None:
    oid = hashlib.sha256(b"x").hexdigest()
    assert json.loads(protocol.hello()) == {"ID": 0, "KnownCommands": ["get", "put", "close"]}
    hit = protocol.hit(7, oid, 1, "/c/x-d")
    assert base64.b64decode(hit["OutputID"]).hex() == oid and hit["DiskPath"] == "/c/x-d" and hit["ID"] == 7
    assert protocol.miss(3) == {"ID": 3, "Miss": True}


def test_local_layer_is_gos_layout(tmp_path: Path) -> None:
    aid, body = "ab" * 32, b"hello"
    oid = hashlib.sha256(body).hexdigest()
    entry = format_entry(aid, oid, len(body), now_ns=1)
    assert len(entry) == 2 + 1 + 64 + 1 + 64 + 1 + 20 + 1 + 20 + 1
    assert parse_entry(aid, entry) is not None and parse_entry("cd" * 32, entry) is None
    assert parse_entry(aid, entry[:-2] + b"x\n") is not None  # the time field is not read
    assert parse_entry(aid, b"v1 garbage\n") is None
    local = LocalCache(tmp_path)
    path = local.put_body(oid, body)
    local.put_entry(aid, oid, len(body))
    assert path == tmp_path / oid[:2] / f"{oid}-d" and path.read_bytes() == body
    got = local.get(aid)
    assert got is not None and got[0].output == oid and got[1] == path
    path.write_bytes(b"hell")  # a truncated output is no hit
    assert local.get(aid) is None


@pytest.mark.parametrize("url,kind,field,value", [
    ("oci://127.0.0.1:5000/kbuild/gocache", "oci", "scheme", "http"),
    ("oci://localhost:5000/kbuild/gocache", "oci", "scheme", "http"),
    ("oci://registry.example.com/team/gocache", "oci", "scheme", "https"),
    ("oci+http://cache.internal:5000/gocache", "oci", "scheme", "http"),
    ("s3://kbuild-cache/ci/gocache", "s3", "prefix", "ci/gocache"),
    ("s3://kbuild-cache", "s3", "prefix", ""),
])
def test_urls(url: str, kind: str, field: str, value: str) -> None:
    remote = parse(url)
    assert remote.kind == kind and getattr(remote, field) == value and remote.mode == "readwrite"


@pytest.mark.parametrize("url", ["http://x/y", "oci://127.0.0.1:5000", "oci://h/UPPER", "oci://u:p@h/r",
                                 "s3://Bad_Bucket/x", "s3://ok-bucket/a//b", "oci://h/r?x=1", ""])
def test_bad_urls(url: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(url)
    assert "u:p" not in err.value.message or "credentials" in err.value.message


def test_settings_order() -> None:
    env = {"KBUILD_REMOTE_CACHE": "s3://from-env/p", "KBUILD_REMOTE_CACHE_MODE": "read"}
    cfg = {"remote": "oci://127.0.0.1:1/from/config", "mode": "readwrite"}
    assert resolve(None, None, {}, None) is None
    assert resolve(None, None, {}, cfg) == parse("oci://127.0.0.1:1/from/config")
    got = resolve(None, None, env, cfg)
    assert got is not None and got.bucket == "from-env" and got.mode == "read"
    got = resolve("oci://127.0.0.1:1/flag/repo", "readwrite", env, cfg)
    assert got is not None and got.repo == "flag/repo" and got.writes
    with pytest.raises(UsageError, match="KBUILD_REMOTE_CACHE_MODE"):
        resolve(None, None, {"KBUILD_REMOTE_CACHE_MODE": "write"}, None)


def test_store_records() -> None:
    oid = hashlib.sha256(b"x").hexdigest()
    assert output_of(manifest_for("ab" * 32, oid, 1)) == (oid, 1)
    assert parse_entry_body(entry_body(oid, 12)) == (oid, 12)
    for bad in (b"{}", b'{"layers":[{"digest":"md5:x","size":1}]}'):
        with pytest.raises(StoreError):
            output_of(bad)
    with pytest.raises(StoreError):
        parse_entry_body(b"nope")


def test_env_helpers() -> None:
    assert go_supports("go1.24.0") and go_supports("go1.27.3") and not go_supports("go1.23.5")
    assert prog_command("/usr/bin/python3", Path("/a b/cache/prog.py")) == "/usr/bin/python3 '/a b/cache/prog.py'"
    assert prog_command("/x'y\"/python3", Path("/p")) is None
    remote = parse("oci://127.0.0.1:5000/kbuild/gocache", "read")
    line = summary_line(remote, {"remote_hits": 5, "misses": 2, "bytes_down": 2_500_000, "wait_seconds": 1.25}, 0)
    assert "5 remote hits" in line and "2 misses" in line and "2.4 MiB down" in line and "1.2s waiting" in line
    assert "0 packages compiled" in line and "(read-only)" in line
    warn = warning_line(remote, {"corrupt": "bad blob", "unreachable": "refused"})
    assert warn.startswith("WARNING") and warn.index("refused") < warn.index("bad blob") and "\n" not in warn


def test_progress_shows_remote_hits_apart() -> None:
    from build.progress import GoOutput

    stream = io.StringIO()
    lines: list[str] = []
    with GoOutput("kubectl linux/amd64", None, stream=stream, say=lines.append, live=False, every=0,
                  hits=lambda: (812, 40)) as out:
        out.feed("k8s.io/kubernetes/cmd/kubectl\n")
    assert any("1 packages compiled, cache hits: 812 remote, 40 local" in line for line in lines), lines
    plain: list[str] = []
    with GoOutput("kubectl linux/amd64", None, stream=stream, say=plain.append, live=False, every=0) as out:
        out.feed("k8s.io/kubernetes/cmd/kubectl\n")
    assert plain and all("cache hits" not in line and "compiled" not in line for line in plain)


# --- the real go, the real stores ---------------------------------------------------------------

def _build(tree: Path, gocache: Path, remote: str | None, *extra: str, env: dict[str, str] | None = None,
           mode: str | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    args = ["build", "--kube-root", str(tree), "--what", TARGET, *extra]
    if remote:
        args += ["--remote-cache", remote]
    if mode:
        args += ["--remote-cache-mode", mode]
    full = {**os.environ, "GOCACHE": str(gocache), **(env or {})}
    start = time.monotonic()
    proc = inv(*args, env=full)
    return proc, time.monotonic() - start


def _summary(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("remote cache ")]
    assert len(lines) == 1, stderr
    return lines[0]


def _count(summary: str, what: str) -> int:
    import re

    m = re.search(rf"(\d+) {what}", summary)
    assert m, summary
    return int(m.group(1))


def _fresh(pristine: Path, dest: Path) -> Path:
    """A fresh checkout at ``dest``: the same commit (so the same version stamp), nothing built."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(pristine, dest, symlinks=True)
    return dest


class Runners:
    """Runner A's work: the pristine tree, the path both runners build at, A's GOCACHE and binary."""

    def __init__(self, base: Path, sample_tree: Path) -> None:
        self.base = base
        self.pristine = base / "pristine"
        shutil.copytree(sample_tree, self.pristine, symlinks=True)
        self.tree = base / "work" / "kubernetes"   # the CI checkout path, the same for every runner
        self.gocache_a = base / "gocache-a"
        self.binary_a = b""


@pytest.fixture(scope="module")
def sample_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from workspace.sample import materialize
    from workspace.source import init_repo

    dest = tmp_path_factory.mktemp("sample") / "kubernetes"
    materialize(dest, "gopath")
    init_repo(dest, "v1.20.2")
    return dest


@pytest.fixture(scope="module")
def filled_registry(registry, sample_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Runners:
    """Runner A: an empty private GOCACHE, builds the target and fills the session registry."""
    runners = Runners(tmp_path_factory.mktemp("oci-runners"), sample_tree)
    tree = _fresh(runners.pristine, runners.tree)
    proc, _ = _build(tree, runners.gocache_a, f"oci://{registry.address}/kbuild/gocache")
    assert proc.returncode == 0, proc.stderr
    summary = _summary(proc.stderr)
    assert _count(summary, "remote hits") == 0 and _count(summary, "packages compiled") > 20
    assert "WARNING" not in proc.stderr
    runners.binary_a = (tree / BIN).read_bytes()
    return runners


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from tests._support import engine
    from tests._support.s3 import start_moto

    try:
        server = start_moto(tmp_path_factory.mktemp("moto"))
    except engine.EngineError as exc:
        require(False, f"moto's S3 server: {exc}")
    try:
        server.make_bucket()
        yield server
    finally:
        server.stop()


@pytest.mark.go
@pytest.mark.engine
def test_two_runners_share_a_registry(filled_registry: Runners, registry, tmp_path: Path) -> None:
    tree = _fresh(filled_registry.pristine, filled_registry.tree)
    proc, _ = _build(tree, tmp_path / "gocache-b", f"oci://{registry.address}/kbuild/gocache")
    assert proc.returncode == 0, proc.stderr
    summary = _summary(proc.stderr)
    assert _count(summary, "remote hits") > 50, summary
    assert _count(summary, "packages compiled") == 0, summary
    assert "WARNING" not in proc.stderr and "Traceback" not in proc.stderr
    assert (tree / BIN).read_bytes() == filled_registry.binary_a


@pytest.mark.go
def test_two_runners_share_s3(moto, sample_tree: Path, tmp_path: Path) -> None:
    runners = Runners(tmp_path, sample_tree)
    env = moto.env()  # type: ignore[attr-defined]
    url = "s3://kbuild-cache/ci/gocache"
    tree = _fresh(runners.pristine, runners.tree)
    proc, _ = _build(tree, tmp_path / "gocache-a", url, env=env)
    assert proc.returncode == 0, proc.stderr
    assert _count(_summary(proc.stderr), "packages compiled") > 20
    binary_a = (tree / BIN).read_bytes()
    tree = _fresh(runners.pristine, runners.tree)
    proc, _ = _build(tree, tmp_path / "gocache-b", url, env=env, mode="read")
    assert proc.returncode == 0, proc.stderr
    summary = _summary(proc.stderr)
    assert _count(summary, "remote hits") > 50 and _count(summary, "packages compiled") == 0, summary
    assert "0 B up (read-only)" in summary
    assert "WARNING" not in proc.stderr
    assert (tree / BIN).read_bytes() == binary_a


# --- faults: each build succeeds, one warning, bounded time, the binary of a cache-less build ------

def _fault_tree(runners: Runners, gocache: Path, marker: str) -> Path:
    """Runner A's tree with the main package changed (so go asks the store for it), and a copy of
    A's GOCACHE (so only that package and the link are missing locally)."""
    tree = _fresh(runners.pristine, runners.tree)
    main = tree / TARGET / "kubectl.go"
    main.write_text(main.read_text() + f"\n// fault case {marker}\n")
    if gocache.exists():
        shutil.rmtree(gocache)
    shutil.copytree(runners.gocache_a, gocache)
    return tree


def _check_fault(runners: Runners, tree: Path, proc: subprocess.CompletedProcess[str], seconds: float,
                 bound: float, gocache: Path, expect: str) -> None:
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "WARNING" in ln]
    assert len(warnings) == 1, proc.stderr
    assert expect in warnings[0], warnings[0]
    assert "Traceback" not in proc.stderr and "GOCACHEPROG" not in proc.stderr
    assert seconds < bound, f"{seconds:.1f}s"
    got = (tree / BIN).read_bytes()
    # The same tree built without any remote cache.
    plain, _ = _build(tree, gocache, None, "--force")
    assert plain.returncode == 0, plain.stderr
    assert got == (tree / BIN).read_bytes()


class _Answer500(BaseHTTPRequestHandler):
    def _fail(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = _fail  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_500() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer500)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _FlakyRegistry(BaseHTTPRequestHandler):
    """500 to the first HEAD of each path (distribution's answer while a blob link is being written)."""

    seen: set[str] = set()
    requests: list[str] = []

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        type(self).requests.append(f"HEAD {self.path}")
        first = self.path not in type(self).seen
        type(self).seen.add(self.path)
        self.send_response(500 if first else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        type(self).requests.append(f"POST {self.path}")
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_oci_reads_retry_a_transient_500_writes_do_not() -> None:
    from cache.config import parse
    from cache.oci import OciStore
    from cache.store import StoreError

    _FlakyRegistry.seen, _FlakyRegistry.requests = set(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store = OciStore(parse(f"oci://127.0.0.1:{server.server_address[1]}/kbuild/gocache"), {})
        assert store._has_blob("sha256:" + "a" * 64) is False  # 500, then the real answer: 404
        assert _FlakyRegistry.requests == [f"HEAD /v2/kbuild/gocache/blobs/sha256:{'a' * 64}"] * 2
        with pytest.raises(StoreError, match="answered 500 to POST"):
            store._push_blob("sha256:" + "b" * 64, b"x", 1)  # HEAD retried; the POST is not repeated
        posts = [r for r in _FlakyRegistry.requests if r.startswith("POST")]
        assert posts == ["POST /v2/kbuild/gocache/blobs/uploads/"]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server_hang() -> Iterator[str]:
    """Accepts connections and never answers (until the test ends)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        done.set()
        thread.join(2)
        for conn in held:
            conn.close()
        sock.close()


@pytest.mark.go
@pytest.mark.engine
@pytest.mark.parametrize("store", ["oci", "s3"])
def test_fault_500(filled_registry: Runners, server_500: str, tmp_path: Path, store: str) -> None:
    tree = _fault_tree(filled_registry, tmp_path / "gc", f"500 {store}")
    if store == "s3":  # an S3 endpoint that answers 500 to everything
        env = {"AWS_ENDPOINT_URL": f"http://{server_500}", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
        proc, seconds = _build(tree, tmp_path / "gc", "s3://kbuild-cache/p", env=env)
        expect = "answered 500"
    else:
        proc, seconds = _build(tree, tmp_path / "gc", f"oci://{server_500}/kbuild/gocache")
        expect = "answered 500"
    _check_fault(filled_registry, tree, proc, seconds, 60, tmp_path / "gc", expect)


@pytest.mark.go
@pytest.mark.engine
def test_fault_hang(filled_registry: Runners, server_hang: str, tmp_path: Path) -> None:
    tree = _fault_tree(filled_registry, tmp_path / "gc", "hang")
    proc, seconds = _build(tree, tmp_path / "gc", f"oci://{server_hang}/kbuild/gocache")
    _check_fault(filled_registry, tree, proc, seconds, 60, tmp_path / "gc", "no answer within the read timeout")


def _private_registry(workdir: Path, readonly: bool = False):
    from tests._support import engine

    try:
        reg = engine.start_registry(workdir)
    except engine.EngineError as exc:
        require(False, f"a local registry: {exc}")
    if readonly:  # restart it with read-only storage (same port, same root)
        reg.proc.terminate()
        reg.proc.wait(10)
        config = workdir / "registry.yml"
        text = config.read_text().replace("  delete:\n    enabled: true\n",
                                          "  maintenance:\n    readonly:\n      enabled: true\n")
        config.write_text(text)
        with open(reg.log_path, "ab") as log:
            reg.proc = subprocess.Popen([shutil.which("docker-registry") or "docker-registry", "serve", str(config)],
                                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        reg.pid = reg.proc.pid
        deadline = time.monotonic() + 20
        while not reg.ping(timeout=1):
            assert time.monotonic() < deadline, reg.log_tail()
            time.sleep(0.1)
    return reg


@pytest.mark.go
@pytest.mark.engine
def test_fault_read_only_registry(filled_registry: Runners, tmp_path: Path) -> None:
    reg = _private_registry(tmp_path / "registry", readonly=True)
    try:
        tree = _fault_tree(filled_registry, tmp_path / "gc", "readonly")
        proc, seconds = _build(tree, tmp_path / "gc", f"oci://{reg.address}/kbuild/gocache")
        assert "refused a write" in proc.stderr, proc.stderr
        _check_fault(filled_registry, tree, proc, seconds, 60, tmp_path / "gc", "refused a write")
    finally:
        reg.stop()


def _fill(runners: Runners, url: str, gocache: Path, marker: str) -> None:
    tree = _fault_tree(runners, gocache, marker)
    proc, _ = _build(tree, gocache, url)
    assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
    assert _count(_summary(proc.stderr), "packages compiled") >= 1


@pytest.mark.go
@pytest.mark.engine
def test_fault_corrupted_blob(filled_registry: Runners, tmp_path: Path) -> None:
    reg = _private_registry(tmp_path / "registry")
    try:
        url = f"oci://{reg.address}/kbuild/gocache"
        _fill(filled_registry, url, tmp_path / "gc-fill", "corrupt")
        flipped = 0
        for data in (reg.storage / "docker/registry/v2/blobs").rglob("data"):
            raw = bytearray(data.read_bytes())
            if len(raw) > 2 and b'"schemaVersion"' not in raw:  # outputs only: not the manifests, not the config
                raw[len(raw) // 2] ^= 0xFF
                data.write_bytes(bytes(raw))
                flipped += 1
        assert flipped >= 1
        tree = _fault_tree(filled_registry, tmp_path / "gc", "corrupt")  # runner B: the same change
        proc, seconds = _build(tree, tmp_path / "gc", url)
        summary = _summary(proc.stderr)
        assert _count(summary, "remote hits") == 0 and _count(summary, "packages compiled") >= 1, summary
        _check_fault(filled_registry, tree, proc, seconds, 60, tmp_path / "gc", "not what its entry says")
    finally:
        reg.stop()


class _KillingProxy:
    """A loopback TCP proxy to a registry that stops the registry (by pid) when the first client connects."""

    def __init__(self, registry) -> None:
        self.registry = registry
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.done = threading.Event()
        self.killed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _run(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if not self.killed.is_set():
                self.registry.proc.kill()  # the registry goes away mid-build
                self.registry.proc.wait(10)
                self.killed.set()
            conn.close()  # nothing behind it any more

    def close(self) -> None:
        self.done.set()
        self.thread.join(2)
        self.sock.close()


@pytest.mark.go
@pytest.mark.engine
def test_fault_registry_stopped_mid_build(filled_registry: Runners, tmp_path: Path) -> None:
    reg = _private_registry(tmp_path / "registry")
    proxy = None
    try:
        _fill(filled_registry, f"oci://{reg.address}/kbuild/gocache", tmp_path / "gc-fill", "stopped")
        proxy = _KillingProxy(reg)
        tree = _fault_tree(filled_registry, tmp_path / "gc", "stopped")
        proc, seconds = _build(tree, tmp_path / "gc", f"oci://{proxy.address}/kbuild/gocache")
        assert proxy.killed.is_set() and reg.proc.poll() is not None
        _check_fault(filled_registry, tree, proc, seconds, 60, tmp_path / "gc", "127.0.0.1")
    finally:
        if proxy:
            proxy.close()
        reg.stop()


@pytest.mark.engine
def test_doctor_row(registry, sample_tree: Path, server_hang: str) -> None:
    ok = inv("doctor", "--kube-root", str(sample_tree), "--remote-cache", f"oci://{registry.address}/kbuild/doctor")
    from tests._support.doctor import doctor_rows

    row = [doctor_rows(ok.stdout).get("remote cache", "")]  # the wrapped detail's lines joined
    assert row[0] and " ok " in row[0] and "reachable" in row[0] and "write ok" in row[0], ok.stdout + ok.stderr
    start = time.monotonic()
    down = inv("doctor", "--kube-root", str(sample_tree), "--remote-cache", f"oci://{server_hang}/kbuild/doctor")
    row = [doctor_rows(down.stdout).get("remote cache", "")]
    assert row[0] and "WARN" in row[0] and "not usable" in row[0], down.stdout + down.stderr
    assert time.monotonic() - start < 30
    bad = inv("build", "--kube-root", str(sample_tree), "--remote-cache", "ftp://x/y", "--dry-run")
    assert bad.returncode == 2 and "ERROR --remote-cache 'ftp://x/y': unknown kind of store" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.go
@pytest.mark.engine
def test_native_release_builds_use_it(filled_registry: Runners, registry, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The native release's builds (build/release/modes/native.py) get the setting through the environment."""
    from build.release.modes.native import build_binaries
    from build.release.plan import TargetGroup
    from build.version import compute
    from workspace.tree import load_tree

    tree = load_tree(_fresh(filled_registry.pristine, filled_registry.tree))
    monkeypatch.setenv("GOCACHE", str(tmp_path / "gocache-native"))
    environ = {**os.environ, "KBUILD_REMOTE_CACHE": f"oci://{registry.address}/kbuild/gocache",
               "KBUILD_REMOTE_CACHE_MODE": "read"}
    said: list[str] = []
    built = build_binaries(tree, [TargetGroup("client", (TARGET,), ("linux/amd64",))], compute(tree.root, environ),
                           environ, said.append)
    summary = [line for line in said if line.startswith("remote cache ")]
    assert len(summary) == 1 and _count(summary[0], "remote hits") > 50, said
    assert _count(summary[0], "packages compiled") == 0, summary
    assert built and built[0].path.read_bytes() == filled_registry.binary_a

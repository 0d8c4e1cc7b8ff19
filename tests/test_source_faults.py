"""`inv source` under faults (issue 19, cases 5, 16, 17): servers that stall, transports that can hang
or run commands, a real Ctrl-C mid-clone and mid-fetch, local paths with a space.

The servers are real, on free loopback ports: one accepts and never answers; one serves git's
smart HTTP through the real `git http-backend` and can stop in the middle of the pack.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from common.errors import UsageError
from tests.conftest import REPO, git, inv, require, sigint_default
from workspace.sample import materialize
from workspace.source import init_repo, stall_seconds, url_kind

BOUND = 15.0  # seconds: every stalled case must end well within this (the stall limit is 3 s)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR")]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "KBUILD_STALL_SECONDS": "3", **extra}


def _staging_left(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".kbuild-source-" in p.name)


def _make_upstream(path: Path) -> Path:
    """The sample tree with v1.20.1 and v1.20.2 (annotated) and a 256 KiB incompressible file,
    so the pack is big enough to be cut in the middle."""
    repo = materialize(path, "gopath")
    (repo / "blob.bin").write_bytes(os.urandom(256 * 1024))
    init_repo(repo, "v1.20.1", message="release 1.20.1")
    with (repo / "README.md").open("a") as f:
        f.write("\nv1.20.2 notes\n")
    git(repo, "commit", "-q", "-a", "-m", "release 1.20.2")
    git(repo, "tag", "-a", "v1.20.2", "-m", "v1.20.2")
    return repo


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    return _make_upstream(tmp_path / "upstream")


# --- servers -----------------------------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


class GitHTTP:
    """`git http-backend` behind a tiny HTTP server; with ``stall`` it sends the headers and the
    start of the pack (a few bytes past its PACK signature), then nothing."""

    def __init__(self, root: Path, stall: bool) -> None:
        self.root, self.stall = root, stall
        self.stalled = threading.Event()  # set when a response has been cut
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
                pass

            def do_GET(self) -> None:
                outer.handle(self)

            def do_POST(self) -> None:
                outer.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/k.git"

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        path, _, query = req.path.partition("?")
        body = req.rfile.read(int(req.headers.get("Content-Length") or 0))
        env = {"PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
               "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": req.command,
               "CONTENT_TYPE": req.headers.get("Content-Type") or "", "CONTENT_LENGTH": str(len(body)),
               "REMOTE_ADDR": "127.0.0.1", "GIT_CONFIG_NOSYSTEM": "1"}
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "GIT_PROTOCOL")):
            if req.headers.get(header):
                env[var] = req.headers[header]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=30,
                             check=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode().split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        req.send_response(status)
        for name, value in headers:
            req.send_header(name, value)
        req.end_headers()
        cut = payload.find(b"PACK")
        if self.stall and cut >= 0:
            req.wfile.write(payload[:cut + 64])  # the headers and the start of the pack, then silence
            req.wfile.flush()
            self.stalled.set()
            self.release.wait(timeout=120)
            return
        req.wfile.write(payload)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def git_http(upstream: Path, tmp_path: Path) -> Iterator[Callable[[bool], GitHTTP]]:
    """Factory: git_http(stall) -> a GitHTTP serving ``upstream`` as /k.git."""
    root = tmp_path / "served"
    root.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(upstream), str(root / "k.git")], check=True)
    servers: list[GitHTTP] = []

    def make(stall: bool) -> GitHTTP:
        servers.append(GitHTTP(root, stall))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _processes_in(directory: Path) -> list[int]:
    """Pids whose working directory is inside ``directory`` (a git left running there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd == str(directory) or cwd.startswith(f"{directory}/"):
                found.append(int(entry.name))
    return found


# --- case 5: stalls end, with one line ----------------------------------------------------------


def test_server_that_never_answers(silent_port: int, tmp_path: Path) -> None:
    """Accepts, never answers; the URL carries a password, which no line may show."""
    url = f"http://kbuser:s3cretPW@127.0.0.1:{silent_port}/k.git"
    dest = tmp_path / "k"
    started = time.monotonic()
    proc = inv("source", "--ref", "v1.20.2", "--url", url, "--dest", str(dest), env=_env())
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, elapsed
    assert proc.returncode == 1, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1, proc.stderr
    # git's own low-speed limit fired (not just the watchdog): the http deadline works
    assert f"http://kbuser:***@127.0.0.1:{silent_port}/k.git" in errors[0], errors
    assert "stalled (less than 1000 bytes/s for 3 s)" in errors[0], errors
    assert "s3cretPW" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr
    assert not dest.exists()
    assert _staging_left(tmp_path) == []


def test_git_protocol_server_that_never_answers(silent_port: int, tmp_path: Path) -> None:
    """git:// has no low-speed limit: the watchdog ends it."""
    url = f"git://127.0.0.1:{silent_port}/k.git"
    dest = tmp_path / "k"
    started = time.monotonic()
    proc = inv("source", "--ref", "v1.20.2", "--url", url, "--dest", str(dest), env=_env())
    assert time.monotonic() - started < BOUND
    assert proc.returncode == 1, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and url in errors[0] and "stalled (no progress for" in errors[0], proc.stderr
    assert not dest.exists() and _staging_left(tmp_path) == []
    assert _processes_in(tmp_path) == []


def test_ssh_server_that_never_answers(silent_port: int, tmp_path: Path) -> None:
    """ssh gets ConnectTimeout (it covers the banner exchange) and BatchMode: no prompt, no hang."""
    require(shutil.which("ssh") is not None, "an ssh client (apt-get install openssh-client)")
    url = f"ssh://git@127.0.0.1:{silent_port}/k.git"
    dest = tmp_path / "k"
    started = time.monotonic()
    proc = inv("source", "--ref", "v1.20.2", "--url", url, "--dest", str(dest), env=_env(HOME=str(tmp_path)))
    assert time.monotonic() - started < BOUND
    assert proc.returncode == 1, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and url in errors[0] and "timed out" in errors[0], proc.stderr
    assert not dest.exists() and _staging_left(tmp_path) == []


def test_smart_http_serves(git_http: Callable[[bool], GitHTTP], upstream: Path, tmp_path: Path) -> None:
    """The control for the stall below: the same server, not stalling, gives a good clone."""
    server = git_http(False)
    dest = tmp_path / "k"
    inv("source", "--ref", "v1.20.2", "--url", server.url, "--dest", str(dest), env=_env(), check=True)
    assert git(dest, "rev-parse", "HEAD") == git(upstream, "rev-parse", "v1.20.2^{commit}")
    assert (dest / "blob.bin").read_bytes() == (upstream / "blob.bin").read_bytes()


def test_server_that_stalls_mid_pack(git_http: Callable[[bool], GitHTTP], tmp_path: Path) -> None:
    server = git_http(True)
    dest = tmp_path / "k"
    started = time.monotonic()
    proc = inv("source", "--ref", "v1.20.2", "--url", server.url, "--dest", str(dest), env=_env())
    assert time.monotonic() - started < BOUND
    assert server.stalled.is_set()  # it really stopped in the middle of the pack
    assert proc.returncode == 1, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and server.url in errors[0] and "stalled" in errors[0], proc.stderr
    assert not dest.exists() and _staging_left(tmp_path) == []
    assert _processes_in(tmp_path) == []


@pytest.mark.parametrize("url", ["fd::3", "ext::sh -c 'touch pwned'", "ftp://127.0.0.1/k.git"])
def test_transports_that_can_hang_or_run_commands_are_refused(tmp_path: Path, url: str) -> None:
    dest = tmp_path / "k"
    started = time.monotonic()
    proc = inv("source", "--ref", "v1.20.2", "--url", url, "--dest", str(dest), cwd=tmp_path, env=_env())
    assert time.monotonic() - started < BOUND
    assert proc.returncode == 2, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and url in errors[0] and "not allowed" in errors[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no dest, no staging, no "pwned"


@pytest.mark.parametrize("value", ["ten", "0"])
def test_bad_stall_seconds(tmp_path: Path, value: str) -> None:
    dest = tmp_path / "k"
    proc = inv("source", "--ref", "v1.20.2", "--url", str(tmp_path / "nowhere"), "--dest", str(dest),
               env={**os.environ, "KBUILD_STALL_SECONDS": value})
    assert proc.returncode == 2, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and "KBUILD_STALL_SECONDS" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not dest.exists()


def test_stall_seconds_unit() -> None:
    assert stall_seconds({}) == 60
    assert stall_seconds({"KBUILD_STALL_SECONDS": " 7 "}) == 7
    assert stall_seconds({"KBUILD_STALL_SECONDS": "2.5"}) == 3  # as images.engine reads it, rounded up for git
    for bad in ("x", "0", "-5", "4s", "nan", "inf"):
        with pytest.raises(UsageError):
            stall_seconds({"KBUILD_STALL_SECONDS": bad})


@pytest.mark.parametrize(("url", "kind"), [
    ("https://github.com/kubernetes/kubernetes.git", "https"), ("http://h/k.git", "http"),
    ("ssh://git@h/k.git", "ssh"), ("git+ssh://h/k", "ssh"), ("git@github.com:k/k.git", "ssh"),
    ("git://h/k.git", "git"), ("file:///srv/my%20repo", "file"), ("/srv/my repo", "file"),
    ("./a:b", "file"), ("relative dir/k", "file"), ("HTTPS://h/k.git", "https"),
])
def test_url_kind(url: str, kind: str) -> None:
    assert url_kind(url) == kind


@pytest.mark.parametrize("url", ["fd::3", "FD::0", "ext::sh -c touch% pwned", "foo::bar", "ftp://h/k",
                                 "rsync://h/k", "https://h/a b", "file:///a b", "-x", "",
                                 "/a\nb", "host name:path", "/a\x1b[31m"])
def test_url_kind_refuses(url: str) -> None:
    with pytest.raises(UsageError):
        url_kind(url)


# --- case 16: a real Ctrl-C leaves --dest as it was ----------------------------------------------


def _interrupt(args: list[str], server: GitHTTP, watch: Path, staging_in: Path | None = None
               ) -> subprocess.CompletedProcess[str]:
    """Start `inv source` in its own process group with SIGINT at its default, wait until the
    server has cut the pack (git is mid-transfer), then Ctrl-C the whole group."""
    exe = shutil.which("inv") or "inv"
    child = subprocess.Popen([exe, "--search-root", str(REPO), *args], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "KBUILD_STALL_SECONDS": "60"},
                             start_new_session=True, preexec_fn=sigint_default)
    try:
        assert server.stalled.wait(timeout=20), "the clone never reached the pack"
        assert _processes_in(watch), "no git running in the target"  # git is mid-fetch right now
        if staging_in is not None:
            assert _staging_left(staging_in), "no staging directory while cloning"
        os.killpg(child.pid, signal.SIGINT)
        out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
    return subprocess.CompletedProcess(child.args, child.returncode, out, err)


def test_ctrl_c_mid_clone_leaves_no_dest(git_http: Callable[[bool], GitHTTP], tmp_path: Path) -> None:
    server = git_http(True)
    parent = tmp_path / "new" / "place"  # parents that do not exist yet: made, then removed again
    dest = parent / "k"
    started = time.monotonic()
    proc = _interrupt(["source", "--ref", "v1.20.2", "--url", server.url, "--dest", str(dest)], server, tmp_path,
                      staging_in=parent)
    assert time.monotonic() - started < BOUND
    assert proc.returncode == 130, proc.stderr
    assert len(_errors(proc.stderr)) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "new").exists()
    assert _processes_in(tmp_path) == []


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (the .git too) by relative path, with its bytes (a link's target)."""
    shot = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            shot[rel] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            shot[rel] = path.read_bytes()
        else:
            shot[rel] = b"<dir>"
    return shot


def test_ctrl_c_mid_fetch_keeps_existing_clone(git_http: Callable[[bool], GitHTTP], upstream: Path,
                                               tmp_path: Path) -> None:
    dest = tmp_path / "k"
    inv("source", "--ref", "v1.20.2", "--url", f"file://{upstream}", "--dest", str(dest), check=True)
    head = git(dest, "rev-parse", "HEAD")
    before = _snapshot(dest)
    server = git_http(True)
    proc = _interrupt(["source", "--ref", "v1.20.1", "--url", server.url, "--dest", str(dest)], server, dest)
    assert proc.returncode == 130, proc.stderr
    assert len(_errors(proc.stderr)) == 1, proc.stderr
    assert git(dest, "rev-parse", "HEAD") == head
    assert git(dest, "status", "--porcelain") == ""
    git(dest, "fsck", "--no-progress")
    assert _snapshot(dest) == before  # the work tree and every byte of .git (no lock, no temporary pack)
    assert _processes_in(tmp_path) == []


def test_ctrl_c_during_checkout_puts_the_old_checkout_back(upstream: Path, tmp_path: Path) -> None:
    """Ctrl-C while git checks out the new tag in an existing clone: the checkout is not cut in half;
    it finishes and the old one is put back. A post-checkout hook holds git there for a moment."""
    dest = tmp_path / "k"
    inv("source", "--ref", "v1.20.2", "--url", f"file://{upstream}", "--dest", str(dest), check=True)
    head = git(dest, "rev-parse", "HEAD")
    files = {p: b for p, b in _snapshot(dest).items() if not p.startswith(".git")}
    marker = tmp_path / "in-checkout"
    hook = dest / ".git" / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\nsleep 0.5\n")
    hook.chmod(0o755)
    child = subprocess.Popen([shutil.which("inv") or "inv", "--search-root", str(REPO), "source", "--ref", "v1.20.1",
                              "--url", f"file://{upstream}", "--dest", str(dest)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, preexec_fn=sigint_default)
    try:
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.02)
        assert marker.exists(), "the checkout never started"
        assert git(dest, "rev-parse", "HEAD") != head  # caught mid-step: the new tag is checked out
        os.killpg(child.pid, signal.SIGINT)
        _, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
    assert child.returncode == 130, err
    assert len(_errors(err)) == 1, err
    assert git(dest, "rev-parse", "HEAD") == head
    assert git(dest, "status", "--porcelain") == ""
    assert {p: b for p, b in _snapshot(dest).items() if not p.startswith(".git")} == files


# --- case 17: local paths with a space, file:// URLs ---------------------------------------------


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_local_repository_with_a_space(tmp_path: Path, form: str) -> None:
    repo = tmp_path / "my repo"
    materialize(repo, "gopath")
    init_repo(repo, "v1.20.2")
    url = str(repo) if form == "path" else "file://" + urllib.parse.quote(str(repo))
    dest = tmp_path / "k k"
    proc = inv("source", "--ref", "v1.20.2", "--url", url, "--dest", str(dest), env=_env())
    assert proc.returncode == 0, proc.stderr
    assert git(dest, "rev-parse", "HEAD") == git(repo, "rev-parse", "v1.20.2^{commit}")
    assert git(dest, "describe", "--tags", "--match=v*") == "v1.20.2"
    assert git(dest, "status", "--porcelain") == ""
    assert _staging_left(tmp_path) == []

"""Shared fixtures: real git, real Go, the real v1.20.2 tree; a clean environment for every test.

Tests needing a real part skip outside CI when it is missing, and FAIL in CI
(CI=true), so nothing that matters is silently skipped there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CACHE = Path(os.environ.get("KBUILD_CACHE", Path.home() / ".cache" / "kbuild"))
SHARED_GOCACHE = Path(os.environ.get("KBUILD_GOCACHE", CACHE / "gocache"))
REAL_TREE = Path(os.environ.get("KBUILD_REAL_TREE", CACHE / "src" / "kubernetes-1.20.2"))

# Variables that change what the tasks do; a developer's own settings must not leak in.
_SCRUB = ("KUBE_ROOT", "KUBE_BUILD_PLATFORMS", "KUBE_FASTBUILD", "KUBE_STATIC_OVERRIDES", "KUBE_CGO_OVERRIDES",
          "KUBE_GIT_VERSION_FILE", "KUBE_GIT_COMMIT", "KUBE_GIT_VERSION", "KUBE_GIT_TREE_STATE",
          "GOFLAGS", "GOLDFLAGS", "GOGCFLAGS", "DBG", "SOURCE_DATE_EPOCH", "GOOS", "GOARCH", "GOBIN",
          "GOPATH", "GO111MODULE", "GOWORK", "KUBE_EXTRA_GOPATH", "KBUILD_REMOTE_CACHE",
          "KBUILD_REMOTE_CACHE_MODE", "GOCACHEPROG")


def sigint_default() -> None:
    """preexec_fn for a child the test will Ctrl-C: SIGINT back to its default. A shell that starts
    a job with `&` and no job control (nohup ... &) makes it ignore SIGINT, and Python then never
    raises KeyboardInterrupt: the test would measure the runner's shell, not kbuild."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def require(condition: bool, why: str) -> None:
    """Skip outside CI, fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required for CI: {why}")
    pytest.skip(why)  # only outside CI: with CI=true the line above fails instead


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in _SCRUB:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("GOCACHE", str(SHARED_GOCACHE))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "kbuild-test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@localhost")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "kbuild-test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@localhost")


@pytest.fixture(scope="session")
def go_toolchain():
    from build.golang import find_go

    try:
        return find_go(os.environ)
    except Exception as exc:  # noqa: BLE001 - reported through require
        require(False, f"a Go toolchain: {exc}")


@pytest.fixture(scope="session")
def real_tree() -> Path:
    require((REAL_TREE / "hack" / "lib" / "version.sh").is_file(),
            f"the real Kubernetes v1.20.2 tree at {REAL_TREE} (.ci/run fetches it)")
    return REAL_TREE


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def inv(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None, check: bool = False
        ) -> subprocess.CompletedProcess[str]:
    """Run the real `inv` CLI against this repository's tasks.py."""
    exe = shutil.which("inv") or "inv"
    proc = subprocess.run([exe, "--search-root", str(REPO), *args], cwd=cwd, capture_output=True, text=True,
                          env=env if env is not None else dict(os.environ), stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"inv {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def sample_repo(tmp_path: Path):
    """Factory: the sample tree in an era's shape, as a git repository tagged as asked."""
    from workspace.sample import materialize
    from workspace.source import init_repo

    def make(era: str = "gopath", tag: str | None = "v1.20.2", name: str | None = None) -> Path:
        dest = tmp_path / (name or f"tree-{era}")
        materialize(dest, era)
        init_repo(dest, tag)
        return dest

    return make


# --- A real, private Docker engine and registry (tests/_support/engine.py) ----------------------
# Started once per session on a private socket and a free loopback port, stopped by pid at the
# end (also when tests fail). Images left by one test stay in the session engine: use unique names.


def _service(start, workdir: Path, need: str):
    """Start a service for a fixture (fail in CI / skip elsewhere if it can't), stop it afterwards."""
    from tests._support import engine

    try:
        service = start(workdir)
    except engine.EngineError as exc:
        require(False, f"{need}: {exc}")
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory):
    """The session's private dockerd (vfs, no bridge): `.host`, `.client()`, `.stop()`."""
    from tests._support import engine

    yield from _service(engine.start_dockerd, tmp_path_factory.mktemp("engine"),
                        "a private Docker engine (apt-get install docker.io)")


@pytest.fixture(scope="session")
def engine_client(docker_engine):
    """A docker.DockerClient for the session engine (no read timeout)."""
    return docker_engine.client()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory):
    """The session's registry on 127.0.0.1:PORT (plain HTTP, which the engine allows for loopback)."""
    from tests._support import engine

    yield from _service(engine.start_registry, tmp_path_factory.mktemp("registry"),
                        "a local registry (apt-get install docker-registry)")


@pytest.fixture
def fresh_engine(tmp_path_factory: pytest.TempPathFactory):
    """A second, empty dockerd for this test only, running beside the session engine."""
    from tests._support import engine

    yield from _service(engine.start_dockerd, tmp_path_factory.mktemp("fresh-engine"),
                        "a private Docker engine (apt-get install docker.io)")


@pytest.fixture
def tcp_engine(tmp_path_factory: pytest.TempPathFactory):
    """A second, empty dockerd reached over TCP on loopback (a stand-in for a remote engine)."""
    from tests._support import engine

    yield from _service(lambda d: engine.start_dockerd(d, tcp=True), tmp_path_factory.mktemp("tcp-engine"),
                        "a private Docker engine over TCP (apt-get install docker.io)")


@pytest.fixture
def mkimage(engine_client):
    """Factory: mkimage(repo_tag, marker=None, client=None) -> image id; a tiny offline busybox image."""
    from tests._support import engine

    def make(repo_tag: str, marker: str | None = None, client=None) -> str:
        return engine.make_image(client or engine_client, repo_tag, marker if marker is not None else repo_tag)

    return make


@pytest.fixture
def docker_host(docker_engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Point DOCKER_HOST at the session engine (for code under test and `inv` subprocesses);
    a private, empty DOCKER_CONFIG keeps a developer's own auth and contexts out."""
    for key in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT", "DOCKER_API_VERSION"):
        monkeypatch.delenv(key, raising=False)
    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    return docker_engine.host


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`go` and `docker` that fail loudly: sourcing common.sh must need neither."""
    d = tmp_path_factory.mktemp("stubs")
    for name in ("go", "docker"):
        (d / name).write_text(f"#!/bin/sh\necho 'stub {name} called' >&2\nexit 97\n")
        (d / name).chmod(0o755)
    return d

"""The real-engine test infrastructure itself: private dockerd, local registry, offline images."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from tests._support import engine
from tests._support.engine import OperationError, pull, push, repo_digests

pytestmark = pytest.mark.engine

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def registry_digest(registry: engine.Registry, name: str, tag: str) -> str:
    """The digest the registry itself serves for name:tag (HEAD on the manifest)."""
    req = urllib.request.Request(f"{registry.url}/v2/{name}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": MANIFEST_V2})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return resp.headers["Docker-Content-Digest"]


def test_engine_answers_ping_and_uses_vfs(docker_engine, engine_client):
    assert docker_engine.ping()
    assert engine_client.ping() is True
    assert engine_client.info()["Driver"] == "vfs"
    assert docker_engine.host == f"unix://{docker_engine.socket_path}"
    assert len(str(docker_engine.socket_path)) < 100
    assert engine_client.info()["DockerRootDir"] == str(docker_engine.data_root)


def test_image_round_trips_through_registry_with_same_digest(engine_client, registry, mkimage):
    name, ref = "kbuild/roundtrip", f"{registry.address}/kbuild/roundtrip:v1"
    image_id = mkimage(ref, "round-trip")
    assert engine_client.api.inspect_image(ref)["Size"] < 5_000_000

    digest = push(engine_client, ref)
    assert digest.startswith("sha256:")
    assert registry_digest(registry, name, "v1") == digest
    assert repo_digests(engine_client, ref) == [f"{registry.address}/{name}@{digest}"]

    engine_client.api.remove_image(image_id, force=True)
    assert not engine_client.images.list(name=f"{registry.address}/{name}")

    assert pull(engine_client, ref) == image_id
    assert repo_digests(engine_client, ref) == [f"{registry.address}/{name}@{digest}"]


def test_different_markers_give_different_digests(engine_client, registry, mkimage):
    refs = [f"{registry.address}/kbuild/markers:{m}" for m in ("alpha", "beta")]
    for ref, marker in zip(refs, ("alpha", "beta"), strict=True):
        mkimage(ref, marker)
    digests = [push(engine_client, ref) for ref in refs]
    layers = [engine_client.api.inspect_image(ref)["RootFS"]["Layers"] for ref in refs]
    assert digests[0] != digests[1]
    assert layers[0] != layers[1]


def test_same_marker_gives_same_layer():
    assert engine.rootfs_tar("same") == engine.rootfs_tar("same")
    assert engine.rootfs_tar("same") != engine.rootfs_tar("other")


def test_image_runs_and_carries_its_marker(engine_client, mkimage):
    mkimage("kbuild/runs:v1", "hello-marker")
    container = engine_client.containers.run("kbuild/runs:v1", ["cat", "/etc/kbuild-marker"], detach=True)
    try:
        assert container.wait(timeout=60)["StatusCode"] == 0
        assert container.logs() == b"hello-marker"
    finally:
        container.remove(force=True)


def test_push_and_pull_errors_are_raised(engine_client, registry):
    with pytest.raises(OperationError, match="does not exist locally"):
        push(engine_client, f"{registry.address}/kbuild/never-made:v1")
    with pytest.raises(OperationError, match="manifest unknown"):
        pull(engine_client, f"{registry.address}/kbuild/never-pushed:v1")


def test_fresh_engine_is_empty_and_independent(docker_engine, engine_client, fresh_engine, mkimage):
    fresh = fresh_engine.client()
    assert fresh.ping() is True
    assert fresh.images.list(all=True) == []
    assert fresh_engine.host != docker_engine.host
    assert fresh_engine.pid != docker_engine.pid
    assert fresh.info()["DockerRootDir"] != engine_client.info()["DockerRootDir"]

    mkimage("kbuild/only-in-fresh:v1", "fresh", client=fresh)
    assert fresh.images.list(name="kbuild/only-in-fresh")
    assert not engine_client.images.list(name="kbuild/only-in-fresh")
    assert docker_engine.ping()


def test_stop_leaves_nothing_behind(docker_engine, tmp_path: Path):  # docker_engine: skip without dockerd
    daemon = engine.start_dockerd(tmp_path / "engine")
    containerd = engine._pids_matching(f"{daemon.rundir}/")
    assert containerd, "dockerd should run its own containerd under its exec root"
    daemon.stop()
    assert not daemon.running()
    assert engine._pids_matching(f"{daemon.rundir}/") == []
    assert not daemon.rundir.exists()
    assert not daemon.data_root.exists()
    assert not daemon.ping(timeout=1)


def test_registry_start_reports_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(engine, "registry_config", lambda port, storage: "not: [valid yaml\n")
    with pytest.raises(engine.EngineError, match="docker-registry exited"):
        engine.start_registry(tmp_path / "broken", timeout=10)

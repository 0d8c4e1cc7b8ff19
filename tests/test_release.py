"""`inv release` end to end: the sample tree's build/release.sh builds inside a kube-cross stand-in on a real engine."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, inv

pytestmark = [pytest.mark.engine, pytest.mark.go]

CROSS = "k8s.gcr.io/build-image/kube-cross:v1.15.5-1"
STANDIN = "kbuild-test/kube-cross-standin:go"


@pytest.fixture(scope="session")
def standin(engine_client, go_toolchain):
    """The Go-carrying kube-cross stand-in, made once under a private tag."""
    from tests._support.kubecross import make_kube_cross

    try:
        return engine_client.api.inspect_image(STANDIN)["Id"]
    except Exception:  # noqa: BLE001
        return make_kube_cross(engine_client, STANDIN, go_toolchain.goroot)


@pytest.fixture
def cross(standin, engine_client, docker_host):
    """The canonical kube-cross name pointing at the stand-in (other tests remove it)."""
    engine_client.api.tag(standin, *CROSS.rsplit(":", 1), force=True)
    return CROSS


def release_env() -> dict[str, str]:
    return {**os.environ, "KBUILD_MIN_DISK_GB": "1", "KBUILD_MIN_MEMORY_GB": "0.5"}


def test_quick_release_end_to_end(sample_repo, cross):
    tree = sample_repo("gopath")
    result = inv("release", "--kube-root", str(tree), "--quick", "--skip-images", env=release_env())
    assert result.returncode == 0, result.stderr[-3000:]
    tars = tree / "_output/release-tars"
    names = sorted(p.name for p in tars.glob("*.tar.gz"))
    assert names == ["kubernetes-server-linux-amd64.tar.gz", "kubernetes.tar.gz"]  # quick: amd64 only
    # SHA256SUMS matches the files, in sha256sum's format.
    sums = dict(reversed(line.split("  ")) for line in (tars / "SHA256SUMS").read_text().splitlines())
    for name in names:
        assert sums[name] == hashlib.sha256((tars / name).read_bytes()).hexdigest()
        assert f"sha256:{sums[name]}" in result.stdout
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tars, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    # The server tarball holds the three binaries, stamped with the tree's version.
    with tarfile.open(tars / "kubernetes-server-linux-amd64.tar.gz") as tf:
        members = sorted(m.name for m in tf.getmembers() if m.isfile())
        assert members == [f"kubernetes/server/bin/{n}" for n in ("kube-apiserver", "kubectl", "kubelet")]
        tf.extract("kubernetes/server/bin/kube-apiserver", tree / "_output/x", filter="data")
    out = subprocess.run([str(tree / "_output/x/kubernetes/server/bin/kube-apiserver"), "--version=raw"],
                         capture_output=True, text=True, check=True)
    stamp = json.loads(inv("version", "--kube-root", str(tree), "--json", check=True).stdout)
    got = json.loads(out.stdout)
    assert (got["gitVersion"], got["gitCommit"]) == (stamp["gitVersion"], stamp["gitCommit"])
    with tarfile.open(tars / "kubernetes.tar.gz") as tf:
        assert tf.extractfile("kubernetes/version").read().decode().strip() == stamp["gitVersion"]
    # The report: version, tarballs, images with digests/ids, durations, and the offline environment.
    report = json.loads((tars / "release-report.json").read_text())
    assert report["version"]["gitVersion"] == "v1.20.2"
    assert {t["name"] for t in report["tarballs"]} == set(names)
    cross_entry = next(i for i in report["images"] if i["role"] == "kube-cross")
    assert cross_entry["present"] and cross_entry["id"].startswith("sha256:")
    assert report["durations"]["release_sh_seconds"] > 0
    assert report["environment"]["KUBE_BUILD_PULL_LATEST_IMAGES"] == "n"
    assert report["environment"]["KUBE_RELEASE_RUN_TESTS"] == "n"
    log = Path(report["log"])
    assert log.is_file() and "+++ [release] packaging" in log.read_text()
    assert "+++ [release] packaging" in result.stdout  # streamed live


def test_failing_release_sh_gives_its_exit_code_and_log(sample_repo, cross):
    tree = sample_repo("gopath")
    (tree / "build/release.sh").write_text("#!/usr/bin/env bash\necho building...\necho 'boom: it broke' >&2\nexit 3\n")
    result = inv("release", "--kube-root", str(tree), "--quick", "--skip-images", env=release_env())
    assert result.returncode == 3
    assert "exit 3" in result.stderr and "boom: it broke" in result.stderr
    log = next((tree / "_output/logs").glob("release-*.log"))
    assert str(log) in result.stderr and "boom: it broke" in log.read_text()
    assert not (tree / "_output/release-tars/SHA256SUMS").exists()


def test_missing_kube_cross_is_refused_before_anything_runs(sample_repo, standin, engine_client, docker_host):
    engine_client.api.tag(standin, *CROSS.rsplit(":", 1), force=True)
    engine_client.api.remove_image(CROSS)  # untag only: the private tag keeps the image
    tree = sample_repo("gopath")
    result = inv("release", "--kube-root", str(tree), "--quick", "--skip-images", env=release_env())
    assert result.returncode != 0
    assert "kube-cross" in result.stderr and CROSS in result.stderr and "inv images" in result.stderr
    assert not (tree / "_output/logs").exists()  # release.sh never started


def test_preflight_disk_threshold(sample_repo, cross):
    tree = sample_repo("gopath")
    env = {**release_env(), "KBUILD_MIN_DISK_GB": "1000000"}
    result = inv("release", "--kube-root", str(tree), "--quick", "--skip-images", env=env)
    assert result.returncode != 0 and "disk" in result.stderr and "GiB free" in result.stderr


def test_ctrl_c_stops_the_build_and_its_containers(sample_repo, cross, engine_client):
    tree = sample_repo("gopath")
    name = f"kbuild-sleeper-{os.getpid()}"
    (tree / "build/release.sh").write_text(
        "#!/usr/bin/env bash\nset -e\n"
        f"docker run -d --network none --name {name} {CROSS} sleep 300 >/dev/null\n"
        "echo started\nsleep 300\n")
    proc = subprocess.Popen(["inv", "--search-root", str(REPO), "release", "--kube-root", str(tree), "--quick",
                             "--skip-images"], env=release_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "started":
                break
            assert time.monotonic() < deadline
        assert any(c["Names"] == [f"/{name}"] for c in engine_client.api.containers())
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130
    assert not any(f"/{name}" in c["Names"] for c in engine_client.api.containers(all=True))

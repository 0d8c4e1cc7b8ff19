"""`inv release` in every mode on the sample tree, against a real engine and registry.

script runs the sample's build/release.sh (kube-cross stand-in with the tree mounted), direct runs
that kube-cross itself, native builds on the host; all package with the tree's build/lib/release.sh.
The comparison tool (build/release/compare.py) is the judge of "same release".
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, inv, sigint_default

pytestmark = [pytest.mark.engine, pytest.mark.go]

CROSS = "k8s.gcr.io/build-image/kube-cross:v1.15.5-1"
STANDIN = "kbuild-test/kube-cross-standin:go-bash-make"
BASES = ("k8s.gcr.io/build-image/go-runner:buster-v2.2.2", "k8s.gcr.io/build-image/debian-iptables:buster-v1.3.0")
SAMPLE_TARBALLS = ("kubernetes-client-linux-amd64.tar.gz", "kubernetes-node-linux-amd64.tar.gz",
                   "kubernetes-server-linux-amd64.tar.gz", "kubernetes-src.tar.gz", "kubernetes.tar.gz")
APISERVER_IMAGE = "k8s.gcr.io/kube-apiserver-amd64:v1.20.2"


@pytest.fixture(scope="session")
def standin(engine_client, go_toolchain):
    """The kube-cross stand-in (busybox, bash, make, Go), made once under a private tag."""
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


@pytest.fixture
def bases(engine_client, mkimage, docker_host):
    """Small images under the base names the packaging builds the server images FROM."""
    for name in BASES:
        mkimage(name, f"base {name}")
    return BASES


def release_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "KBUILD_MIN_DISK_GB": "1", "KBUILD_MIN_MEMORY_GB": "0.5", **extra}


def release(tree: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return inv("release", "--kube-root", str(tree), "--quick", "--skip-images", *args, env=env or release_env())


def keep_tars(tree: Path, dest: Path) -> Path:
    """Move a release's tarballs aside, so the next mode starts from the same tree."""
    shutil.copytree(tree / "_output/release-tars", dest)
    return dest


def labelled_containers(engine_client) -> list[dict]:
    return engine_client.api.containers(all=True, filters={"label": "io.kbuild.release"})


def test_script_mode_end_to_end(sample_repo, cross, bases):
    tree = sample_repo("gopath")
    result = release(tree)
    assert result.returncode == 0, result.stderr[-3000:]
    tars = tree / "_output/release-tars"
    names = sorted(p.name for p in tars.glob("*.tar.gz"))
    assert names == sorted(SAMPLE_TARBALLS)  # quick: linux/amd64 only
    sums = dict(reversed(line.split("  ")) for line in (tars / "SHA256SUMS").read_text().splitlines())
    for name in names:
        assert sums[name] == hashlib.sha256((tars / name).read_bytes()).hexdigest()
        assert f"sha256:{sums[name]}" in result.stdout
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tars, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    with tarfile.open(tars / "kubernetes-server-linux-amd64.tar.gz") as tf:
        members = sorted(m.name for m in tf.getmembers() if m.isfile())
        assert [m for m in members if "/bin/" in m] == [
            f"kubernetes/server/bin/{n}" for n in ("kube-apiserver", "kube-apiserver.docker_tag",
                                                   "kube-apiserver.tar", "kubectl", "kubelet")]
        tf.extract("kubernetes/server/bin/kube-apiserver", tree / "_output/x", filter="data")
    out = subprocess.run([str(tree / "_output/x/kubernetes/server/bin/kube-apiserver"), "--version=raw"],
                         capture_output=True, text=True, check=True)
    stamp = json.loads(inv("version", "--kube-root", str(tree), "--json", check=True).stdout)
    got = json.loads(out.stdout)
    # release.sh gets SOURCE_DATE_EPOCH from kbuild: the same buildDate as `inv version`.
    assert (got["gitVersion"], got["gitCommit"], got["buildDate"]) == (
        stamp["gitVersion"], stamp["gitCommit"], stamp["buildDate"])
    with tarfile.open(tars / "kubernetes.tar.gz") as tf:
        assert tf.extractfile("kubernetes/version").read().decode().strip() == stamp["gitVersion"]
    report = json.loads((tars / "release-report.json").read_text())
    assert report["mode"] == "script" and report["version"]["gitVersion"] == "v1.20.2"
    assert {t["name"] for t in report["tarballs"]} == set(names)
    cross_entry = next(i for i in report["images"] if i["role"] == "kube-cross")
    assert cross_entry["present"] and cross_entry["id"].startswith("sha256:")
    assert "pause" not in {i["role"] for i in report["images"]}  # no release step reads it
    assert report["durations"]["build"] > 0 and report["durations"]["package"] > 0
    assert report["environment"]["KUBE_BUILD_PULL_LATEST_IMAGES"] == "n"
    assert report["environment"]["KUBE_RELEASE_RUN_TESTS"] == "n"
    log = Path(report["log"])
    assert log.is_file() and "Building tarball: server" in log.read_text()
    assert "Building tarball: server" in result.stdout  # streamed live
    assert report["server_images"][0]["tags"] == [APISERVER_IMAGE]


def test_every_mode_makes_the_same_release(sample_repo, cross, bases, engine_client, tmp_path):
    """The acceptance check of the modes: same tarballs, members, modes, stamps and image tags."""
    from build.release.compare import compare_releases, render

    tree = sample_repo("gopath")
    made = {}
    for mode in ("script", "native", "direct"):
        result = release(tree, "--mode", mode)
        assert result.returncode == 0, f"{mode}: {result.stderr[-3000:]}"
        report = json.loads((tree / "_output/release-tars/release-report.json").read_text())
        assert report["mode"] == mode and set(report["durations"]) >= {"build", "package", "total"}
        made[mode] = keep_tars(tree, tmp_path / mode)
    for mode in ("native", "direct"):
        comparison = compare_releases(made["script"], made[mode])
        assert comparison.ok, "\n".join(render(comparison))
        assert comparison.counts["tarballs"] == len(SAMPLE_TARBALLS) and comparison.counts["binaries"] >= 5
        assert comparison.counts["images"] == 1
    # direct mode left no container behind, and the build never wrote into the tree (HOME is /tmp).
    assert labelled_containers(engine_client) == []
    assert not (tree / ".config").exists()
    # The comparison tool as a user runs it.
    cli = inv("compare", "--reference", str(made["script"]), "--candidate", str(made["native"]))
    assert cli.returncode == 0 and "same:" in cli.stdout, cli.stdout + cli.stderr


def test_native_second_run_is_up_to_date(sample_repo, bases):
    tree = sample_repo("gopath")
    first = release(tree, "--mode", "native")
    assert first.returncode == 0, first.stderr[-2000:]
    second = release(tree, "--mode", "native")
    assert second.returncode == 0, second.stderr[-2000:]
    assert "(0 built, 3 up to date)" in second.stderr
    assert (tree / "_output/dockerized/bin/linux/amd64/kube-apiserver").is_file()


def test_failing_release_sh_gives_its_exit_code_and_log(sample_repo, cross, bases):
    tree = sample_repo("gopath")
    (tree / "build/release.sh").write_text("#!/usr/bin/env bash\necho building...\necho 'boom: it broke' >&2\nexit 3\n")
    # A previous release's outputs: they must not survive as if this run had made them.
    tars = tree / "_output/release-tars"
    tars.mkdir(parents=True)
    for name in ("kubernetes.tar.gz", "SHA256SUMS", "release-report.json"):
        (tars / name).write_text("from the last run\n")
    result = release(tree)
    assert result.returncode == 3
    assert "exit 3" in result.stderr and "boom: it broke" in result.stderr
    log = next((tree / "_output/logs").glob("release-script-*.log"))
    assert str(log) in result.stderr and "boom: it broke" in log.read_text()
    assert list(tars.iterdir()) == []


def test_missing_kube_cross_is_refused_before_anything_runs(sample_repo, standin, engine_client, bases):
    engine_client.api.tag(standin, *CROSS.rsplit(":", 1), force=True)
    engine_client.api.remove_image(CROSS)  # untag only: the private tag keeps the image
    tree = sample_repo("gopath")
    for mode in ("script", "direct"):
        result = release(tree, "--mode", mode)
        assert result.returncode != 0
        assert "kube-cross" in result.stderr and CROSS in result.stderr and "inv images" in result.stderr
        assert not (tree / "_output/logs").exists()  # nothing started
    # native needs no kube-cross at all.
    assert release(tree, "--mode", "native").returncode == 0


def test_preflight_disk_threshold(sample_repo, cross, bases):
    tree = sample_repo("gopath")
    result = release(tree, env=release_env(KBUILD_MIN_DISK_GB="1000000"))
    assert result.returncode != 0 and "disk" in result.stderr and "GiB free" in result.stderr


def _interrupt_after(argv: list[str], marker: str, env: dict[str, str]) -> int:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=sigint_default)
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == marker:
                break
            assert time.monotonic() < deadline
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ctrl_c_stops_the_script_and_its_containers(sample_repo, cross, bases, engine_client):
    tree = sample_repo("gopath")
    name = f"kbuild-sleeper-{os.getpid()}"
    (tree / "build/release.sh").write_text(
        "#!/usr/bin/env bash\nset -e\n"
        f"docker run -d --network none --name {name} {CROSS} sleep 300 >/dev/null\n"
        "echo started\nsleep 300\n")
    argv = ["inv", "--search-root", str(REPO), "release", "--kube-root", str(tree), "--quick", "--skip-images"]
    assert _interrupt_after(argv, "started", release_env()) == 130
    assert not any(f"/{name}" in c["Names"] for c in engine_client.api.containers(all=True))


def test_ctrl_c_in_direct_mode_removes_the_container(sample_repo, cross, bases, engine_client):
    tree = sample_repo("gopath")
    (tree / "hack/make-rules/cross.sh").write_text("#!/usr/bin/env bash\necho started\nsleep 300\n")
    argv = ["inv", "--search-root", str(REPO), "release", "--kube-root", str(tree), "--quick", "--skip-images",
            "--mode", "direct"]
    assert _interrupt_after(argv, "started", release_env()) == 130
    assert labelled_containers(engine_client) == []
    assert not (tree / "_output/release-tars/SHA256SUMS").exists()


def test_images_only_with_push(sample_repo, bases, engine_client, registry):
    tree = sample_repo("gopath")
    result = release(tree, "--mode", "native", "--images-only", "--push", registry.address)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((tree / "_output/release-images/amd64").glob("*.tar")) == [
        tree / "_output/release-images/amd64/kube-apiserver.tar"]
    assert not list((tree / "_output/release-tars").glob("*.tar.gz"))  # images only
    # Loaded into the engine under release.sh's tag ...
    assert engine_client.api.inspect_image(APISERVER_IMAGE)["Id"].startswith("sha256:")
    # ... and pushed under the same path and tag, with its digest in the report and on stdout.
    report = json.loads((tree / "_output/release-tars/release-report.json").read_text())
    (image,) = report["server_images"]
    pushed = f"{registry.address}/kube-apiserver-amd64:v1.20.2"
    digest = image["pushed"][pushed]
    assert digest.startswith("sha256:") and f"{pushed}@{digest}" in result.stdout
    req = urllib.request.Request(f"{registry.url}/v2/kube-apiserver-amd64/manifests/v1.20.2", method="HEAD",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        assert resp.headers["Docker-Content-Digest"] == digest


def test_bad_input_is_refused_before_anything_runs(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    cases = [
        (("--mode", "fast"), 2, "--mode 'fast'"),
        (("--mode", "native", "--push", "http://127.0.0.1:5000"), 2, "without a scheme"),
        (("--mode", "native", "--push", "not a registry"), 2, "--push"),
        (("--mode", "native", "--platform", "linux"), 2, "os/arch"),
    ]
    for args, code, text in cases:
        result = release(tree, *args)
        assert result.returncode == code and text in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tree / "_output/logs").exists() and not (tree / "_output/dockerized").exists()


def test_missing_scripts_name_the_mode_that_works(sample_repo):
    tree = sample_repo("gopath")
    (tree / "build/package-tarballs.sh").unlink()
    for mode in ("native", "direct"):
        result = release(tree, "--mode", mode)
        assert result.returncode == 2 and "package-tarballs.sh" in result.stderr and "--mode script" in result.stderr
    tree2 = sample_repo("gopath", name="no-release-sh")
    (tree2 / "build/release.sh").unlink()
    result = release(tree2, "--mode", "script")
    assert result.returncode == 2 and "build/release.sh" in result.stderr and "--mode native" in result.stderr
    result = release(tree2, "--mode", "script", "--images-only")
    assert result.returncode == 2 and "release-images.sh" in result.stderr and "--mode native" in result.stderr


def test_unreachable_push_registry_is_refused_by_preflight(sample_repo, bases):
    from tests._support.engine import free_port

    tree = sample_repo("gopath")
    result = release(tree, "--mode", "native", "--images-only", "--push", f"127.0.0.1:{free_port()}")
    assert result.returncode != 0 and "push 127.0.0.1:" in result.stderr
    assert not (tree / "_output/dockerized/bin").exists()  # nothing was built


def test_remote_engine_native_and_script_work_direct_is_refused(sample_repo, tcp_engine, go_toolchain):
    """An engine over TCP on loopback stands in for a remote one."""
    from tests._support import engine
    from tests._support.kubecross import make_kube_cross

    client = tcp_engine.client()
    for name in BASES:
        engine.make_image(client, name, f"remote base {name}")
    env = release_env(DOCKER_HOST=tcp_engine.tcp_host)
    tree = sample_repo("gopath")
    native = release(tree, "--mode", "native", env=env)
    assert native.returncode == 0, native.stderr[-3000:]
    direct = release(tree, "--mode", "direct", env=env)
    assert direct.returncode != 0 and "local engine" in direct.stderr and "--mode native" in direct.stderr
    make_kube_cross(client, CROSS, go_toolchain.goroot)
    script = release(tree, "--mode", "script", env=env)
    assert script.returncode == 0, script.stderr[-3000:]


def test_mirror_without_pause_does_not_stop_a_release(sample_repo, engine_client, registry, docker_host):
    """The kubelet's pause image is not on the mirror: release.sh never uses it, so no mode asks for it."""
    from images.resolve import resolve
    from tests.test_images_engine import clear, seed_mirror
    from workspace.tree import KubeTree

    tree = sample_repo("gopath")
    specs = resolve(KubeTree(tree), os.environ)
    assert any(s.role == "pause" for s in specs)
    clear(engine_client, [s.ref.short for s in specs])
    seed_mirror(engine_client, registry, "lean", [s for s in specs if s.used_by and s.role != "pause"])
    result = inv("release", "--kube-root", str(tree), "--quick", "--mode", "native", "--mirror",
                 f"{registry.address}/lean", env=release_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "/pause:" not in result.stderr.split("== build")[0]


def test_config_sets_the_mode_and_doctor_lists_modes(sample_repo, bases, tmp_path):
    tree = sample_repo("gopath")
    config = tmp_path / "kbuild.yaml"
    config.write_text("release:\n  mode: native\n")
    result = inv("-f", str(config), "release", "--kube-root", str(tree), "--quick", "--skip-images", env=release_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tree / "_output/release-tars/release-report.json").read_text())["mode"] == "native"
    doctor = inv("doctor", "--kube-root", str(tree), "--task", "release", env=release_env())
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    from tests._support.doctor import doctor_rows

    rows = {name.split()[2]: text for name, text in doctor_rows(doctor.stdout).items()
            if name.startswith("release --mode")}
    assert set(rows) == {"script", "direct", "native"}
    assert " ok " in rows["native"]


def test_direct_images_only_builds_in_kube_cross_and_loads(sample_repo, cross, bases, engine_client):
    tree = sample_repo("gopath")
    try:
        engine_client.api.remove_image(APISERVER_IMAGE)
    except Exception:  # noqa: BLE001 - absent is what we want
        pass
    result = release(tree, "--mode", "direct", "--images-only")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "make all WHAT=cmd/kube-apiserver" in (tree / "_output/logs").joinpath(
        next(p.name for p in (tree / "_output/logs").iterdir())).read_text()
    # Only the image target was built, in the container; the image is loaded under release.sh's tag.
    assert sorted(p.name for p in (tree / "_output/dockerized/bin/linux/amd64").iterdir()) == ["kube-apiserver"]
    assert engine_client.api.inspect_image(APISERVER_IMAGE)["Id"].startswith("sha256:")
    assert labelled_containers(engine_client) == []


def test_ci_release_in_native_mode(sample_repo, bases, tmp_path):
    tree = sample_repo("gopath")
    result = inv("ci", "--kube-root", str(tree), "--release", "--mode", "native", "--quick", "--skip-images",
                 "--report", str(tmp_path / "r.json"), "--junit", str(tmp_path / "j.xml"), env=release_env())
    assert result.returncode == 0, result.stderr[-2000:]
    steps = {s["name"]: s for s in json.loads((tmp_path / "r.json").read_text())["steps"]}
    assert steps["release"]["status"] == "passed" and steps["release"]["data"]["mode"] == "native"
    assert {t["name"] for t in steps["release"]["data"]["tarballs"]} == set(SAMPLE_TARBALLS)
    bad = inv("ci", "--kube-root", str(tree), "--release", "--mode", "nope", "--report", str(tmp_path / "r2.json"),
              "--junit", str(tmp_path / "j2.xml"), env=release_env())
    assert bad.returncode == 2 and "--mode 'nope'" in bad.stderr

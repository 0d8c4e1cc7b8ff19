"""Release builds spread over engines that really are remote (tests/_support/remote_engines.py):
masked dockerds on loopback TCP that cannot see the tests' trees, so only the engine API path works.

One module-scoped release of the sample tree over two engines serves several checks; the fault
tests use engines of their own (one is killed) or addresses where nothing listens.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import threading
import time

import pytest

from tests.conftest import REPO, inv, require, sigint_default
from tests.test_release import CROSS, bases, cross, release, release_env, standin  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.go]

BUSYBOX_REF = "kbuild-test/remote-busybox:1"
PLATFORMS = ("linux/amd64", "linux/arm64")


def _start(name: str):
    from tests._support import engine, remote_engines

    try:
        return remote_engines.start_remote_engine(name)
    except engine.EngineError as exc:
        require(False, f"a masked dockerd (apt-get install docker.io util-linux; root): {exc}")


@pytest.fixture(scope="module")
def remote_pair(engine_client):
    """Two masked engines with a busybox image (docker save | load through the SDK)."""
    from tests._support import engine, remote_engines

    engine.make_image(engine_client, BUSYBOX_REF, "remote busybox")
    started = []
    try:
        for name in ("e1", "e2"):
            started.append(_start(name))
            remote_engines.load_images(engine_client, started[-1], [BUSYBOX_REF])
        yield started
    finally:
        for e in started:
            e.stop()


@pytest.fixture(scope="module")
def mirror(registry, engine_client, standin, tmp_path_factory):  # noqa: F811
    """A mirror with the sample's base images as two-variant indexes and the kube-cross stand-in: the
    engines get kube-cross from it (the images task), this host each arch's base variant."""
    from images.refs import mirror_ref
    from images.resolve import resolve
    from tests._support import engine
    from tests._support.index import push_index
    from workspace.sample import materialize
    from workspace.tree import KubeTree

    address = f"{registry.address}/engines"
    specs = resolve(KubeTree(materialize(tmp_path_factory.mktemp("names") / "tree", "gopath")), {})
    for spec in specs:
        if spec.role == "kube-cross":
            ref = mirror_ref(spec.ref, address, "nested")
            engine_client.api.tag(standin, ref.repository, ref.tag, force=True)
            engine.push(engine_client, ref.name)
        elif spec.used_by and spec.role != "pause":
            ref = mirror_ref(spec.ref, address, "nested")
            push_index(registry.address, ref.path, ref.tag, {p: f"{spec.role} {p}" for p in PLATFORMS})
    return address


def test_a_bind_mount_of_a_host_tree_is_empty_on_a_masked_engine(remote_pair, tmp_path):
    """The proof that these engines are remote: a host directory with files is empty in their containers."""
    host_dir = tmp_path / "tree"
    host_dir.mkdir()
    (host_dir / "Makefile").write_text("all:\n")
    client = remote_pair[0].client()
    try:
        out = client.containers.run(BUSYBOX_REF, ["ls", "-A", "/mnt"], remove=True, network_mode="none",
                                    volumes={str(host_dir): {"bind": "/mnt", "mode": "ro"}})
    finally:
        client.close()
    assert out.strip() == b""  # the engine sees its own empty tmpfs at that path, not the tree


def test_tree_goes_up_and_outputs_come_back_through_the_api(remote_pair, sample_repo, tmp_path):
    from engines import transfer
    from images.engine import Engine

    tree = sample_repo("gopath")
    (tree / "_output").mkdir(exist_ok=True)
    (tree / "_output" / "big-leftover").write_bytes(b"x" * 4096)  # never sent
    eng = Engine.connect(os.environ, remote_pair[1].url)
    vol = f"kbuild-test-tree-{os.getpid()}"
    eng.api.create_volume(vol)
    helper = transfer.create_helper(eng, f"{vol}-helper", {vol: "/tree"}, {})
    try:
        up = transfer.upload_tree(eng, helper, tree, "/tree")
        assert up.nbytes > 10_000 and up.seconds >= 0
        # A container on the volume sees the tree (no .git, no _output) and writes outputs into it.
        client = remote_pair[1].client()
        try:
            listing = client.containers.run(
                BUSYBOX_REF, ["sh", "-c", "ls -A /t; mkdir -p /t/_output/dockerized/bin/linux/arm64 && "
                              "echo hi > /t/_output/dockerized/bin/linux/arm64/kubelet && "
                              "ln -s kubelet /t/_output/dockerized/bin/linux/arm64/alias"],
                remove=True, network_mode="none", volumes={vol: {"bind": "/t", "mode": "rw"}})
        finally:
            client.close()
        names = listing.decode().split()
        assert "Makefile" in names and "hack" in names and ".git" not in names and "_output" not in names
        dest = tree / "_output/dockerized/bin/linux/arm64"
        down = transfer.download_dir(eng, helper, "/tree/_output/dockerized/bin/linux/arm64", dest, tree / "_output")
        assert (dest / "kubelet").read_text() == "hi\n" and os.readlink(dest / "alias") == "kubelet"
        assert down.nbytes >= 1024
        assert not list((tree / "_output").glob(".kbuild-engine-*"))  # the staging is gone
    finally:
        transfer.remove_quietly(eng, container=helper, volume=vol)


@pytest.fixture(scope="module")
def fanned_release(remote_pair, mirror, docker_engine, tmp_path_factory):
    """One direct release of the sample tree, linux/amd64 + linux/arm64, over the two engines, its
    images from the mirror (kube-cross onto each engine, the base variants onto this host)."""
    from workspace.sample import materialize
    from workspace.source import init_repo

    tree = materialize(tmp_path_factory.mktemp("fanout") / "tree", "gopath")
    init_repo(tree, "v1.20.2")
    config = tmp_path_factory.mktemp("docker-config")  # a developer's own auth and contexts stay out
    env = release_env(DOCKER_HOST=docker_engine.host, DOCKER_CONFIG=str(config))
    args = ["release", "--kube-root", str(tree), "--quick", "--mode", "direct", "--mirror", mirror,
            *(a for p in PLATFORMS for a in ("--platform", p)), *(a for e in remote_pair for a in ("--engine", e.url))]
    began = time.monotonic()
    result = inv(*args, env=env)
    return tree, result, time.monotonic() - began


def test_release_over_two_engines_builds_each_platform_on_one(fanned_release, remote_pair):
    tree, result, seconds = fanned_release
    assert result.returncode == 0, result.stderr[-3000:]
    for platform in PLATFORMS:
        bins = tree / "_output/dockerized/bin" / platform
        assert {"kube-apiserver", "kubelet", "kubectl"} <= {p.name for p in bins.iterdir()}
        arch = platform.split("/")[1]
        with tarfile.open(tree / f"_output/release-tars/kubernetes-server-linux-{arch}.tar.gz") as tf:
            member = tf.extractfile("kubernetes/server/bin/kubelet")
            assert member is not None
            elf = member.read(20)
        assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == {"amd64": 62, "arm64": 183}[arch]
    report = json.loads((tree / "_output/release-tars/release-report.json").read_text())
    urls = {e.url for e in remote_pair}
    assert set(report["platforms"]) == set(PLATFORMS)
    assert {report["platforms"][p]["engine"] for p in PLATFORMS} == urls  # one platform on each engine
    for entry in report["platforms"].values():
        assert entry["attempts"] == 1
        assert entry["bytes_up"] > 10_000 and entry["bytes_down"] > 100_000
        assert set(entry["seconds"]) == {"upload", "build", "download"} and entry["seconds"]["build"] > 0
    assert report["engines"] == sorted(urls, key=[e.url for e in remote_pair].index)
    for e in remote_pair:  # one progress line per engine and platform state
        assert f"engine {e.url}: linux/" in result.stderr
    print(f"fan-out release over two engines: {seconds:.1f}s; phases {report['durations']}; "
          f"per platform {report['platforms']}")


def test_the_engines_keep_gocache_and_drop_the_tree(fanned_release, remote_pair, mirror):
    """Each engine got kube-cross from the mirror (the images task), keeps its GOCACHE volume, and has
    neither the tree's volume nor a container left."""
    assert fanned_release[1].returncode == 0
    for e in remote_pair:
        client = e.client()
        try:
            volumes = {v.name for v in client.volumes.list()}
            labelled = client.containers.list(all=True, filters={"label": "io.kbuild.engines"})
            digests = client.api.inspect_image(CROSS).get("RepoDigests") or []
        finally:
            client.close()
        assert any(d.startswith(f"{mirror}/") for d in digests), digests
        assert "kbuild-gocache" in volumes
        assert not [v for v in volumes if v.startswith("kbuild-tree-")]
        assert labelled == []


def test_doctor_describes_each_engine(remote_pair, sample_repo):
    tree = sample_repo("gopath")
    dead = f"tcp://127.0.0.1:{_free_port()}"
    result = inv("doctor", "--kube-root", str(tree), "--task", "release", "--engine", remote_pair[0].url,
                 "--engine", dead, env=release_env())
    from tests._support.doctor import doctor_rows

    rows = {name.split()[1]: text for name, text in doctor_rows(result.stdout).items() if name.startswith("engine tcp://")}
    ok_row = rows[remote_pair[0].url]
    assert " ok " in ok_row and "API 1." in ok_row and "GiB memory" in ok_row and "x86_64" in ok_row
    assert "used in /var/lib/kbuild-test-engines/" in ok_row
    assert "MISSING" in rows[dead] and f"the engine at {dead} (from --engine)" in rows[dead]
    assert result.returncode == 1


def _free_port() -> int:
    from tests._support.engine import free_port

    return free_port()


def test_engines_that_refuse_fail_the_release_in_one_line(sample_repo, bases, tmp_path):  # noqa: F811
    tree = sample_repo("gopath")
    urls = [f"tcp://127.0.0.1:{_free_port()}", f"tcp://builder:s3cret@127.0.0.1:{_free_port()}"]
    args = ["--mode", "direct", *(a for p in PLATFORMS for a in ("--platform", p)),
            *(a for u in urls for a in ("--engine", u))]
    result = release(tree, *args)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "linux/a" in errors[0] and "tcp://127.0.0.1:" in errors[0], result.stderr[-2000:]
    assert "(from --engine)" in errors[0] and "no other engine is left" in errors[0]
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr + result.stdout
    print(errors[0])
    assert not list((tree / "_output/release-tars").glob("*.tar.gz"))


def test_a_bad_engine_url_is_refused_before_anything_runs(sample_repo):
    tree = sample_repo("gopath")
    for bad, mode in (("http://host:2375", "direct"), ("tcp://127.0.0.1:1", "native")):
        result = release(tree, "--mode", mode, "--engine", bad)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1 and "--engine" in errors[0]
    assert not (tree / "_output/release-tars").exists()


def test_hostile_outputs_on_an_engine_are_refused_and_the_tree_keeps_its_own(remote_pair, sample_repo):
    """Outputs with a link out of the tree: refused, the binaries already in the tree stay as they were."""
    from engines import transfer
    from images.engine import Engine

    tree = sample_repo("gopath")
    dest = tree / "_output/dockerized/bin/linux/arm64"
    dest.mkdir(parents=True)
    (dest / "kubelet").write_text("the one built before\n")
    eng = Engine.connect(os.environ, remote_pair[0].url)
    vol = f"kbuild-test-hostile-{os.getpid()}"
    eng.api.create_volume(vol)
    helper = transfer.create_helper(eng, f"{vol}-helper", {vol: "/tree"}, {})
    try:
        client = remote_pair[0].client()
        try:
            client.containers.run(BUSYBOX_REF, ["sh", "-c", "mkdir -p /t/bin/arm64 && echo evil > /t/bin/arm64/kubelet"
                                                            " && ln -s /etc/passwd /t/bin/arm64/passwd"],
                                  remove=True, network_mode="none", volumes={vol: {"bind": "/t", "mode": "rw"}})
        finally:
            client.close()
        with pytest.raises(transfer.TransferError) as info:
            transfer.download_dir(eng, helper, "/tree/bin/arm64", dest, tree / "_output")
        assert "absolute path" in info.value.message and remote_pair[0].url in info.value.message
        assert (dest / "kubelet").read_text() == "the one built before\n"
        assert sorted(p.name for p in dest.iterdir()) == ["kubelet"]
        assert not list((tree / "_output").glob(".kbuild-engine-*"))
    finally:
        transfer.remove_quietly(eng, container=helper, volume=vol)


def test_release_engines_from_invoke_yaml(sample_repo, tmp_path):
    """release.engines in the config file is what --engine gives (a bad one is refused the same way)."""
    tree = sample_repo("gopath")
    config = tmp_path / "kbuild.yaml"
    config.write_text("release:\n  mode: direct\n  engines: [\"http://not-an-engine:2375\"]\n")
    result = inv("-f", str(config), "release", "--kube-root", str(tree), "--quick", "--skip-images", env=release_env())
    assert result.returncode == 2 and "ERROR --engine 'http://not-an-engine:2375'" in result.stderr, result.stderr


FAKE_CROSS = """#!/usr/bin/env bash
# A stand-in for `make cross` that takes a few seconds and writes each platform's binaries.
set -o errexit
echo "+++ fake cross for ${KUBE_BUILD_PLATFORMS}"
sleep 6
for p in ${KUBE_BUILD_PLATFORMS}; do
  mkdir -p "_output/dockerized/bin/${p}"
  for b in kube-apiserver kubelet kubectl; do echo "${b} ${p}" > "_output/dockerized/bin/${p}/${b}"; done
done
"""


def _cross_on(remote_pair, engine_client, standin) -> None:  # noqa: F811
    from tests._support import remote_engines

    for e in remote_pair:
        client = e.client()
        try:
            present = bool(client.images.list(name=CROSS))
        finally:
            client.close()
        if not present:
            engine_client.api.tag(standin, *CROSS.rsplit(":", 1), force=True)
            remote_engines.load_images(engine_client, e, [CROSS])


def test_ctrl_c_stops_the_builds_on_the_engines(remote_pair, standin, engine_client, sample_repo, bases):  # noqa: F811
    _cross_on(remote_pair, engine_client, standin)
    tree = sample_repo("gopath")
    (tree / "hack/make-rules/cross.sh").write_text("#!/usr/bin/env bash\necho started\nsleep 300\n")
    argv = [_inv(), "--search-root", str(REPO), "release", "--kube-root", str(tree), "--quick", "--skip-images",
            "--mode", "direct", *(a for p in PLATFORMS for a in ("--platform", p)),
            *(a for e in remote_pair for a in ("--engine", e.url))]
    proc = subprocess.Popen(argv, env=release_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL, preexec_fn=sigint_default)
    timer = threading.Timer(180, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        started = 0
        for line in proc.stdout:
            started += line.rstrip().endswith("] started")
            if started == 2:  # both engines are building
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        code = proc.wait(timeout=60)
    finally:
        timer.cancel()
    assert code == 130, rest
    for e in remote_pair:
        client = e.client()
        try:
            assert client.containers.list(all=True, filters={"label": "io.kbuild.engines"}) == []
            assert not [v.name for v in client.volumes.list() if v.name.startswith("kbuild-tree-")], rest
        finally:
            client.close()
    assert not list((tree / "_output/release-tars").glob("*.tar.gz"))


def test_without_quick_the_tests_run_here_after_the_engines(remote_pair, standin, engine_client, sample_repo,  # noqa: F811
                                                            cross, bases):  # noqa: F811
    """No --quick: `make cross` on an engine, then `make test` and `make test-integration` on this host's engine
    with the tree mounted, as without --engine."""
    _cross_on(remote_pair, engine_client, standin)
    tree = sample_repo("gopath")
    (tree / "hack/make-rules/cross.sh").write_text(FAKE_CROSS.replace("sleep 6", "sleep 0"))
    (tree / "hack/make-rules/test.sh").write_text("#!/usr/bin/env bash\necho \"+++ tests here: $(ls -d cmd)\"\n")
    argv = ["release", "--kube-root", str(tree), "--skip-images", "--mode", "direct", "--platform", "linux/amd64",
            *(a for e in remote_pair for a in ("--engine", e.url))]
    result = inv(*argv, env=release_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert "+++ tests here: cmd" in result.stdout  # the tree was mounted: this host's engine sees it
    assert "[linux/amd64] +++ fake cross for linux/amd64" in result.stdout
    report = json.loads((tree / "_output/release-tars/release-report.json").read_text())
    assert report["platforms"]["linux/amd64"]["engine"] in {e.url for e in remote_pair}
    assert report["environment"].get("KUBE_RELEASE_RUN_TESTS") != "n"


def test_a_killed_engine_mid_build_is_retried_on_the_other(remote_pair, standin, engine_client, sample_repo,  # noqa: F811
                                                           bases):  # noqa: F811
    """The engine that builds the one platform has its dockerd SIGKILLed mid-build: the platform is built
    again on the other engine and the release completes. (Last in the module: it kills one of the pair.)"""
    _cross_on(remote_pair, engine_client, standin)
    tree = sample_repo("gopath")
    (tree / "hack/make-rules/cross.sh").write_text(FAKE_CROSS)
    argv = [_inv(), "--search-root", str(REPO), "release", "--kube-root", str(tree), "--quick", "--skip-images",
            "--mode", "direct", "--platform", "linux/amd64", *(a for e in remote_pair for a in ("--engine", e.url))]
    env = release_env(KBUILD_PROGRESS_SECONDS="2")  # DOCKER_HOST: the session engine (the bases fixture)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, text=True)
    seen: list[str] = []
    victim = None
    timer = threading.Timer(300, proc.kill)  # bounded: a hung release is killed, and the asserts say so
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if victim is None and "+++ fake cross" in line:  # the container runs: kill its engine
                victim = next(e for e in remote_pair if f"engine {e.url}: linux/amd64 build" in "".join(seen))
                victim.kill()
        code = proc.wait(timeout=60)
    finally:
        timer.cancel()
    text = "".join(seen)
    assert victim is not None, text[-3000:]
    assert code == 0, text[-3000:]
    survivor = next(e for e in remote_pair if e is not victim)
    entry = json.loads((tree / "_output/release-tars/release-report.json").read_text())["platforms"]["linux/amd64"]
    assert entry["engine"] == survivor.url and entry["attempts"] == 2
    assert entry["failures"][0]["engine"] == victim.url
    with tarfile.open(tree / "_output/release-tars/kubernetes-server-linux-amd64.tar.gz") as tf:
        member = tf.extractfile("kubernetes/server/bin/kubelet")
        assert member is not None and member.read() == b"kubelet linux/amd64\n"


def _inv() -> str:
    import shutil

    return shutil.which("inv") or "inv"


def test_the_fanned_release_compares_equal_to_a_one_machine_native_release(fanned_release, mirror, docker_engine,
                                                                          tmp_path):
    """`inv compare`: the release built over two engines and a native release of the same tree and platforms
    on this machine alone hold the same tarballs, members and binaries."""
    import shutil

    tree, result, _ = fanned_release
    assert result.returncode == 0
    fanned = shutil.copytree(tree / "_output/release-tars", tmp_path / "fanned")
    env = release_env(DOCKER_HOST=docker_engine.host)
    native = inv("release", "--kube-root", str(tree), "--quick", "--mode", "native", "--mirror", mirror,
                 *(a for p in PLATFORMS for a in ("--platform", p)), env=env)
    assert native.returncode == 0, native.stderr[-3000:]
    got = inv("compare", "--reference", str(tree / "_output/release-tars"), "--candidate", str(fanned))
    assert got.returncode == 0 and "same:" in got.stdout, got.stdout + got.stderr

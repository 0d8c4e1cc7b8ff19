"""`inv kit` with real parts: the sample tree's kit (its native-release images pulled from the test
registry), loaded by install.sh inside a network namespace with only loopback and an engine started
there, then built and released with no network at all; every part corrupted in turn; the real
v1.20.2 tree's kit.

This file is also the driver run inside the namespace: `unshare --net python3 tests/test_kit.py
offline KIT WORK RESULT` (see ``offline_main``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.conftest import _SCRUB, SHARED_GOCACHE, inv, require, sigint_default  # noqa: E402

PARTS = ("installer", "source-bundle", "images", "go", "kbuild", "wheels")
MIRROR = "kit"


def connected_env(host: str, config: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith("DOCKER_")}
    env.update(DOCKER_HOST=host, DOCKER_CONFIG=str(config), GOCACHE=str(SHARED_GOCACHE), GIT_CONFIG_NOSYSTEM="1",
               KBUILD_MIN_DISK_GB="1", KBUILD_MIN_MEMORY_GB="0.5")
    return env


@pytest.fixture(scope="module")
def sample_kit(tmp_path_factory, docker_engine, engine_client, registry, go_toolchain):
    """The sample tree (git, tagged v1.20.2), its native-mode images pulled from the test registry
    through a mirror (so they carry registry digests), and its kit with those images."""
    from build.release.preflight import images_for_mode
    from images.resolve import resolve
    from tests.test_images_engine import clear, seed_mirror
    from workspace.sample import materialize
    from workspace.source import init_repo
    from workspace.tree import KubeTree

    base = tmp_path_factory.mktemp("kit")
    (base / "docker-config").mkdir()
    env = connected_env(docker_engine.host, base / "docker-config")
    tree = base / "tree"
    materialize(tree, "gopath")
    init_repo(tree, "v1.20.2")
    specs = images_for_mode(resolve(KubeTree(tree), {}), "native")
    assert specs and all(s.role != "pause" for s in specs)
    clear(engine_client, [s.ref.short for s in specs])
    seed_mirror(engine_client, registry, MIRROR, specs, marker_suffix=" (kit)")
    only = [arg for s in specs for arg in ("--only", s.ref.name)]
    pulled = inv("images", "--kube-root", str(tree), "--mirror", f"{registry.address}/{MIRROR}", *only, env=env)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    kit = base / "sample.kit"
    start = time.monotonic()
    saved = inv("kit", "--save", str(kit), "--kube-root", str(tree), "--mode", "native", env=env)
    seconds = time.monotonic() - start
    assert saved.returncode == 0, saved.stdout + saved.stderr
    print(f"\nsample kit: {kit.stat().st_size / 1048576:.1f} MB in {seconds:.1f}s", file=sys.stderr)
    return {"kit": kit, "tree": tree, "env": env, "specs": specs, "base": base}


@pytest.mark.engine
@pytest.mark.go
def test_list_shows_every_part_and_the_images_digests(sample_kit, registry):
    kit, tree, env = sample_kit["kit"], sample_kit["tree"], sample_kit["env"]
    listed = inv("kit", "--list", str(kit), env=env)
    assert listed.returncode == 0, listed.stderr
    for name in PARTS:
        assert f"\n{name} " in listed.stdout
    manifest = json.loads(inv("kit", "--list", str(kit), "--json", env=env, check=True).stdout)
    assert [p["name"] for p in manifest["parts"]] == list(PARTS)
    assert manifest["tree"] == "git" and manifest["mode"] == "native"
    stamp = json.loads(inv("version", "--kube-root", str(tree), "--json", env=env, check=True).stdout)
    assert manifest["stamp"] == stamp
    names = {s.ref.name for s in sample_kit["specs"]}
    assert {i["name"] for i in manifest["images"]} == names
    for image in manifest["images"]:
        assert image["id"].startswith("sha256:")
        assert any(d.startswith(f"{registry.address}/{MIRROR}/") for d in image["repo_digests"]), image
    with tarfile.open(kit) as tf:
        assert tf.getnames()[0] == "install.sh"  # at the top: `tar -xf KIT install.sh` reads one member
        assert tf.getnames()[-2:] == ["manifest.json", "manifest.sha256"]
    assert manifest["go_minimum"] and manifest["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert any(w.startswith("invoke-") for w in manifest["extra"]["wheels"])


def _flip(path: Path, offset: int) -> int:
    with path.open("r+b") as fh:
        fh.seek(offset)
        old = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([old ^ 0xFF]))
    return old


def _restore(path: Path, offset: int, old: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(bytes([old]))


def _refused(result: subprocess.CompletedProcess[str], part: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and f"part {part}" in errors[0], result.stderr


@pytest.mark.engine
@pytest.mark.go
def test_a_corrupt_byte_in_any_part_is_refused_naming_it(sample_kit, tmp_path):
    kit, env = sample_kit["kit"], sample_kit["env"]
    with tarfile.open(kit) as tf:
        offsets = {m.name: (m.offset_data, m.size) for m in tf.getmembers()}
    targets = [(name, path) for name in PARTS for path in [plan_path(name)]]
    targets += [("manifest", "manifest.json"), ("manifest", "manifest.sha256")]
    dest = tmp_path / "dest"
    dest.mkdir()  # an empty directory must stay an empty directory
    for part, member in targets:
        data, size = offsets[member]
        for where in (data, data + size // 2, data + size - 1):
            old = _flip(kit, where)
            try:
                result = inv("kit", "--load", str(kit), "--dest", str(dest), env=env)
            finally:
                _restore(kit, where, old)
            _refused(result, part)
            assert list(dest.iterdir()) == [], f"{part}: left {list(dest.iterdir())}"
            assert [p.name for p in tmp_path.iterdir()] == ["dest"], f"{part}: left a staging directory"
    # install.sh says the same (the same code), and so does a truncated kit.
    script = tmp_path / "install.sh"
    with tarfile.open(kit) as tf:
        script.write_bytes(tf.extractfile("install.sh").read())  # type: ignore[union-attr]
    data, size = offsets[plan_path("go")]
    old = _flip(kit, data + size // 3)
    try:
        result = subprocess.run(["sh", str(script), str(kit), str(dest)], capture_output=True, text=True,
                                env=env, stdin=subprocess.DEVNULL)
    finally:
        _restore(kit, data + size // 3, old)
    _refused(result, "go")
    assert list(dest.iterdir()) == []
    cut = tmp_path / "cut.kit"
    with kit.open("rb") as src, cut.open("wb") as out:
        out.write(src.read(offsets[plan_path("wheels")][0] + 4096))
    result = inv("kit", "--load", str(cut), "--dest", str(dest), env=env)
    _refused(result, "wheels")
    assert "truncated" in result.stderr
    with kit.open("rb") as src, cut.open("wb") as out:  # cut between parts: the manifest (last) is missing
        out.write(src.read(offsets[plan_path("wheels")][0] - 512))
    result = inv("kit", "--load", str(cut), "--dest", str(dest), env=env)
    _refused(result, "manifest")
    assert "truncated" in result.stderr
    cut.unlink()
    assert list(dest.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["dest", "install.sh"]


@pytest.mark.engine
@pytest.mark.go
def test_an_unreachable_engine_is_refused_before_anything(sample_kit, tmp_path):
    env = {**sample_kit["env"], "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    result = inv("kit", "--load", str(sample_kit["kit"]), "--dest", str(tmp_path / "d"), env=env)
    assert result.returncode == 3 and "cannot reach the Docker engine" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []
    # --no-images needs no engine: the images stay in the kit's directory for a later load.
    loaded = inv("kit", "--load", str(sample_kit["kit"]), "--dest", str(tmp_path / "d"), "--no-images", env=env)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert (tmp_path / "d/images/images.tar").is_file() and "images not loaded" in loaded.stdout


@pytest.mark.engine
@pytest.mark.go
def test_images_missing_from_the_engine_are_refused_before_writing(sample_kit, fresh_engine, tmp_path):
    kit = tmp_path / "k.tar"
    result = inv("kit", "--save", str(kit), "--kube-root", str(sample_kit["tree"]), "--mode", "native",
                 "--docker-host", fresh_engine.host, env=sample_kit["env"])
    assert result.returncode == 1 and "not present, cannot save" in result.stderr, result.stderr
    assert "go-runner" in result.stderr and "--no-images" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.engine
@pytest.mark.go
def test_a_part_changed_after_verification_is_caught_while_unpacking(sample_kit, tmp_path):
    """Unpacking hashes every part again: a kit rewritten between the check and the unpack is refused."""
    import dataclasses

    from kit.plan import KitError
    from kit.unpack import PlainReporter, read_manifest, unpack

    manifest = read_manifest(sample_kit["kit"])
    parts = tuple(dataclasses.replace(p, sha256="0" * 64) if p.name == "go" else p for p in manifest.parts)
    report = PlainReporter()
    try:
        with pytest.raises(KitError, match="part go changed while it was unpacked"):
            unpack(sample_kit["kit"], dataclasses.replace(manifest, parts=parts), tmp_path / "stage", report)
    finally:
        report.close()


def _interrupt_at(argv: list[str], marker: str, env: dict[str, str]) -> tuple[int, str]:
    """Run `inv ARGV`, send SIGINT once stderr shows ``marker``; (exit code, stderr)."""
    import signal
    import threading

    exe = shutil.which("inv") or "inv"
    proc = subprocess.Popen([exe, "--search-root", str(REPO), *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, env=env, preexec_fn=sigint_default)
    seen: list[str] = []

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            seen.append(line)
            if marker in line and proc.poll() is None:
                time.sleep(0.3)
                proc.send_signal(signal.SIGINT)

    reader = threading.Thread(target=watch)
    reader.start()
    proc.wait(timeout=300)
    reader.join(timeout=10)
    return proc.returncode, "".join(seen)


@pytest.mark.engine
@pytest.mark.go
def test_ctrl_c_leaves_nothing_behind(sample_kit, tmp_path):
    env = sample_kit["env"]
    code, err = _interrupt_at(["kit", "--load", str(sample_kit["kit"]), "--dest", str(tmp_path / "d")], "venv:", env)
    assert code == 130 and "interrupted" in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []
    kit = tmp_path / "again.kit"
    code, err = _interrupt_at(["kit", "--save", str(kit), "--kube-root", str(sample_kit["tree"]), "--mode", "native"],
                              "save go", env)
    assert code == 130 and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []  # no kit, no partial file, no scratch directory


def plan_path(name: str) -> str:
    from kit.plan import KINDS

    return KINDS[name][1]


@pytest.mark.engine
@pytest.mark.go
def test_a_failure_after_the_rename_leaves_nothing(sample_kit, tmp_path):
    """The venv is made in place (its scripts name their own path): when it fails, DIR goes again."""
    from kit.plan import KitError
    from kit.unpack import PlainReporter, install

    report = PlainReporter()
    try:
        with pytest.raises(KitError, match="venv"):
            install(sample_kit["kit"], tmp_path / "dest", report, None, python="/nonexistent/python3")
    finally:
        report.close()
    assert list(tmp_path.iterdir()) == []


def test_flags_are_checked_before_anything(tmp_path):
    for args, needle in ((("kit",), "give one of"),
                         (("kit", "--list", "a", "--load", "b"), "not --load and --list"),
                         (("kit", "--load", str(tmp_path / "x"), "--dest", str(tmp_path / "d")), "no such file"),
                         (("kit", "--load", str(tmp_path / "x")), "--dest"),
                         (("kit", "--list", str(tmp_path)), "no such file"),
                         (("kit", "--save", str(tmp_path), "--kube-root", str(REPO / "samples/sample-tree")),
                          "is a directory")):
        result = inv(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and needle in result.stderr, (args, result.stderr)


@pytest.mark.engine
@pytest.mark.go
def test_subtasks_do_what_the_flags_do(sample_kit, sample_repo, tmp_path):
    """`inv kit.list FILE` says what `inv kit --list FILE` says; `inv kit.load` and `inv kit.save` reach the
    same work as --load and --save (the same checks refuse the same things, before anything is written).
    Their whole runs are the flag tests above: both names call the same code."""
    kit, env = sample_kit["kit"], sample_kit["env"]
    for extra in ((), ("--json",)):
        by_name = inv("kit.list", str(kit), *extra, env=env, check=True).stdout
        assert by_name == inv("kit", "--list", str(kit), *extra, env=env, check=True).stdout and by_name.strip()
    listed = json.loads(inv("kit.list", "--file", str(kit), "--json", env=env, check=True).stdout)
    assert listed["mode"] == "native" and listed["images"]
    dead = {**env, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    result = inv("kit.load", str(kit), "--dest", str(tmp_path / "d"), env=dead)
    assert result.returncode == 3 and "cannot reach the Docker engine" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "d").exists()
    tree = sample_repo("gopath")
    (tree / "new-file").write_text("not committed\n")
    result = inv("kit.save", str(tmp_path / "k.tar"), "--kube-root", str(tree), "--no-images", env=env)
    assert result.returncode == 1 and "local changes" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*k.tar*"))


@pytest.mark.go
def test_a_dirty_tree_is_refused(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    (tree / "new-file").write_text("not committed\n")
    result = inv("kit", "--save", str(tmp_path / "k.tar"), "--kube-root", str(tree), "--no-images")
    assert result.returncode == 1 and "local changes" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*k.tar*"))


@pytest.mark.go
def test_a_tree_without_git_travels_as_its_files(tmp_path):
    """No .git: a tar of the tree (no _output), mtimes kept, so the stamp's buildDate is the same."""
    from workspace.sample import materialize

    tree = tmp_path / "tree"
    materialize(tree, "gopath")
    (tree / "_output" / "junk").mkdir(parents=True)
    (tree / "hack" / "lib" / "version.sh").chmod(0o664)
    kit = tree / "files.kit"  # saved inside the tree it carries: the kit must not carry itself
    inv("kit", "--save", str(kit), "--kube-root", str(tree), "--no-images", check=True)
    with tarfile.open(kit) as tf, tarfile.open(fileobj=tf.extractfile("parts/source.tar.gz"), mode="r|gz") as src:
        names = [m.name for m in src]
    assert "files.kit" not in names and not [n for n in names if n.startswith((".files.kit", ".kit-", "_output"))]
    assert "cmd" in names and "hack/lib/version.sh" in names
    listed = json.loads(inv("kit", "--list", str(kit), "--json", check=True).stdout)
    assert listed["tree"] == "files" and "source-tree" in [p["name"] for p in listed["parts"]]
    loaded = inv("kit", "--load", str(kit), "--dest", str(tmp_path / "far"), check=True)
    assert "next:" in loaded.stdout and "env.sh" in loaded.stdout
    assert "version stamp as on the saving side" in loaded.stderr
    far = tmp_path / "far" / "kubernetes"
    assert not (far / "_output").exists()
    assert (far / "hack/lib/version.sh").stat().st_mode & 0o777 == 0o664
    here = json.loads(inv("version", "--kube-root", str(tree), "--json", check=True).stdout)
    there = json.loads(inv("version", "--kube-root", str(far), "--json", check=True).stdout)
    assert here == there
    assert (tmp_path / "far" / "venv" / "bin" / "inv").is_file()


# ---------------------------------------------------------------------------------------------
# the proof: no network at all


def _netns_works() -> bool:
    try:
        return subprocess.run(["unshare", "--net", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.engine
@pytest.mark.go
def test_offline_build_and_release_in_a_network_namespace(sample_kit, go_toolchain, tmp_path):
    require(_netns_works(), "unshare --net (root, util-linux)")
    tree, env = sample_kit["tree"], sample_kit["env"]
    # The connected side: the stamp, and the version the binary prints when built here.
    here_stamp = json.loads(inv("version", "--kube-root", str(tree), "--json", env=env, check=True).stdout)
    inv("build", "--kube-root", str(tree), "--what=cmd/kube-apiserver", env=env, check=True)
    here_version = subprocess.run([str(tree / "_output/bin/kube-apiserver"), "--version=raw"], capture_output=True,
                                  text=True, check=True).stdout
    result_file = tmp_path / "result.json"
    proc = subprocess.run(["unshare", "--net", sys.executable, str(Path(__file__).resolve()), "offline",
                           str(sample_kit["kit"]), str(tmp_path / "far"), str(result_file)],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=1500)
    assert proc.returncode == 0 and result_file.is_file(), proc.stdout[-3000:] + proc.stderr[-5000:]
    got = json.loads(result_file.read_text())
    steps = {s["name"]: s for s in got["steps"]}
    for name, step in steps.items():
        assert step["rc"] == 0, f"{name}: {step['out'][-3000:]}"
    assert got["isolated"], got["probe"]
    far = tmp_path / "far" / "kbuild-kit"
    assert got["which"].split() == [str(far / "go/bin/go"), str(far / "venv/bin/inv")]  # the kit's, not ours
    assert json.loads(steps["version"]["stdout"]) == here_stamp
    # A clone of the bundle, HEAD checked out at the saved commit, its tag there, no remote left behind.
    assert steps["git head"]["stdout"].strip() == here_stamp["gitCommit"]
    assert steps["git tags"]["stdout"].split() == ["v1.20.2"] and steps["git remotes"]["stdout"].strip() == ""
    assert json.loads(steps["apiserver --version=raw"]["stdout"]) == json.loads(here_version)
    assert json.loads(steps["released apiserver --version=raw"]["stdout"]) == json.loads(here_version)
    assert steps["apiserver --version"]["stdout"].strip() == f"Kubernetes {here_stamp['gitVersion']}"
    report = got["release_report"]
    assert report["mode"] == "native" and report["version"]["gitVersion"] == here_stamp["gitVersion"]
    assert {t["name"] for t in report["tarballs"]} >= {"kubernetes-server-linux-amd64.tar.gz", "kubernetes.tar.gz"}
    assert set(got["images_in_far_engine"]) >= {s.ref.name for s in sample_kit["specs"]}
    print(f"\nno-network load+build+release: {got['seconds']}", file=sys.stderr)


def _loopback_up() -> None:
    """`ip link set lo up`, without needing iproute2: SIOCGIFFLAGS / SIOCSIFFLAGS on lo."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        got = fcntl.ioctl(sock, siocgifflags, struct.pack("16sH14s", b"lo", 0, b""))
        flags = struct.unpack("16sH14s", got)[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))


def offline_main(kit: Path, work: Path, result: Path) -> int:
    """Inside `unshare --net`: loopback up, a private dockerd (--bridge=none --iptables=false), then
    install.sh, inv version, inv build, the binary, inv release --mode native --quick."""
    import socket

    from tests._support import engine

    _loopback_up()

    probe = []
    for addr in (("1.1.1.1", 443), ("151.101.0.223", 443)):  # anything outside: must be unreachable
        try:
            socket.create_connection(addr, timeout=3).close()
            probe.append(f"{addr}: connected")
        except OSError as exc:
            probe.append(f"{addr}: {exc}")
    isolated = not any("connected" in p for p in probe)
    work.mkdir(parents=True)
    daemon = engine.start_dockerd(work / "engine")  # bridge=False: --bridge=none --iptables=false
    out: dict[str, object] = {"probe": probe, "isolated": isolated, "steps": []}
    steps: list[dict[str, object]] = out["steps"]  # type: ignore[assignment]
    times: dict[str, float] = {}
    dest = work / "kbuild-kit"
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith(("DOCKER_", "GO"))}
    env.update(DOCKER_HOST=daemon.host, GOCACHE=str(work / "gocache"), HOME=str(work / "home"))
    (work / "home").mkdir()

    def step(name: str, argv: list[str], cwd: Path = work) -> subprocess.CompletedProcess[str]:
        start = time.monotonic()
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        times[name] = round(time.monotonic() - start, 1)
        steps.append({"name": name, "rc": proc.returncode, "stdout": proc.stdout,
                      "out": proc.stdout[-2000:] + proc.stderr[-4000:]})
        return proc

    def sourced(command: str) -> list[str]:
        return ["bash", "-c", f'. "$1" && cd "$2" && {command}', "bash", str(dest / "env.sh"), str(dest / "kbuild")]

    try:
        with tarfile.open(kit) as tf:
            (work / "install.sh").write_bytes(tf.extractfile("install.sh").read())  # type: ignore[union-attr]
        if step("install.sh", ["sh", str(work / "install.sh"), str(kit), str(dest)]).returncode == 0:
            step("which", sourced("command -v go inv"))
            step("git head", ["git", "-C", str(dest / "kubernetes"), "rev-parse", "HEAD"])
            step("git tags", ["git", "-C", str(dest / "kubernetes"), "tag", "--points-at", "HEAD"])
            step("git remotes", ["git", "-C", str(dest / "kubernetes"), "remote"])
            step("version", sourced("inv version --json"))
            step("build", sourced("inv build --what=cmd/kube-apiserver"))
            step("apiserver --version", [str(dest / "kubernetes/_output/bin/kube-apiserver"), "--version"])
            step("apiserver --version=raw", [str(dest / "kubernetes/_output/bin/kube-apiserver"), "--version=raw"])
            env.update(KBUILD_MIN_DISK_GB="1", KBUILD_MIN_MEMORY_GB="0.5")
            if step("release", sourced("inv release --mode native --quick")).returncode == 0:
                report = dest / "kubernetes/_output/release-tars/release-report.json"
                out["release_report"] = json.loads(report.read_text())
                tars = dest / "kubernetes/_output/release-tars"
                with tarfile.open(tars / "kubernetes-server-linux-amd64.tar.gz") as tf:
                    tf.extract("kubernetes/server/bin/kube-apiserver", work / "released", filter="data")
                step("released apiserver --version=raw",
                     [str(work / "released/kubernetes/server/bin/kube-apiserver"), "--version=raw"])
        client = daemon.client()
        out["images_in_far_engine"] = sorted(t for i in client.api.images() for t in (i.get("RepoTags") or []))
    finally:
        daemon.stop()
    which = next((s for s in steps if s["name"] == "which"), None)
    out["which"] = which["stdout"] if which else ""
    out["seconds"] = times
    result.write_text(json.dumps(out, indent=1))
    return 0


# ---------------------------------------------------------------------------------------------
# the real tree


@pytest.mark.realtree
@pytest.mark.go
def test_kit_of_the_real_tree_without_images(real_tree, tmp_path):
    kit = tmp_path / "v1.20.2.kit"
    start = time.monotonic()
    saved = inv("kit", "--save", str(kit), "--kube-root", str(real_tree), "--no-images")
    seconds = time.monotonic() - start
    assert saved.returncode == 0, saved.stderr[-3000:]
    manifest = json.loads(inv("kit", "--list", str(kit), "--json", check=True).stdout)
    assert manifest["tree"] == "files" and manifest["stamp"]["gitVersion"] == "v1.20.2"
    assert manifest["images"] == [] and "images" not in {p["name"] for p in manifest["parts"]}
    sizes = {p["name"]: round(p["size"] / 1048576, 1) for p in manifest["parts"]}
    print(f"\nreal v1.20.2 kit: {kit.stat().st_size / 1048576:.1f} MB in {seconds:.1f}s; parts (MB): {sizes}",
          file=sys.stderr)
    start = time.monotonic()
    loaded = inv("kit", "--load", str(kit), "--dest", str(tmp_path / "far"))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    print(f"real v1.20.2 kit loaded in {time.monotonic() - start:.1f}s", file=sys.stderr)
    far = tmp_path / "far" / "kubernetes"
    assert not (far / "_output").exists() and (far / "vendor").is_dir()
    here = json.loads(inv("version", "--kube-root", str(real_tree), "--json", check=True).stdout)
    there = json.loads(inv("version", "--kube-root", str(far), "--json", check=True).stdout)
    assert here == there


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "offline":
    sys.exit(offline_main(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])))

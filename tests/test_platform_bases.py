"""Pure parts of a multi-platform release's base images: which `docker build` is for which platform
(the packaging's docker shim), and the check of each server image tar's arch (hostile tars included)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from build.release.bases import check_arches, needs_variants
from build.release.docker_shim import build_platform

PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm"]


@pytest.mark.parametrize(("argv", "want"), [
    # v1.20's create_docker_images_for_server: `docker build -q -t k8s.gcr.io/<binary>-<arch>:<tag> <dir>`.
    (["build", "-q", "-t", "k8s.gcr.io/kube-apiserver-arm64:v1.20.2", "/tmp/x"], "linux/arm64"),
    (["build", "--pull", "-q", "-t", "k8s.gcr.io/kube-proxy-amd64:v1.20.2", "/d"], "linux/amd64"),
    (["build", "--tag=reg:5000/k8s/kube-scheduler-arm:v1", "."], "linux/arm"),
    (["build", "-treg/kube-scheduler-arm64:v1", "."], "linux/arm64"),
    # Global options before the command; buildx's and `image build`'s spellings; --platform wins.
    (["-H", "unix:///x.sock", "--log-level", "warn", "build", "-t", "k/kube-apiserver-amd64:v", "."], "linux/amd64"),
    (["buildx", "build", "--platform", "linux/arm64", "-t", "k/kube-apiserver-amd64:v", "."], "linux/arm64"),
    (["image", "build", "--platform=linux/arm", "."], "linux/arm"),
    # Not a server image build: passes through untouched.
    (["build", "-t", "kube-build:build-abc-5-v1.15.5-1", "."], None),
    (["build", "-t", "k8s.gcr.io/kube-apiserver-s390x:v1", "."], None),   # not one of the release's platforms
    (["build", "-t", "k8s.gcr.io/kube-apiserver-barm64:v1", "."], None),
    (["save", "-o", "x.tar", "k8s.gcr.io/kube-apiserver-arm64:v1"], None),
    (["tag", "k8s.gcr.io/kube-apiserver-arm64:v1", "other"], None),
    (["rmi", "k8s.gcr.io/kube-apiserver-arm64:v1"], None),
    ([], None),
])
def test_which_platform_a_docker_build_is_for(argv, want):
    assert build_platform(argv, PLATFORMS) == want


def test_variants_are_needed_unless_the_engines_own_platform_alone():
    assert not needs_variants(["linux/amd64"], "linux/amd64")
    assert not needs_variants([], "linux/amd64")
    assert needs_variants(["linux/arm64"], "linux/amd64")
    assert needs_variants(["linux/amd64", "linux/arm64"], "linux/amd64")


def _save_tar(path: Path, config: object, *, manifest: object | None = None, big: int = 0) -> Path:
    """A docker-save archive: manifest.json naming a config file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        def add(name: str, data: bytes, size: int | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data) if size is None else size
            tar.addfile(info, io.BytesIO(data))

        add("manifest.json", json.dumps(manifest if manifest is not None else [{"Config": "c.json"}]).encode())
        add("c.json", json.dumps(config).encode() + b" " * big)
    return path


def test_each_server_image_must_be_for_the_arch_it_is_filed_under(tmp_path):
    images = tmp_path / "release-images"
    good = _save_tar(images / "arm64" / "kube-apiserver.tar", {"architecture": "arm64", "os": "linux"})
    arm = _save_tar(images / "arm" / "kube-proxy.tar", {"architecture": "arm", "os": "linux", "variant": "v7"})
    assert check_arches([good, arm]) == []
    wrong = _save_tar(images / "arm64" / "kube-scheduler.tar", {"architecture": "amd64", "os": "linux"})
    none = _save_tar(images / "amd64" / "kube-proxy.tar", {"os": "linux"})
    lines = check_arches([good, wrong, none])
    assert lines == [f"{wrong}: an image for linux/amd64, not arm64", f"{none}: an image for no platform, not amd64"]


@pytest.mark.parametrize("case", ["not-a-tar", "no-manifest", "manifest-not-list", "config-missing",
                                  "config-huge", "config-a-list", "config-a-link"])
def test_a_hostile_or_broken_image_tar_is_one_error_naming_it(tmp_path, case):
    from common.errors import KBError

    tar = tmp_path / "amd64" / "x.tar"
    tar.parent.mkdir()
    if case == "not-a-tar":
        tar.write_bytes(b"\x00garbage" * 100)
    elif case == "no-manifest":
        with tarfile.open(tar, "w") as tf:
            tf.addfile(tarfile.TarInfo("other"), io.BytesIO(b""))
    elif case == "manifest-not-list":
        _save_tar(tar, {}, manifest={"Config": "c.json"})
    elif case == "config-missing":
        _save_tar(tar, {}, manifest=[{"Config": "../../etc/passwd"}])
    elif case == "config-huge":
        _save_tar(tar, {"architecture": "amd64", "os": "linux"}, big=5 << 20)
    elif case == "config-a-list":
        _save_tar(tar, ["architecture"])
    else:
        with tarfile.open(tar, "w") as tf:
            data = json.dumps([{"Config": "c.json"}]).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo("c.json")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/hostname"
            tf.addfile(link)
    with pytest.raises(KBError) as err:
        check_arches([tar])
    assert str(tar) in err.value.message and "\n" not in err.value.message


def test_the_shim_passes_other_commands_through_and_reports_a_bad_state_in_one_line(tmp_path):
    """The shim as the packaging runs it (a real process, a fake `docker` that prints its arguments)."""
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    log = tmp_path / "calls"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    fake.chmod(0o755)
    state = tmp_path / "bases.json"
    state.write_text(json.dumps({"docker": str(fake), "platforms": {
        "linux/arm64": {"k8s.gcr.io/build-image/go-runner:v2": "sha256:" + "a" * 64},
        "linux/amd64": {"k8s.gcr.io/build-image/go-runner:v2": "sha256:" + "b" * 64}}}))
    shim = [sys.executable, "-m", "build.release.docker_shim"]
    root = Path(__file__).resolve().parents[1]
    env = {"KBUILD_DOCKER_BASES": str(state), "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*shim, *args], cwd=root, env=env, capture_output=True, text=True, timeout=30)

    assert run("save", "-o", "x.tar", "img").returncode == 0
    for arch in ("arm64", "arm64", "amd64"):   # the second arm64 build finds the names already pointed
        assert run("build", "-q", "-t", f"k8s.gcr.io/kube-apiserver-{arch}:v1", "d").returncode == 0
    calls = log.read_text().splitlines()
    assert calls == ["save -o x.tar img",
                     f"tag sha256:{'a' * 64} k8s.gcr.io/build-image/go-runner:v2",
                     "build -q -t k8s.gcr.io/kube-apiserver-arm64:v1 d",
                     "build -q -t k8s.gcr.io/kube-apiserver-arm64:v1 d",
                     f"tag sha256:{'b' * 64} k8s.gcr.io/build-image/go-runner:v2",
                     "build -q -t k8s.gcr.io/kube-apiserver-amd64:v1 d"]
    state.write_text("{not json")
    bad = run("build", "-t", "x-arm64:v", ".")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and str(state) in bad.stderr

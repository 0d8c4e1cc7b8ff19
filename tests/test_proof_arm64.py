"""The real v1.20.2 tree released for linux/arm64 on an amd64 machine: cgo cross compiler
(gcc-aarch64-linux-gnu), base images only on a mirror as two-variant indexes. Its figures are in the
README; it is left out of the CI run (`-m proof` runs it): cold, it compiles the whole tree for arm64
(about 20 minutes here), more than CI's 40-minute cold budget leaves."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from images.refs import mirror_ref
from images.resolve import resolve
from tests._support.index import _digest, _layer, push_index
from tests.conftest import inv, require
from workspace.tree import KubeTree

pytestmark = [pytest.mark.proof, pytest.mark.realtree, pytest.mark.engine]

ARM64_TARBALLS = {f"kubernetes-{kind}-linux-arm64.tar.gz" for kind in ("client", "node", "server", "test")}
EM_AARCH64 = 183  # the ELF header's e_machine for arm64


def _elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", path
    return int.from_bytes(head[18:20], "little")


def test_real_tree_native_release_for_arm64(real_tree, go_toolchain, registry, engine_client, docker_host):
    require(shutil.which("aarch64-linux-gnu-gcc") is not None, "apt-get install gcc-aarch64-linux-gnu")
    mirror = f"{registry.address}/arm64proof"
    layer_of = {}
    for spec in (s for s in resolve(KubeTree(real_tree), {}) if s.used_by and s.role != "pause"):
        variants = {p: f"{spec.role} {p}" for p in ("linux/amd64", "linux/arm64")}
        source = mirror_ref(spec.ref, mirror, "nested")
        push_index(registry.address, source.path, source.tag, variants)
        layer_of[_digest(_layer(variants["linux/arm64"])[0])] = spec.ref.name
    env = {**os.environ, "KBUILD_MIN_DISK_GB": "2", "KBUILD_MIN_MEMORY_GB": "2"}
    start = time.monotonic()
    got = inv("release", "--kube-root", str(real_tree), "--mode", "native", "--quick", "--platform", "linux/arm64",
              "--mirror", mirror, env=env)
    took = time.monotonic() - start
    assert got.returncode == 0, got.stderr[-4000:]
    tars = real_tree / "_output/release-tars"
    assert ARM64_TARBALLS <= {p.name for p in tars.glob("*.tar.gz")}
    for binary in ("kube-apiserver", "kubelet", "kubectl"):
        assert _elf_machine(real_tree / "_output/dockerized/bin/linux/arm64" / binary) == EM_AARCH64
    images = sorted((real_tree / "_output/release-images/arm64").glob("*.tar"))
    assert {p.stem for p in images} >= {"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}
    for tar in images:
        with tarfile.open(tar) as tf:
            manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
            config = json.load(io.TextIOWrapper(tf.extractfile(manifest[0]["Config"])))  # type: ignore[arg-type]
        assert config["architecture"] == "arm64", tar
        assert config["rootfs"]["diff_ids"][0] in layer_of, tar  # built on an arm64 variant from the mirror
    report = json.loads((tars / "release-report.json").read_text())
    print(f"\narm64 native quick release of the real tree: {took:.0f}s; phases {report['durations']}")

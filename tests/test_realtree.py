"""The real Kubernetes v1.20.2 tree (Debian's source package): workspace, version, build kube-apiserver.

Cold, this is a ~5 minute go build; the GOCACHE is shared between runs (see .ci/run).
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.conftest import inv

pytestmark = [pytest.mark.realtree, pytest.mark.go]

COMMIT = "faecb196815e248d3ecfb03c680a4507229c2a56"


def test_workspace_link(real_tree):
    result = inv("workspace", "--kube-root", str(real_tree), check=True)
    link = real_tree / "_output/local/go/src/k8s.io/kubernetes"
    assert link.is_symlink() and link.resolve() == real_tree.resolve()
    assert "gopath era" in result.stdout
    for d in ("src", "pkg", "bin"):
        assert (real_tree / "_output/local/go" / d).is_dir()


def test_build_kube_apiserver(real_tree, go_toolchain):
    gen = real_tree / "pkg/generated/openapi/zz_generated.openapi.go"
    was_missing = not gen.exists()
    result = inv("build", "--kube-root", str(real_tree), "--what=cmd/kube-apiserver", check=True)
    assert gen.exists()
    assert ("generating pkg/generated/openapi/zz_generated.openapi.go" in result.stderr) == was_missing
    binary = real_tree / "_output/local/bin/linux/amd64/kube-apiserver"
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Kubernetes v1.20.2"
    raw = subprocess.run([str(binary), "--version=raw"], capture_output=True, text=True, check=True).stdout
    stamp = json.loads(inv("version", "--kube-root", str(real_tree), "--json", check=True).stdout)
    assert stamp["gitCommit"] == COMMIT and stamp["gitTreeState"] == "archive"
    for field, key in (("GitCommit", "gitCommit"), ("GitTreeState", "gitTreeState"), ("BuildDate", "buildDate"),
                       ("GitVersion", "gitVersion"), ("Major", "major"), ("Minor", "minor")):
        m = re.search(rf'{field}:"([^"]*)"', raw)
        assert m and m.group(1) == stamp[key], field
    # Static, as the tree's KUBE_STATIC_LIBRARIES says: no dynamic loader in the ELF.
    assert b"/lib64/ld-linux" not in binary.read_bytes()[:4096]
    assert (real_tree / "_output/bin").resolve() == binary.parent.resolve()


RELEASE_TARBALLS = {"kubernetes.tar.gz", "kubernetes-src.tar.gz", "kubernetes-client-linux-amd64.tar.gz",
                    "kubernetes-node-linux-amd64.tar.gz", "kubernetes-server-linux-amd64.tar.gz",
                    "kubernetes-manifests.tar.gz", "kubernetes-test-portable.tar.gz",
                    "kubernetes-test-linux-amd64.tar.gz"}
SERVER_BINARIES = {"apiextensions-apiserver", "kube-aggregator", "kube-apiserver", "kube-controller-manager",
                   "kube-proxy", "kube-scheduler", "kubeadm", "kubectl", "kubelet", "mounter"}
TEST_BINARIES = {"e2e.test", "e2e_node.test", "gendocs", "genkubedocs", "genman", "genswaggertypedocs", "genyaml",
                 "ginkgo", "go-runner", "kubemark", "linkcheck"}
BASES = ("k8s.gcr.io/build-image/go-runner:buster-v2.2.2", "k8s.gcr.io/build-image/debian-iptables:buster-v1.3.0")
IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")


@pytest.mark.engine
def test_native_quick_release(real_tree, go_toolchain, docker_host, mkimage, tmp_path):
    """Kubernetes' own packaging over kbuild's native builds: the eight tarballs release.sh writes."""
    import tarfile

    from build.release.package import repo_tags

    for base in BASES:
        mkimage(base, f"stand-in {base}")
    env = {**os.environ, "KBUILD_MIN_DISK_GB": "2", "KBUILD_MIN_MEMORY_GB": "2"}
    result = inv("release", "--kube-root", str(real_tree), "--mode", "native", "--quick", "--skip-images", env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    tars = real_tree / "_output/release-tars"
    assert {p.name for p in tars.glob("*.tar.gz")} == RELEASE_TARBALLS
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tars, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    with tarfile.open(tars / "kubernetes-server-linux-amd64.tar.gz") as tf:
        names = {m.name.rsplit("/", 1)[-1] for m in tf if m.name.startswith("kubernetes/server/bin/")}
    assert SERVER_BINARIES | {f"{i}.tar" for i in IMAGES} | {f"{i}.docker_tag" for i in IMAGES} <= names
    with tarfile.open(tars / "kubernetes-test-linux-amd64.tar.gz") as tf:
        names = {m.name.rsplit("/", 1)[-1] for m in tf if m.isfile()}
    assert TEST_BINARIES <= names
    binary = real_tree / "_output/dockerized/bin/linux/amd64/kube-apiserver"
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Kubernetes v1.20.2"
    for image in IMAGES:
        assert repo_tags(real_tree / f"_output/release-images/amd64/{image}.tar") == [
            f"k8s.gcr.io/{image}-amd64:v1.20.2"]
    report = json.loads((tars / "release-report.json").read_text())
    assert report["mode"] == "native" and report["version"]["gitCommit"] == COMMIT
    assert report["durations"]["build"] > 0 and report["durations"]["package"] > 0

"""hyperkube-era trees: the server names the tree's hyperkube knows, and --hyperkube-links."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from build.hyperkube import make_links, server_names
from common.errors import TreeError
from tests.conftest import inv
from workspace.tree import KubeTree

V118_MAIN = '''package main

import (
	cloudcontrollermanager "k8s.io/kubernetes/cmd/cloud-controller-manager/app"
	kubeapiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kubecontrollermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	kubeproxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	kubescheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
	kubectl "k8s.io/kubectl/pkg/cmd"
)
'''


def test_server_names_from_imports(tmp_path):
    (tmp_path / "cmd/hyperkube").mkdir(parents=True)
    (tmp_path / "cmd/hyperkube/main.go").write_text(V118_MAIN)
    assert server_names(KubeTree(tmp_path)) == ["kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                                 "kube-proxy", "kubelet", "kubectl", "cloud-controller-manager"]


def test_no_hyperkube(tmp_path):
    (tmp_path / "cmd").mkdir()
    with pytest.raises(TreeError):
        server_names(KubeTree(tmp_path))


def test_make_links_refuses_real_files(tmp_path):
    binary = tmp_path / "hyperkube"
    binary.write_text("x")
    (tmp_path / "kubelet").write_text("a real kubelet")
    links = make_links(binary, ["kube-apiserver"])
    assert links[0].is_symlink() and links[0].readlink() == Path("hyperkube")
    with pytest.raises(TreeError):
        make_links(binary, ["kubelet"])
    assert (tmp_path / "kubelet").read_text() == "a real kubelet"


def test_links_flag_needs_hyperkube(sample_repo):
    tree = sample_repo("gopath")
    result = inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", "--hyperkube-links")
    assert result.returncode == 2 and "--what=cmd/hyperkube" in result.stderr


@pytest.mark.go
def test_hyperkube_variant_builds_with_links(tmp_path):
    from workspace.sample import materialize
    from workspace.source import init_repo

    tree = materialize(tmp_path / "hk", "gopath", variant="hyperkube")
    init_repo(tree, "v1.18.0")
    assert server_names(KubeTree(tree)) == ["kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                            "kube-proxy", "kubelet", "kubectl"]
    result = inv("build", "--kube-root", str(tree), "--what=cmd/hyperkube", "--hyperkube-links", check=True)
    bindir = tree / "_output/local/bin/linux/amd64"
    assert "hyperkube links in" in result.stderr
    for name in server_names(KubeTree(tree)):
        link = bindir / name
        assert link.is_symlink() and link.readlink() == Path("hyperkube")
        out = subprocess.run([str(link)], capture_output=True, text=True, check=True).stdout
        assert out.strip() == f"{name}: sample hyperkube server"
    version = subprocess.run([str(bindir / "kube-apiserver"), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == "Kubernetes v1.18.0"
    by_arg = subprocess.run([str(bindir / "hyperkube"), "kubelet"], capture_output=True, text=True, check=True)
    assert by_arg.stdout.strip() == "kubelet: sample hyperkube server"
    # Idempotent: a rebuild (up to date) re-makes the links without complaint.
    inv("build", "--kube-root", str(tree), "--what=cmd/hyperkube", "--hyperkube-links", check=True)

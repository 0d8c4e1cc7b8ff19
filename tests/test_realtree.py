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

"""`inv clean`: outputs go, the tree stays — even through the workspace symlink."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from tests.conftest import inv


def snapshot(root: Path) -> dict[str, str]:
    """Every file of the tree outside _output, with its content hash."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel.parts[:1] == ("_output",):
            dirnames[:] = []
            continue
        for name in filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = "link" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.mark.go
def test_clean_keeps_every_tree_file(sample_repo, tmp_path, monkeypatch):
    tree = sample_repo("gopath")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    monkeypatch.delenv("GOCACHE")  # Kubernetes' default: the cache under _output/local/go/cache
    inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", check=True)
    cache = tree / "_output/local/go/cache"
    assert cache.is_dir() and (tree / "_output/local/go/src/k8s.io/kubernetes").is_symlink()
    ro = tree / "_output/local/go/pkg/mod/example.com/ro"  # like Go's read-only module cache
    ro.mkdir(parents=True)
    (ro / "f").write_text("x")
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    (tree / "_output/release-tars").mkdir()
    before = snapshot(tree)
    result = inv("clean", "--kube-root", str(tree), check=True)
    assert f"removed {tree / '_output/local'}" in result.stdout
    assert not (tree / "_output/local").exists() and not (tree / "_output/bin").is_symlink()
    assert (tree / "_output/release-tars").is_dir()  # only --all removes the rest
    assert snapshot(tree) == before and outside.read_text() == "keep me"
    inv("clean", "--kube-root", str(tree), "--all", check=True)
    assert not (tree / "_output").exists() and snapshot(tree) == before
    assert inv("clean", "--kube-root", str(tree), check=True).stdout.strip() == "nothing to remove"


def test_clean_refuses_a_symlinked_output(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "local").mkdir(parents=True)
    (elsewhere / "local" / "precious").write_text("x")
    (tree / "_output").symlink_to(elsewhere)
    result = inv("clean", "--kube-root", str(tree), "--all")
    assert result.returncode != 0 and "symlink" in result.stderr
    assert (elsewhere / "local" / "precious").exists()

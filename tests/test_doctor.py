"""`inv doctor`: the table, the fixes, and an exit code that depends on the tasks asked about."""

from __future__ import annotations

import os
import shutil

import pytest

from tests._support.doctor import doctor_rows
from tests.conftest import inv


def rows(stdout: str) -> dict[str, list[str]]:
    """Each check's row (its wrapped detail and fix lines joined), split into words."""
    return {name: text.split() for name, text in doctor_rows(stdout).items()}


def test_doctor_for_build_passes_on_a_good_tree(sample_repo):
    tree = sample_repo("gopath")
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = inv("doctor", "--kube-root", str(tree), env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    table = rows(result.stdout)
    assert table["tree"][1] == "ok" and table["go"][1] == "ok" and table["git"][1] == "ok"
    assert table["engine"][1] == "MISSING"  # but build doesn't need it
    assert result.stdout.splitlines()[0].split()[:3] == ["CHECK", "STATUS", "NEEDED"]
    # Fits 100 columns (a word longer than the column, a long path, is kept whole).
    assert all(len(line) <= 100 or max(map(len, line.split())) > 40 for line in result.stdout.splitlines())


def test_doctor_fails_for_the_task_that_needs_the_missing_piece(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    # A PATH with go and git but no etcd.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("git", "make", "bash", "openssl"):  # no rsync: the sample tree does not use it
        (bindir / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(bindir), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    ok = inv("doctor", "--kube-root", str(tree), "--task", "build", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = inv("doctor", "--kube-root", str(tree), "--task", "smoke", env=env)
    assert bad.returncode == 1
    etcd = doctor_rows(bad.stdout)["etcd"]
    assert "MISSING" in etcd and "apt-get install etcd-server" in etcd
    assert "not ready for smoke: etcd" in bad.stderr
    images = inv("doctor", "--kube-root", str(tree), "--task", "images", env=env)
    assert images.returncode == 1 and "DOCKER_HOST" in images.stdout


def test_doctor_missing_tree_and_bad_task(tmp_path):
    missing = inv("doctor", "--kube-root", str(tmp_path / "nope"))
    assert missing.returncode == 1 and "MISSING" in rows(missing.stdout)["tree"]
    bad = inv("doctor", "--kube-root", str(tmp_path), "--task", "dance")
    assert bad.returncode == 2 and "choose from" in bad.stderr


def test_doctor_workspace_blocked(sample_repo):
    tree = sample_repo("gopath")
    blocked = tree / "_output/local/go/src/k8s.io/kubernetes"
    blocked.mkdir(parents=True)
    result = inv("doctor", "--kube-root", str(tree))
    assert result.returncode == 1 and "MISSING" in rows(result.stdout)["workspace"]


@pytest.mark.engine
def test_doctor_engine_and_mirrors(sample_repo, registry, docker_host):
    tree = sample_repo("gopath")
    result = inv("doctor", "--kube-root", str(tree), "--task", "images", "--mirror", f"{registry.address}/m",
                 "--mirror", "127.0.0.1:1/dead")
    table = rows(result.stdout)
    assert table["engine"][1] == "ok" and "storage vfs" in " ".join(table["engine"])
    assert table[f"mirror {registry.address}/m"][2] == "ok"
    assert table["mirror 127.0.0.1:1/dead"][2] == "MISSING"
    assert result.returncode == 1


def test_doctor_says_when_go_version_pins_another_go(tmp_path):
    from workspace.sample import materialize

    tree = materialize(tmp_path / "newest", "workspace", "newest")
    pinned = "go" + (tree / ".go-version").read_text().strip()
    result = inv("doctor", "--kube-root", str(tree), "--task", "build")
    row = doctor_rows(result.stdout)["go"]
    assert f".go-version pins {pinned}; building with the local" in row and "no download" in row

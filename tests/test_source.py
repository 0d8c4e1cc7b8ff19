"""`inv source`: getting a tree at a tag from a real (local) upstream repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from common.errors import UsageError
from tests.conftest import git, inv
from workspace.sample import materialize
from workspace.source import check_ref, check_url, init_repo


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """The sample tree as an upstream repo: v1.20.1, v1.20.2 (annotated), then one untagged commit."""
    repo = materialize(tmp_path / "upstream", "gopath")
    init_repo(repo, "v1.20.1", message="release 1.20.1")
    with (repo / "README.md").open("a") as f:
        f.write("\nv1.20.2 notes\n")
    git(repo, "commit", "-q", "-a", "-m", "release 1.20.2")
    git(repo, "tag", "-a", "v1.20.2", "-m", "v1.20.2")
    with (repo / "README.md").open("a") as f:
        f.write("\nwork after 1.20.2\n")
    git(repo, "commit", "-q", "-a", "-m", "after 1.20.2")
    return repo


def _url(repo: Path) -> str:
    return f"file://{repo}"


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ERROR")]


def test_clone_at_tag(upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "k"
    proc = inv("source", "--ref", "v1.20.2", "--url", _url(upstream), "--dest", str(dest), check=True)
    want = git(upstream, "rev-parse", "v1.20.2^{commit}")
    assert want != git(upstream, "rev-parse", "HEAD")  # upstream HEAD is past the tag
    assert git(dest, "rev-parse", "HEAD") == want
    assert want in proc.stdout
    assert git(dest, "status", "--porcelain") == ""
    assert git(dest, "remote", "get-url", "origin") == _url(upstream)
    data = json.loads(inv("version", "--kube-root", str(dest), "--json", check=True).stdout)
    assert (data["gitVersion"], data["gitTreeState"], data["gitCommit"]) == ("v1.20.2", "clean", want)
    assert (data["major"], data["minor"]) == ("1", "20")


def test_fetch_other_tag_into_existing_clone(upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "k"
    inv("source", "--ref", "v1.20.2", "--url", _url(upstream), "--dest", str(dest), check=True)
    inv("source", "--ref", "v1.20.1", "--url", _url(upstream), "--dest", str(dest), check=True)
    assert git(dest, "rev-parse", "HEAD") == git(upstream, "rev-parse", "v1.20.1^{commit}")
    assert "v1.20.2 notes" not in (dest / "README.md").read_text()
    data = json.loads(inv("version", "--kube-root", str(dest), "--json", check=True).stdout)
    assert (data["gitVersion"], data["gitTreeState"]) == ("v1.20.1", "clean")


def test_full_history_clone(upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "k"
    inv("source", "--ref", "v1.20.2", "--url", _url(upstream), "--dest", str(dest), "--full", check=True)
    assert git(dest, "rev-list", "--count", "HEAD") == "2"
    assert git(dest, "rev-parse", "HEAD") == git(upstream, "rev-parse", "v1.20.2^{commit}")


def test_shallow_clone_by_default(upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "k"
    inv("source", "--ref", "v1.20.2", "--url", _url(upstream), "--dest", str(dest), check=True)
    assert git(dest, "rev-list", "--count", "HEAD") == "1"
    assert git(dest, "describe", "--tags", "--match=v*") == "v1.20.2"  # the tag came with it


@pytest.mark.parametrize("ref", ["-x", "a b", "--upload-pack=touch pwned", "v1..2", "v1.20.2.lock", "v1.20.2.",
                                 ""])
def test_bad_ref_is_refused(upstream: Path, tmp_path: Path, ref: str) -> None:
    dest = tmp_path / "k"
    proc = inv("source", f"--ref={ref}", "--url", _url(upstream), "--dest", str(dest))
    assert proc.returncode == 2, proc.stderr
    assert len(_errors(proc.stderr)) == 1
    assert "Traceback" not in proc.stderr
    assert not dest.exists()
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("ref", ["v1.20.2", "v1.21.0-alpha.1", "1.20.2", "release-1.20", "v1.20.2+build.1"])
def test_check_ref_accepts(ref: str) -> None:
    assert check_ref(ref) == ref


@pytest.mark.parametrize("ref", ["-x", "a b", "v1..2", "x.lock", "v1.", "", "v1.20.2\n", "refs/tags/v1.20.2", "a;b"])
def test_check_ref_refuses(ref: str) -> None:
    with pytest.raises(UsageError):
        check_ref(ref)


@pytest.mark.parametrize("url", ["-oProxyCommand=x", "file:///a b", ""])
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(UsageError):
        check_url(url)


def test_bad_url_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "k"
    proc = inv("source", "--ref", "v1.20.2", "--url=-oProxyCommand=touch", "--dest", str(dest))
    assert proc.returncode == 2
    assert len(_errors(proc.stderr)) == 1
    assert not dest.exists()


def test_unknown_ref_leaves_nothing_behind(upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "k"
    proc = inv("source", "--ref", "v9.9.9", "--url", _url(upstream), "--dest", str(dest))
    assert proc.returncode != 0
    assert len(_errors(proc.stderr)) == 1
    assert "Traceback" not in proc.stderr
    assert not dest.exists()


def test_unknown_ref_into_empty_existing_dir(upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "k"
    dest.mkdir()
    proc = inv("source", "--ref", "v9.9.9", "--url", _url(upstream), "--dest", str(dest))
    assert proc.returncode != 0
    assert dest.is_dir() and list(dest.iterdir()) == []  # not ours to delete, but left as found


def test_unknown_ref_keeps_existing_clone(upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "k"
    inv("source", "--ref", "v1.20.2", "--url", _url(upstream), "--dest", str(dest), check=True)
    head = git(dest, "rev-parse", "HEAD")
    proc = inv("source", "--ref", "v9.9.9", "--url", _url(upstream), "--dest", str(dest))
    assert proc.returncode != 0
    assert len(_errors(proc.stderr)) == 1
    assert git(dest, "rev-parse", "HEAD") == head
    assert (dest / "cmd").is_dir()


@pytest.mark.parametrize("change", ["modified", "untracked"])
def test_local_changes_are_refused(upstream: Path, tmp_path: Path, change: str) -> None:
    dest = tmp_path / "k"
    inv("source", "--ref", "v1.20.2", "--url", _url(upstream), "--dest", str(dest), check=True)
    head = git(dest, "rev-parse", "HEAD")
    if change == "modified":
        target = dest / "README.md"
        text = target.read_text() + "\nmy local edit\n"
    else:
        target = dest / "cmd" / "mine.go"
        text = "package main\n"
    target.write_text(text)
    proc = inv("source", "--ref", "v1.20.1", "--url", _url(upstream), "--dest", str(dest))
    assert proc.returncode != 0
    assert len(_errors(proc.stderr)) == 1 and "local changes" in proc.stderr
    assert target.read_text() == text
    assert git(dest, "rev-parse", "HEAD") == head


def test_non_git_dest_is_refused(upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "k"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine\n")
    proc = inv("source", "--ref", "v1.20.2", "--url", _url(upstream), "--dest", str(dest))
    assert proc.returncode == 2
    assert len(_errors(proc.stderr)) == 1
    assert sorted(p.name for p in dest.iterdir()) == ["notes.txt"]
    assert (dest / "notes.txt").read_text() == "mine\n"


def test_missing_ref_flag(tmp_path: Path) -> None:
    proc = inv("source", "--dest", str(tmp_path / "k"))
    assert proc.returncode == 2
    assert len(_errors(proc.stderr)) == 1
    assert not (tmp_path / "k").exists()


def test_dest_defaults_to_kube_root(upstream: Path, tmp_path: Path) -> None:
    dest = tmp_path / "from-env"
    inv("source", "--ref", "v1.20.1", "--url", _url(upstream), env={**os.environ, "KUBE_ROOT": str(dest)},
        cwd=tmp_path, check=True)
    assert git(dest, "rev-parse", "HEAD") == git(upstream, "rev-parse", "v1.20.1^{commit}")

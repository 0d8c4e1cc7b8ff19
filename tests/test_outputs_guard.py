"""The output guard (issue 19, cases 14, 15 and release's half of 10): nothing is written through a
symlink out of the tree's `_output`, no directory the user did not name is created, no temporary file is
left behind, and a full disk during a release names the file and the step and leaves no partial tarball."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from common.errors import KBError, TreeError, UsageError
from common.outputs import check_inside, output_target, write_file
from tests.conftest import inv, require


def listing(root: Path) -> list[tuple[str, bytes | None]]:
    """Every entry under ``root`` with its bytes: equal listings mean nothing was written there."""
    found = []
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(dirpath) / name
            found.append((str(path.relative_to(root)), path.read_bytes() if path.is_file() else None))
    return sorted(found, key=lambda item: item[0])


def temporaries(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if ".tmp" in p.name]


def errors_in(said: str) -> list[str]:
    return [line for line in said.splitlines() if line.startswith("ERROR")]


# --- the guard itself -----------------------------------------------------------------------------


def test_a_symlinked_output_outside_the_tree_is_refused(tmp_path):
    tree, elsewhere = tmp_path / "tree", tmp_path / "elsewhere"
    tree.mkdir()
    elsewhere.mkdir()
    (tree / "_output").symlink_to(elsewhere)
    with pytest.raises(TreeError) as caught:
        check_inside(tree, tree / "_output" / "local" / "go")
    assert str(tree / "_output") in caught.value.message and "outside the tree" in caught.value.message
    assert "rm " in (caught.value.hint or "")


@pytest.mark.parametrize("link", ["local", "local/go", "ci", "release-tars", "local/go/src"])
def test_any_component_leaving_output_is_refused(tmp_path, link):
    tree, elsewhere = tmp_path / "tree", tmp_path / "elsewhere"
    (tree / "_output" / link).parent.mkdir(parents=True)
    elsewhere.mkdir()
    (tree / "_output" / link).symlink_to(elsewhere)
    with pytest.raises(TreeError) as caught:
        check_inside(tree, tree / "_output" / link / "x" / "y")
    assert caught.value.message.startswith(f"{tree / '_output' / link} is a symlink to {elsewhere}")


def test_dangling_links_out_are_refused_too(tmp_path):
    tree = tmp_path / "tree"
    (tree / "_output" / "ci").mkdir(parents=True)
    (tree / "_output" / "ci" / "report.json").symlink_to(tmp_path / "not-yet")
    with pytest.raises(TreeError):
        check_inside(tree, tree / "_output" / "ci" / "report.json")
    assert not (tmp_path / "not-yet").exists()


def test_links_that_stay_inside_are_fine(tmp_path):
    tree = tmp_path / "tree"
    (tree / "_output" / "local" / "bin" / "linux" / "amd64").mkdir(parents=True)
    (tree / "out").mkdir()
    (tree / "_output" / "bin").symlink_to("local/bin/linux/amd64")  # kbuild's own host link
    check_inside(tree, tree / "_output" / "bin" / "kubectl", tree / "_output" / "local" / "bin")
    check_inside(tree, tree / "elsewhere-in-tree" / "x", tmp_path / "not-under-output")  # not its business
    other = tmp_path / "tree2"
    other.mkdir()
    (other / "build-out").mkdir()
    (other / "_output").symlink_to(other / "build-out")  # _output may point inside the tree
    check_inside(other, other / "_output" / "local" / "go")


def test_write_file_leaves_no_temporary_file_when_the_rename_fails(tmp_path):
    tree = tmp_path / "tree"
    target = tree / "_output" / "ci" / "report.json"
    target.mkdir(parents=True)  # a directory where the file goes: the rename fails
    with pytest.raises(KBError) as caught:
        write_file(target, "{}", step="the ci report", root=tree, make_parent=True)
    assert str(target) in caught.value.message and "the ci report" in caught.value.message
    assert temporaries(tree) == []


def test_user_named_targets(tmp_path):
    with pytest.raises(UsageError) as caught:
        output_target(tmp_path / "no" / "dir" / "r.json", "--report", "report.json")
    assert "does not exist" in caught.value.message and caught.value.hint
    with pytest.raises(UsageError) as caught:
        output_target(tmp_path, "--report", "report.json")
    assert "is a directory" in caught.value.message and str(tmp_path / "report.json") in (caught.value.hint or "")
    assert not output_target(tmp_path / "r.json", "--report", "report.json")
    assert not (tmp_path / "no").exists()


# --- case 14: nothing written through a symlink out of _output -----------------------------------

TASKS = {
    "build": ["build", "--what", "cmd/kubectl"],
    "release": ["release", "--mode", "native", "--quick", "--skip-images"],
    "ci": ["ci", "--what", "cmd/kubectl", "--skip-images"],
    "workspace": ["workspace"],
}


@pytest.mark.go
@pytest.mark.parametrize("link", ["_output", "_output/local/go"])
@pytest.mark.parametrize("task", list(TASKS))
def test_symlink_out_of_output_is_refused_before_any_write(sample_repo, go_toolchain, tmp_path, link, task):
    tree = sample_repo("gopath")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("someone else's\n")
    before = listing(elsewhere)
    (tree / link).parent.mkdir(parents=True, exist_ok=True)
    (tree / link).symlink_to(elsewhere)
    result = inv(*TASKS[task], "--kube-root", str(tree))
    assert result.returncode != 0, result.stdout + result.stderr
    said = errors_in(result.stderr)
    assert len(said) == 1, result.stderr
    assert f"{tree / link} is a symlink to {elsewhere}" in said[0]
    assert "Traceback" not in result.stderr
    assert listing(elsewhere) == before  # nothing written through the link
    assert (tree / link).is_symlink()


# --- case 15: report paths ---------------------------------------------------------------------


@pytest.mark.parametrize(("task", "flag"), [("ci", "--report"), ("ci", "--junit"), ("release", "--report")])
def test_report_in_a_missing_directory_creates_nothing(sample_repo, tmp_path, task, flag):
    tree = sample_repo("gopath")
    missing = tmp_path / "nonexistent" / "dir"
    before = listing(tree)
    args = ["ci", "--what", "cmd/kubectl", "--skip-images"] if task == "ci" else ["release", "--skip-images"]
    result = inv(*args, "--kube-root", str(tree), flag, str(missing / "r.json"))
    assert result.returncode == 2, result.stderr
    assert errors_in(result.stderr) == [f"ERROR {flag} {missing / 'r.json'}: the directory {missing} does not exist"]
    assert not (tmp_path / "nonexistent").exists()
    assert listing(tree) == before  # refused before any step ran


def test_literal_nonexistent_directory(sample_repo):
    tree = sample_repo("gopath")
    target = Path("/nonexistent-kbuild-test/dir/r.json")
    result = inv("ci", "--kube-root", str(tree), "--skip-images", "--report", str(target))
    assert result.returncode == 2 and len(errors_in(result.stderr)) == 1
    assert not Path("/nonexistent-kbuild-test").exists()


@pytest.mark.parametrize(("task", "flag"), [("ci", "--report"), ("ci", "--junit"), ("release", "--report")])
def test_report_naming_a_directory_is_refused_with_a_tip(sample_repo, tmp_path, task, flag):
    tree = sample_repo("gopath")
    existing = tmp_path / "reports"
    existing.mkdir()
    args = ["ci", "--what", "cmd/kubectl", "--skip-images"] if task == "ci" else ["release", "--skip-images"]
    result = inv(*args, "--kube-root", str(tree), flag, str(existing))
    assert result.returncode == 2, result.stderr
    assert errors_in(result.stderr) == [f"ERROR {flag} {existing}: is a directory"]
    assert "TIP give a file name" in result.stderr
    assert temporaries(tmp_path, tree) == [] and list(existing.iterdir()) == []
    assert not (tree / "_output").exists()


# --- release, disk full (the release half of case 10) -----------------------------------------------


@pytest.fixture
def small_output(sample_repo):
    """A sample tree whose _output is a real 2 MB tmpfs: three 600 KB (incompressible) binaries where the
    packaging reads them, so the disk fills while it copies and tars them. Unmounted at the end."""
    require(os.geteuid() == 0, "root, to mount a tmpfs")
    tree = sample_repo("gopath")
    out = tree / "_output"
    out.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2000k", "kbuild-test-full", str(out)],
                             capture_output=True, text=True)
    require(mounted.returncode == 0, f"mount -t tmpfs: {mounted.stderr.strip()}")
    try:
        bins = out / "dockerized" / "bin" / "linux" / "amd64"
        bins.mkdir(parents=True)
        for name in ("kubectl", "kubelet", "kube-apiserver"):
            (bins / name).write_bytes(os.urandom(600 * 1024))
            (bins / name).chmod(0o755)
        yield tree
    finally:
        subprocess.run(["umount", "-l", str(out)], check=False)


def test_disk_full_while_packaging_names_the_file_and_step_and_leaves_no_tarball(small_output):
    from build.release import package as pkg
    from build.release.plan import VERSION_DEFS, ReleaseRequest, packaging_env
    from build.version import compute
    from workspace.tree import load_tree

    tree = load_tree(small_output)
    (tree.root / VERSION_DEFS).write_text("\n".join(compute(tree.root, os.environ).shell_lines()) + "\n")
    overlay = packaging_env(tree, ReleaseRequest(mode="native", quick=True), {"KUBE_BUILD_PULL_LATEST_IMAGES": "n"})
    lines: list[str] = []
    with pytest.raises(KBError) as caught:
        pkg.run_packaging(tree, pkg.packaging_argv(tree, False), dict(os.environ), overlay,
                          tree.root / "_output" / "logs" / "release.log", lines.append)
    message = caught.value.message
    assert message.startswith("no space left on device during packaging: cannot write "
                              f"{tree.root / '_output'}/"), message
    assert "(no path given)" not in message
    assert "removed the partial tarballs" in message
    assert "free some disk space" in (caught.value.hint or "")
    tars = tree.root / "_output" / "release-tars"
    assert sorted(p.name for p in tars.iterdir()) == []  # nothing half-written left
    assert temporaries(tree.root / "_output") == []


def test_disk_full_writing_checksums_and_report(small_output):
    from build.release.report import write_report, write_sums

    out = small_output / "_output"
    tars = out / "release-tars"
    tars.mkdir()
    (tars / "kubernetes.tar.gz").write_bytes(b"x" * 1024)
    filler = out / "filler"
    with pytest.raises(OSError), filler.open("wb") as fh:  # fill the file system to the last block
        while True:
            fh.write(os.urandom(64 * 1024))
    with pytest.raises(KBError) as caught:
        write_sums(tars)
    assert caught.value.message == f"cannot write the release checksums {tars / 'SHA256SUMS'}: No space left on device"
    with pytest.raises(KBError) as caught:
        write_report(tars / "release-report.json", {"x": "y" * 100000}, root=small_output)
    assert caught.value.message.startswith(f"cannot write the release report {tars / 'release-report.json'}: No space")
    assert sorted(p.name for p in tars.iterdir()) == ["kubernetes.tar.gz"]  # no temporary, no partial

"""Hostile trees and start-up faults (issue 19, cases 6, 11, 12, 13, 18): one line, never a hang.

Real FIFOs in sample trees, real non-UTF-8 file names committed with git, a real `go` that prints
bytes that are not UTF-8, real SIGINTs, a real read-only bind mount.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from build import uptodate
from common import treefiles
from common.config import env_number
from common.errors import TreeError, UsageError
from tests._support.faults import assert_one_line_failure, changed, read_only, run_inv, snapshot
from tests.conftest import REPO, git, require, sigint_default

KUBECTL = ("--what=cmd/kubectl",)
BOUND = 20.0  # seconds: each command on a hostile tree ends well within this, or the test fails


def timed_inv(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    try:
        proc = run_inv(*args, env=env, timeout=BOUND)
    except subprocess.TimeoutExpired:  # run() killed it: the hang this file is about
        pytest.fail(f"inv {' '.join(args)} still running after {BOUND:.0f}s")
    return proc, time.monotonic() - start


# --- 6. a FIFO in the tree ----------------------------------------------------------------------------

@pytest.mark.parametrize("rel", ["go.mod", "build/common.sh", "hack/lib/golang.sh"])
def test_a_fifo_in_the_tree_is_one_line_not_a_hang(sample_repo, rel):
    tree = sample_repo("modules")  # an era whose tree has a go.mod
    (tree / rel).unlink()
    os.mkfifo(tree / rel)
    before = snapshot(tree)
    for args in (["version"], ["clean"], ["images", "--list"], ["build", *KUBECTL]):
        proc, took = timed_inv(args[0], "--kube-root", str(tree), *args[1:])
        assert_one_line_failure(proc, f"{rel} in {tree} is not a regular file (a FIFO)")
        assert took < BOUND
        assert changed(before, snapshot(tree)) == []
    assert not (tree / "_output").exists()


@pytest.mark.go
def test_a_fifo_among_the_sources_is_refused_before_go_reads_it(sample_repo, go_toolchain):
    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo("gopath")
    os.mkfifo(tree / "cmd" / "kubectl" / "pipe.go")
    proc, _ = timed_inv("build", "--kube-root", str(tree), *KUBECTL)
    assert_one_line_failure(proc, f"cmd/kubectl/pipe.go in {tree} is not a regular file (a FIFO)")
    assert not list((tree / "_output").glob("local/bin/*/*/kubectl"))


def test_the_tree_reader_never_blocks_and_reads_regular_files_only(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(treefiles.NotRegularFile, match=r"^fifo in .* is not a regular file \(a FIFO\)$"):
        treefiles.read_text(fifo, root=tmp_path)
    assert time.monotonic() - start < 1
    (tmp_path / "zero").symlink_to("/dev/zero")  # a link to a device: refused on what it leads to
    with pytest.raises(treefiles.NotRegularFile, match=r"a character device"):
        treefiles.read_bytes(tmp_path / "zero", root=tmp_path)
    big = tmp_path / "big"
    with big.open("wb") as fh:
        fh.truncate(2 * 2**20)  # sparse: 2 MiB of nothing
    with pytest.raises(TreeError, match=r"^big in .* is 2\.0 MiB: more than kbuild reads"):
        treefiles.read_bytes(big, root=tmp_path, limit=2**20)
    assert treefiles.read_bytes(tmp_path / "missing") is None
    assert treefiles.read_bytes(tmp_path) is None  # a directory counts as absent, as before
    (tmp_path / "ok.sh").write_bytes(b"A=caf\xe9\n")
    assert treefiles.read_text(tmp_path / "ok.sh") == "A=caf\ufffd\n"
    (tmp_path / "link.sh").symlink_to("ok.sh")  # trees link files (Makefile -> build/root/Makefile)
    assert treefiles.read_bytes(tmp_path / "link.sh") == b"A=caf\xe9\n"
    treefiles.check_regular(tmp_path, ["ok.sh", "link.sh", "missing", "."])
    with pytest.raises(treefiles.NotRegularFile, match=r"^fifo in "):
        treefiles.check_regular(tmp_path, ["ok.sh", "fifo"])


# --- 11. invoke's start-up faults and an early Ctrl-C --------------------------------------------------

def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r})\n{code}"],
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=BOUND)


def test_the_hook_makes_invokes_config_faults_and_a_ctrl_c_one_line():
    # What invoke does first (Program.create_config), with kbuild's hook in place.
    env = {**os.environ, "HOME": "/dev/null"}
    proc = _python("from common.faults import install_hook; install_hook()\n"
                   "from invoke.config import Config; Config()", env)
    line = assert_one_line_failure(proc, "/dev/null/.invoke.yaml", "Not a directory")
    assert line.startswith("ERROR cannot open")
    proc = _python("from common.faults import install_hook; install_hook()\nraise KeyboardInterrupt", dict(os.environ))
    assert proc.returncode == 130 and proc.stderr.strip() == "ERROR interrupted", proc.stderr


@pytest.mark.xfail(strict=True, reason="`inv` reads ~/.invoke.yaml (Program.create_config) before it imports "
                                       "tasks.py, and skips only a missing file: nothing of kbuild's has run yet "
                                       "(the kbuild command installs the hook first: tests/test_kbuild_command.py)")
def test_home_not_a_directory_is_one_line():
    proc = run_inv("version", "--kube-root", "/nonexistent", env={**os.environ, "HOME": "/dev/null"}, timeout=BOUND)
    assert "Traceback" not in proc.stderr


def test_an_early_ctrl_c_never_shows_a_traceback_through_kbuild(sample_repo):
    tree = sample_repo("gopath")
    exe = shutil.which("inv") or "inv"
    for delay in (0.05, 0.08, 0.1, 0.15, 0.3, 0.6):
        child = subprocess.Popen([exe, "--search-root", str(REPO), "version", "--kube-root", str(tree)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 stdin=subprocess.DEVNULL, preexec_fn=sigint_default)
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        try:
            _, err = child.communicate(timeout=BOUND)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            pytest.fail(f"inv version still running {BOUND:.0f}s after a Ctrl-C at {delay}s")
        if child.returncode == 0:
            continue  # it had finished before the signal arrived
        # Before invoke imports tasks.py (interpreter start-up, `import invoke`), Python prints its own
        # traceback: no frame of kbuild's is in it. From tasks.py on, never a traceback.
        if "Traceback" in err:
            assert str(REPO) not in err, (delay, err)
        else:
            # -SIGINT: it came before Python set its handler up (nothing printed); 1: invoke's own exit.
            assert child.returncode in (-signal.SIGINT, 1, 130), (delay, child.returncode, err)
            assert all(line.startswith("ERROR interrupted") for line in err.strip().splitlines()), (delay, err)


# --- 12. file names and tool output that are not UTF-8 ----------------------------------------------

def test_the_fingerprint_takes_names_that_are_not_utf8(tmp_path):
    name = os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt")
    with open(name, "wb") as fh:
        fh.write(b"x")
    first = uptodate.tree_fingerprint(tmp_path)
    assert uptodate.tree_fingerprint(tmp_path) == first
    with open(name, "ab") as fh:
        fh.write(b"y")
    assert uptodate.tree_fingerprint(tmp_path) != first


@pytest.mark.go
def test_a_committed_name_that_is_not_utf8_builds_and_stays_up_to_date(sample_repo, go_toolchain):
    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo("gopath")
    with open(os.path.join(os.fsencode(tree), b"docs-caf\xe9\xff.txt"), "wb") as fh:
        fh.write(b"hostile name\n")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "a file name that is not UTF-8")
    proc, _ = timed_inv("build", "--kube-root", str(tree), *KUBECTL)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "1 built" in proc.stderr
    proc, _ = timed_inv("build", "--kube-root", str(tree), *KUBECTL)
    assert proc.returncode == 0 and "up to date: cmd/kubectl" in proc.stderr, proc.stderr


WRAPPER = """package main

import (
	"os"
	"syscall"
)

func main() {
	os.Stderr.Write([]byte("go wrapper says \\xff\\xfe\\xc3(\\n"))
	real := os.Getenv("KBUILD_TEST_REAL_GO")
	args := append([]string{real}, os.Args[1:]...)
	if err := syscall.Exec(real, args, os.Environ()); err != nil {
		os.Exit(127)
	}
}
"""


@pytest.mark.go
def test_a_go_that_prints_bytes_that_are_not_utf8(sample_repo, go_toolchain, tmp_path):
    require(go_toolchain is not None, "a Go toolchain")
    src, bindir = tmp_path / "wrapper", tmp_path / "bin"
    src.mkdir()
    bindir.mkdir()
    (src / "main.go").write_text(WRAPPER)
    (src / "go.mod").write_text("module wrapper\n\ngo 1.20\n")
    subprocess.run([str(go_toolchain.go), "build", "-o", str(bindir / "go"), "."], cwd=src, check=True,
                   capture_output=True, timeout=120, env={**os.environ, "GOFLAGS": "", "GOTOOLCHAIN": "local"})
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "KBUILD_TEST_REAL_GO": str(go_toolchain.go)}
    tree = sample_repo("gopath")
    proc, _ = timed_inv("build", "--kube-root", str(tree), *KUBECTL, env=env)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{bindir / 'go'}" in run_inv("build", "--kube-root", str(tree), *KUBECTL, "--dry-run", env=env).stdout
    assert "go wrapper says \ufffd\ufffd" in proc.stderr  # go's own output, shown as well as it can be
    proc, _ = timed_inv("doctor", "--kube-root", str(tree), env=env)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    from tests._support.doctor import doctor_rows

    assert f"at {bindir / 'go'}" in doctor_rows(proc.stdout)["go"]  # the detail is wrapped: its lines joined


# --- 13. numeric environment values -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "value"), [("KBUILD_MIN_DISK_GB", "ten"), ("KBUILD_MIN_MEMORY_GB", "4GB"),
                                             ("KBUILD_MIN_DISK_GB", "nan"), ("KBUILD_MIN_MEMORY_GB", "-1")])
def test_a_bad_number_in_the_environment_is_one_line(tmp_path, name, value):
    proc, _ = timed_inv("doctor", "--kube-root", str(tmp_path), env={**os.environ, name: value})
    line = assert_one_line_failure(proc, f"{name}={value!r}", "expected a number")
    assert proc.returncode == 2, line
    assert proc.stdout == ""  # refused before the table


@pytest.mark.go
def test_a_bad_progress_interval_is_one_line_before_anything_is_written(sample_repo, go_toolchain):
    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo("gopath")
    proc, _ = timed_inv("build", "--kube-root", str(tree), *KUBECTL, env={**os.environ,
                                                                        "KBUILD_PROGRESS_SECONDS": "soon"})
    assert_one_line_failure(proc, "KBUILD_PROGRESS_SECONDS='soon'", "seconds between progress lines")
    assert proc.returncode == 2
    assert not (tree / "_output").exists()


def test_env_number():
    assert env_number({}, "X", 5.0) == 5.0
    assert env_number({"X": " "}, "X", 5.0) == 5.0
    assert env_number({"X": "2.5"}, "X", 5.0) == 2.5
    assert env_number({"X": "7"}, "X", 5.0, whole=True) == 7
    for bad in ("ten", "4GB", "nan", "inf", "-1", "1e999", "0x10"):
        with pytest.raises(UsageError, match=r"^X='[^']*': expected a number 0 or more \(GiB\)$"):
            env_number({"X": bad}, "X", 5.0, what="GiB")
    with pytest.raises(UsageError, match=r"expected a whole number from 1 to 10"):
        env_number({"X": "2.5"}, "X", 5.0, minimum=1, maximum=10, whole=True)
    assert math.isfinite(env_number({"X": "1e300"}, "X", 5.0))


# --- 18. an up-to-date build in a read-only tree ------------------------------------------------------

@pytest.mark.go
def test_an_up_to_date_build_in_a_read_only_tree_succeeds(sample_repo, go_toolchain):
    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo("gopath")
    proc, _ = timed_inv("build", "--kube-root", str(tree), *KUBECTL)
    assert proc.returncode == 0, proc.stderr
    before = snapshot(tree)
    with read_only(tree, tree):  # the same tree, now a read-only mount at the same path (a CI cache, a volume)
        proc, _ = timed_inv("build", "--kube-root", str(tree), *KUBECTL)
        assert proc.returncode == 0, proc.stderr
        assert "up to date: cmd/kubectl for linux/amd64" in proc.stderr
        assert "(0 built, 1 up to date)" in proc.stderr
        assert "_output/local/bin/linux/amd64/kubectl" in proc.stdout
        for args in (["--what=cmd/kube-apiserver"], [*KUBECTL, "--force"]):  # these would write: refused
            proc, _ = timed_inv("build", "--kube-root", str(tree), *args)
            assert_one_line_failure(proc, "the tree is read-only", str(tree))
    assert changed(before, snapshot(tree)) == []

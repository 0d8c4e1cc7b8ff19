"""`inv build` end to end with the real Go toolchain and real git, on the sample tree in each era shape."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, inv, require

pytestmark = pytest.mark.go

CMDS = ["cmd/kube-apiserver", "cmd/kubectl", "cmd/kubelet"]


@pytest.fixture(autouse=True)
def _go(go_toolchain):
    require(go_toolchain is not None, "a Go toolchain")


def raw_version(binary: Path) -> dict[str, str]:
    out = subprocess.run([str(binary), "--version=raw"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.parametrize("era", ["gopath", "modules", "workspace"])
def test_each_era_builds_and_stamps_what_inv_version_computes(sample_repo, era):
    tree = sample_repo(era)
    want = json.loads(inv("version", "--kube-root", str(tree), "--json", check=True).stdout)
    assert want["gitVersion"] == "v1.20.2" and want["gitTreeState"] == "clean"
    args = ["build", "--kube-root", str(tree)] + [f"--what={w}" for w in CMDS]
    result = inv(*args, check=True)
    bindir = tree / "_output/local/bin/linux/amd64"
    for what in CMDS:
        binary = bindir / Path(what).name
        got = raw_version(binary)
        for key in ("gitVersion", "gitCommit", "gitTreeState", "buildDate", "major", "minor"):
            assert got[key] == want[key], (what, key)
        assert "sha256:" in result.stdout and Path(what).name in result.stdout
        plain = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
        assert plain.stdout.strip() == "Kubernetes v1.20.2"
    # No staging leftovers, and _output/bin points at the host platform.
    assert sorted(p.name for p in bindir.iterdir()) == sorted(Path(w).name for w in CMDS)
    assert (tree / "_output/bin").resolve() == bindir.resolve()
    # Building must not make the tree dirty (outputs and generated files are ignored).
    assert json.loads(inv("version", "--kube-root", str(tree), "--json", check=True).stdout) == want


def test_two_builds_are_byte_identical(sample_repo):
    tree = sample_repo("gopath")
    binary = tree / "_output/local/bin/linux/amd64/kube-apiserver"
    inv("build", "--kube-root", str(tree), "--what=cmd/kube-apiserver", check=True)
    first = binary.read_bytes()
    binary.unlink()
    second_run = inv("build", "--kube-root", str(tree), "--what=cmd/kube-apiserver", check=True)
    import hashlib
    digest = hashlib.sha256(first).hexdigest()
    assert hashlib.sha256(binary.read_bytes()).hexdigest() == digest
    assert f"sha256:{digest}" in second_run.stdout


def test_codegen_runs_only_when_missing(sample_repo):
    tree = sample_repo("gopath")
    gen = tree / "pkg/generated/openapi/zz_generated.openapi.go"
    assert not gen.exists()
    first = inv("build", "--kube-root", str(tree), "--what=cmd/kube-apiserver", check=True)
    assert "generating pkg/generated/openapi/zz_generated.openapi.go" in first.stderr and gen.exists()
    again = inv("build", "--kube-root", str(tree), "--what=cmd/kube-apiserver", check=True)
    assert "generating" not in again.stderr
    out = subprocess.run([str(tree / "_output/bin/kube-apiserver"), "--openapi-count"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().isdigit() and int(out.stdout) > 0


def test_kubectl_alone_does_not_trigger_codegen(sample_repo):
    tree = sample_repo("gopath")
    result = inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", check=True)
    assert "generating" not in result.stderr
    assert not (tree / "pkg/generated/openapi/zz_generated.openapi.go").exists()


def test_dirty_tree_and_version_file(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    (tree / "untracked.txt").write_text("x")
    inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", check=True)
    got = raw_version(tree / "_output/bin/kubectl")
    assert got["gitTreeState"] == "dirty" and got["gitVersion"] == "v1.20.2-dirty"
    vfile = tmp_path / "version.env"
    vfile.write_text("KUBE_GIT_COMMIT='0123456789abcdef0123456789abcdef01234567'\nKUBE_GIT_TREE_STATE='clean'\n"
                     "KUBE_GIT_VERSION='v9.8.7-rc.1'\nKUBE_GIT_MAJOR='9'\nKUBE_GIT_MINOR='8+'\n")
    env = {**os.environ, "KUBE_GIT_VERSION_FILE": str(vfile), "SOURCE_DATE_EPOCH": "86400"}
    inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", env=env, check=True)
    got = raw_version(tree / "_output/bin/kubectl")
    assert (got["gitVersion"], got["major"], got["minor"]) == ("v9.8.7-rc.1", "9", "8+")
    assert got["gitCommit"] == "0123456789abcdef0123456789abcdef01234567"
    assert got["buildDate"] == "1970-01-02T00:00:00Z"


def test_cross_compile_static_binary(sample_repo):
    tree = sample_repo("gopath")
    inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", "--platform=linux/arm64", check=True)
    binary = tree / "_output/local/bin/linux/arm64/kubectl"
    header = binary.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    assert not (tree / "_output/bin").exists()  # only the host platform gets the link


def test_cgo_cross_build_without_compiler_is_a_clear_error(sample_repo):
    tree = sample_repo("gopath")
    env = {**os.environ, "KUBE_LINUX_ARM64_CC": "no-such-cross-gcc"}
    result = inv("build", "--kube-root", str(tree), "--what=cmd/kubelet", "--platform=linux/arm64", env=env)
    assert result.returncode != 0
    assert "no-such-cross-gcc" in result.stderr and "Traceback" not in result.stderr
    assert not (tree / "_output/local/bin/linux/arm64").exists()


def test_debug_build_keeps_symbols(sample_repo):
    tree = sample_repo("gopath")
    inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", check=True)
    stripped = (tree / "_output/bin/kubectl").stat().st_size
    inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", "--debug", check=True)
    debug = (tree / "_output/bin/kubectl").stat().st_size
    assert debug > stripped


def test_compile_error_fails_with_go_output_and_keeps_old_binary(sample_repo):
    tree = sample_repo("gopath")
    inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", check=True)
    binary = tree / "_output/bin/kubectl"
    before = binary.read_bytes()
    src = tree / "cmd/kubectl/kubectl.go"
    src.write_text(src.read_text() + "\nfunc broken() { undefinedThing() }\n")
    result = inv("build", "--kube-root", str(tree), "--what=cmd/kubectl")
    assert result.returncode != 0
    assert "undefinedThing" in result.stderr and "ERROR" in result.stderr
    assert binary.read_bytes() == before
    assert not any(p.name.startswith(".partial") for p in binary.resolve().parent.iterdir())


@pytest.mark.parametrize("args,needle", [
    (["--what=../x"], "`..`"),
    (["--what=/etc"], "relative"),
    (["--what=cmd/kube-apiservr"], "did you mean: cmd/kube-apiserver"),
    (["--what=cmd/kubectl", "--platform=linux"], "os/arch"),
    (["--what=cmd/kubectl", "--platform=plan9/amd64"], "not one this tree supports"),
    (["--group=nope"], "expected one of"),
])
def test_bad_build_input(sample_repo, args, needle):
    tree = sample_repo("gopath")
    result = inv("build", "--kube-root", str(tree), *args)
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tree / "_output").exists()  # nothing changed


def test_not_a_tree(tmp_path):
    (tmp_path / "somedir").mkdir()
    result = inv("build", "--kube-root", str(tmp_path / "somedir"), "--what=cmd/kubectl")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "not a Kubernetes tree" in errors[0]


def test_dry_run_prints_commands_and_builds_nothing(sample_repo):
    tree = sample_repo("gopath")
    result = inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", "--what=cmd/kubelet", "--dry-run",
                 check=True)
    lines = [line for line in result.stdout.splitlines() if line.startswith("(cd ")]
    assert len(lines) == 2 and "CGO_ENABLED=0" in lines[0] and "CGO_ENABLED=0" not in lines[1]
    assert not (tree / "_output/local/bin").exists()


def test_demo_runs(tmp_path):
    result = inv("demo", check=True)
    assert "Kubernetes v1.20.2" in result.stdout
    # A bad --what is refused before the previous demo is touched.
    demo = REPO / "_output/demo/gopath"
    before = sorted(p.name for p in (demo / "_output/local/bin/linux/amd64").iterdir())
    bad = inv("demo", "--what", "cmd/nope")
    assert bad.returncode == 2 and "cmd/nope" in bad.stderr and "Traceback" not in bad.stderr
    assert sorted(p.name for p in (demo / "_output/local/bin/linux/amd64").iterdir()) == before
    assert not [p for p in (REPO / "_output/demo").iterdir() if p.name.startswith(".")]


def test_up_to_date_skip_and_what_invalidates_it(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    args = ("build", "--kube-root", str(tree), "--what=cmd/kubectl")
    binary = tree / "_output/local/bin/linux/amd64/kubectl"
    first = inv(*args, check=True)
    assert "1 built" in first.stderr
    second = inv(*args, check=True)
    assert "up to date: cmd/kubectl" in second.stderr and "0 built" in second.stderr
    assert second.stdout == first.stdout  # same line, same sha256
    # A source change rebuilds (and the new stamp says dirty).
    (tree / "cmd/kubectl/extra.go").write_text("package main\n\nvar extra = 1\n")
    third = inv(*args, check=True)
    assert "1 built" in third.stderr
    assert raw_version(binary)["gitTreeState"] == "dirty"
    # A different stamp (SOURCE_DATE_EPOCH) rebuilds.
    fourth = inv(*args, env={**os.environ, "SOURCE_DATE_EPOCH": "0"}, check=True)
    assert "1 built" in fourth.stderr and raw_version(binary)["buildDate"] == "1970-01-01T00:00:00Z"
    # A binary changed behind our back is rebuilt, and --force always rebuilds.
    inv(*args, check=True)
    binary.write_bytes(b"not a binary")
    assert "1 built" in inv(*args, check=True).stderr
    assert "1 built" in inv(*args, "--force", check=True).stderr


def test_no_what_builds_what_make_builds_and_groups_pick_a_list(sample_repo):
    tree = sample_repo("gopath")
    result = inv("build", "--kube-root", str(tree), check=True)
    assert "KUBE_ALL_TARGETS (3 targets)" in result.stderr
    bindir = tree / "_output/local/bin/linux/amd64"
    assert sorted(p.name for p in bindir.iterdir()) == ["kube-apiserver", "kubectl", "kubelet"]
    dry = inv("build", "--kube-root", str(tree), "--group", "client", "--dry-run", check=True)
    assert dry.stdout.count("go build") == 1 and "k8s.io/kubernetes/cmd/kubectl" in dry.stdout
    assert "cmd/kubelet" not in dry.stdout
    bad = inv("build", "--kube-root", str(tree), "--group", "servers")
    assert bad.returncode == 2 and "expected one of server, node, client, test, test-server" in bad.stderr
    golang = tree / "hack/lib/golang.sh"
    golang.write_text(golang.read_text().replace("KUBE_ALL_TARGETS=(", "KUBE_OTHER_TARGETS=("))
    none = inv("build", "--kube-root", str(tree))
    assert none.returncode == 2 and "no KUBE_ALL_TARGETS" in none.stderr and "--what=cmd/NAME" in none.stderr


def test_generated_files_forwarding_keeps_the_main_makefiles_constants(sample_repo):
    """A gen_* target the main Makefile doesn't declare is forwarded as v1.20's Makefile forwards it:
    META_DIR and friends come from the main Makefile's .EXPORT_ALL_VARIABLES. Run directly, the
    generated-files Makefile saw META_DIR empty and wrote $(META_DIR)/go-pkgdeps.mk to /."""
    from build import codegen
    from workspace.tree import load_tree

    tree = sample_repo("gopath")
    marker = f"kbuild-test-meta-{os.getpid()}.mk"
    (tree / "Makefile").write_text(".EXPORT_ALL_VARIABLES:\nOUT_DIR ?= _output\nMETA_DIR := .make\n"
                                   "all:\n\t@echo all\n")
    (tree / "Makefile.generated_files").write_text(
        "ifeq ($(CALLED_FROM_MAIN_MAKEFILE),)\n$(error called directly)\nendif\n"
        f"gen_bindata:\n\tmkdir -p $(META_DIR)\n\techo x > $(META_DIR)/{marker}\n")
    argv = codegen.make_command(load_tree(tree), "gen_bindata")
    subprocess.run(argv, cwd=tree, check=True, capture_output=True, text=True, timeout=60)
    assert (tree / ".make" / marker).read_text() == "x\n"
    assert not Path("/", marker).exists()

"""The `kbuild` command (issue 20, first part): on PATH after `pip install -e .`, from any directory; the
tree found as git finds a repository; make's WHAT and `--what "a b"`; KUBE_VERBOSE never rebuilds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, require

BOUND = 120


def kbuild(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("kbuild")
    require(exe is not None, "the kbuild command (pip install -e . in the checkout; .ci/run does it)")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=BOUND,
                          env=env if env is not None else dict(os.environ), stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def installed() -> None:
    """The kbuild on PATH runs this checkout (not another one's)."""
    got = subprocess.run([sys.executable, "-c", "import kbuild; print(kbuild.__file__)"], cwd="/",
                         capture_output=True, text=True, timeout=BOUND)
    require(got.returncode == 0 and shutil.which("kbuild") is not None, "pip install -e . (the kbuild command)")
    assert Path(got.stdout.strip()).parent.parent == REPO, f"kbuild is installed from {got.stdout}: pip install -e ."


def _stamp(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("KUBE_GIT_VERSION="))


@pytest.mark.usefixtures("installed")
def test_kbuild_works_from_inside_the_tree_and_anywhere_with_a_root(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    deep = tree / "pkg"
    assert _stamp(kbuild("version", cwd=deep).stdout) == "KUBE_GIT_VERSION='v1.20.2'"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _stamp(kbuild("version", "--kube-root", str(tree), cwd=elsewhere).stdout) == "KUBE_GIT_VERSION='v1.20.2'"
    lost = kbuild("version", cwd=elsewhere)
    assert lost.returncode != 0 and "Traceback" not in lost.stderr
    assert lost.stderr.startswith(f"ERROR no Kubernetes tree at {elsewhere}/kubernetes")
    assert "inside a Kubernetes tree" in lost.stderr
    assert "Subcommands:" in kbuild("--list", cwd=elsewhere).stdout


@pytest.mark.usefixtures("installed")
def test_kube_root_in_a_config_file_is_relative_to_that_file(sample_repo, tmp_path):
    tree = sample_repo("gopath")
    config = tmp_path / "conf" / "kbuild.yaml"
    config.parent.mkdir()
    config.write_text(f"kube:\n  root: {os.path.relpath(tree, config.parent)}\n")
    got = kbuild("-f", str(config), "version", cwd=Path("/"))
    assert got.returncode == 0, got.stderr
    assert _stamp(got.stdout) == "KUBE_GIT_VERSION='v1.20.2'"


def test_only_the_launcher_is_installed_the_checkouts_packages_stay_off_the_path(tmp_path):
    """`python -m build` (PyPI's) must keep working: nothing named build, images, common… is importable
    outside the checkout because of kbuild's install."""
    probe = ("import importlib.util as u, json\n"
             "print(json.dumps({m: (u.find_spec(m).origin if u.find_spec(m) else None) for m in "
             "('build', 'images', 'common', 'workspace', 'cache', 'registry', 'engines', 'ops', 'kit', 'tasks')}))")
    got = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=BOUND)
    import json

    found = json.loads(got.stdout)
    assert not [m for m, origin in found.items() if origin and str(REPO) in origin], found


@pytest.mark.usefixtures("installed")
def test_home_not_a_directory_is_one_line_through_kbuild(tmp_path):
    """invoke reads ~/.invoke.yaml before tasks.py is imported; the kbuild command installs the fault hook
    first, so HOME=/dev/null is one line, not invoke's traceback."""
    got = kbuild("version", "--kube-root", "/nonexistent", cwd=tmp_path, env={**os.environ, "HOME": "/dev/null"})
    assert got.returncode != 0 and "Traceback" not in got.stderr
    assert got.stderr.startswith("ERROR cannot open /dev/null/.invoke.yaml: Not a directory"), got.stderr


@pytest.mark.usefixtures("installed")
def test_a_reader_that_leaves_is_not_an_error(tmp_path):
    """`kbuild --list | head -1`: a quiet stop, as `git log | head`."""
    exe = shutil.which("kbuild")
    got = subprocess.run(f"{exe} --list | head -1; echo status=${{PIPESTATUS[0]}}", shell=True, executable="/bin/bash",
                         cwd=tmp_path, capture_output=True, text=True, timeout=BOUND)
    # 0 when the listing fit in the pipe before head left, 141 when a write found it gone: never an error.
    assert got.stderr == "" and got.stdout.splitlines()[-1] in ("status=0", "status=141"), (got.stdout, got.stderr)


@pytest.mark.go
@pytest.mark.usefixtures("installed")
def test_makes_variables_as_make_takes_them(sample_repo, go_toolchain):
    """WHAT="cmd/kubectl" builds only kubectl; `--what "a b"` both; KUBE_VERBOSE alone rebuilds nothing."""
    tree = sample_repo("gopath")
    bins = tree / "_output/local/bin/linux/amd64"
    one = kbuild("build", cwd=tree, env={**os.environ, "WHAT": "cmd/kubectl"})
    assert one.returncode == 0, one.stderr
    assert sorted(p.name for p in bins.iterdir()) == ["kubectl"]
    assert "WHAT from the environment: cmd/kubectl" in one.stderr and "kubectl: first build" in one.stderr
    two = kbuild("build", "--what", "cmd/kubectl cmd/kubelet", cwd=tree)
    assert two.returncode == 0, two.stderr
    assert sorted(p.name for p in bins.iterdir()) == ["kubectl", "kubelet"]
    assert "(1 built, 1 up to date)" in two.stderr
    verbose = kbuild("build", "--what", "cmd/kubectl cmd/kubelet", cwd=tree, env={**os.environ, "KUBE_VERBOSE": "6"})
    assert "(0 built, 2 up to date)" in verbose.stderr, verbose.stderr
    # GOFLAGS does change the build.
    flags = kbuild("build", "--what", "cmd/kubectl", cwd=tree, env={**os.environ, "GOFLAGS": "-tags=kbuildtest"})
    assert "(1 built, 0 up to date)" in flags.stderr, flags.stderr
    assert "kubectl: GOFLAGS changed" in flags.stderr  # one line says why it was built again
    (tree / "cmd/kubectl/extra.go").write_text("package main\n")
    changed = kbuild("build", "--what", "cmd/kubectl", cwd=tree, env={**os.environ, "GOFLAGS": "-tags=kbuildtest"})
    why = next(line for line in changed.stderr.splitlines() if line.startswith("kubectl: "))
    assert why.endswith("tree files changed") and "-ldflags" in why  # the stamp says dirty now: the flags too


def test_why_a_binary_is_built_again():
    from build.uptodate import key_parts, why_rebuilt

    argv = ["go", "build", "-ldflags", "-s -w -X v=1", "-tags", "a", "k8s.io/kubernetes/cmd/kubectl"]
    old = key_parts("go1.27.3", argv, {"GOFLAGS": "", "PATH": "/bin", "KUBE_VERBOSE": "1"}, "tree1")
    assert why_rebuilt(None, old) == "first build"
    assert why_rebuilt(old, key_parts("go1.27.3", argv, {"GOFLAGS": "", "PATH": "/bin", "KUBE_VERBOSE": "6"},
                                      "tree1")) == "its build key changed"  # KUBE_VERBOSE is not in the key
    new_ld = [*argv[:3], "-s -w -X v=2", *argv[4:]]
    assert why_rebuilt(old, key_parts("go1.27.3", new_ld, {"GOFLAGS": "", "PATH": "/bin"}, "tree1")) == \
        "go flags changed (-ldflags)"
    assert why_rebuilt(old, key_parts("go1.27.4", [*argv, "k8s.io/kubernetes/cmd/kubelet"],
                                      {"GOFLAGS": "-mod=vendor", "PATH": "/bin"}, "tree2")) == \
        ("Go changed (go1.27.3 → go1.27.4); GOFLAGS changed; the packages built in the same go command changed; "
         "tree files changed")


def test_requested_whats_split_as_make_does():
    from build.targets import requested_whats

    assert requested_whats(["cmd/a cmd/b", "cmd/c"], {}) == ["cmd/a", "cmd/b", "cmd/c"]
    assert requested_whats([], {"WHAT": " cmd/kubectl  cmd/kubelet "}) == ["cmd/kubectl", "cmd/kubelet"]
    assert requested_whats(["cmd/x"], {"WHAT": "cmd/kubectl"}) == ["cmd/x"]  # the flag wins
    assert requested_whats([], {"WHAT": ""}) == [] and requested_whats([], {}) == []
    assert requested_whats(["cmd/a", "cmd/a cmd/b"], {}) == ["cmd/a", "cmd/b"]


def test_the_tree_is_found_as_git_finds_a_repository(tmp_path):
    from workspace.sample import materialize
    from workspace.tree import resolve_root

    tree = materialize(tmp_path / "k8s", "gopath")
    inside = tree / "staging" / "src"
    config_dir = tmp_path / "etc"
    cases = [
        (("flag", {"KUBE_ROOT": "/env"}, "cfg"), tmp_path / "flag"),
        ((None, {"KUBE_ROOT": "/env"}, "cfg"), Path("/env")),
        ((None, {}, "cfg"), config_dir / "cfg"),
        ((None, {}, "/abs/cfg"), Path("/abs/cfg")),
        ((None, {}, None), tree),
    ]
    for (flag, environ, config_root), want in cases:
        assert resolve_root(flag, environ, config_root, cwd=tmp_path if flag else inside,
                            config_dir=config_dir) == want, (flag, environ, config_root)
    assert resolve_root(None, {}, None, cwd=tmp_path) == tmp_path / "kubernetes"


@pytest.mark.go
@pytest.mark.usefixtures("installed")
def test_json_on_build_and_doctor_is_the_only_thing_on_stdout(sample_repo, go_toolchain):
    import json

    tree = sample_repo("gopath")
    got = kbuild("build", "--what", "cmd/kubectl", "--json", cwd=tree)
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)
    (binary,) = data["binaries"]
    assert binary["platform"] == "linux/amd64" and binary["built"] is True and data["version"] == "v1.20.2"
    assert Path(binary["path"]).stat().st_size == binary["size"]
    again = json.loads(kbuild("build", "--what", "cmd/kubectl", "--json", cwd=tree).stdout)
    assert again["binaries"][0]["built"] is False and again["binaries"][0]["sha256"] == binary["sha256"]
    doctor = kbuild("doctor", "--json", cwd=tree)
    report = json.loads(doctor.stdout)
    assert report["tasks"] == ["build"] and report["ready"] is (doctor.returncode == 0)
    assert {"tree", "go"} <= {c["name"] for c in report["checks"]}
    assert all(set(c) == {"name", "status", "detail", "fix", "needed_by"} for c in report["checks"])


@pytest.mark.go
def test_every_build_leaves_a_timeline_in_chrome_trace_format(sample_repo, go_toolchain):
    """`_output/kbuild/trace.json`: complete events (ph X) for the run, code generation and each go
    command; a failed build leaves the last good run's timeline as it was."""
    import json

    from tests.conftest import inv

    tree = sample_repo("gopath")
    inv("build", "--kube-root", str(tree), "--what", "cmd/kubectl cmd/kube-apiserver", check=True)
    doc = json.loads((tree / "_output/kbuild/trace.json").read_text())
    events = doc["traceEvents"]
    assert doc["displayTimeUnit"] == "ms" and all(e["ph"] == "X" for e in events)
    assert all({"name", "cat", "ts", "dur", "pid", "tid"} <= set(e) for e in events)
    by_cat = {e["cat"]: e for e in events}
    run, go = by_cat["run"], by_cat["go"]
    assert run["name"] == "kbuild build" and "codegen" in by_cat
    assert go["args"]["packages"] == "cmd/kubectl cmd/kube-apiserver" and go["args"]["outcome"] == "ok"
    assert run["ts"] <= go["ts"] and go["ts"] + go["dur"] <= run["ts"] + run["dur"]
    (tree / "cmd/kubectl/broken.go").write_text("package main\n\nfunc broken() { undefined() }\n")
    good = (tree / "_output/kbuild/trace.json").read_bytes()
    failed = inv("build", "--kube-root", str(tree), "--what", "cmd/kubectl")
    assert failed.returncode != 0 and (tree / "_output/kbuild/trace.json").read_bytes() == good

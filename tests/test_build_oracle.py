"""The tree's own build_binaries is the oracle for the go command line.

Bash sources the tree's hack/lib/init.sh and runs ``kube::golang::build_binaries`` with a
stub ``go`` first on PATH: ``go install|build|test`` only record their argv, environment and
directory; every other go command (``go env``, ``go version``, ``go list``) is the real, local Go.
What kbuild plans for the same targets and environment must be the same command, flag by
flag, with one spelled-out difference: kbuild runs ``go build -o <staging>/`` where the tree
runs ``go install`` into its GOPATH and copies the binaries out (same compile, same link).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from build import version as kversion
from build.plan import BuildOptions, BuildRequest, plan_build
from build.targets import resolve_targets
from common.proc import merged_env
from tests.conftest import inv, require
from workspace.layout import plan_layout
from workspace.sample import materialize
from workspace.source import init_repo
from workspace.tree import KubeTree

pytestmark = pytest.mark.go

HOST = "linux/amd64"
EPOCH = "1767225600"  # fixed buildDate on both sides
ENV_KEYS = ("GOOS", "GOARCH", "CGO_ENABLED", "CC", "GOTOOLCHAIN", "GOPROXY", "GOFLAGS", "GOWORK", "GO111MODULE")
NEWEST_TARGETS = ["cmd/kube-apiserver", "cmd/kubelet", "cmd/kubectl",
                  "staging/src/k8s.io/component-base/logs/kube-log-runner"]

STUB_GO = """#!/usr/bin/env bash
case "$1" in
  install|build|test)
    exec "$ORACLE_PYTHON" - "$@" <<'PY'
import json, os, sys
keys = os.environ["ORACLE_KEYS"].split()
rec = {"argv": ["go", *sys.argv[1:]], "cwd": os.environ.get("PWD", os.getcwd()),
       "env": {k: os.environ.get(k) for k in keys}}
with open(os.environ["ORACLE_LOG"], "a") as fh:
    fh.write(json.dumps(rec) + "\\n")
PY
    ;;
  *) GOTOOLCHAIN=local exec "$ORACLE_REAL_GO" "$@" ;;  # queries: never a toolchain download
esac
"""

RUN = """
set -o errexit -o nounset -o pipefail
source hack/lib/init.sh
kube::golang::setup_env
kube::golang::build_binaries "$@"
"""


def base_environ(extra: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("KUBE_", "GO")) and k not in ("DBG", "FORCE_HOST_GO", "SOURCE_DATE_EPOCH")}
    return {**keep, "GOCACHE": os.environ["GOCACHE"], "SOURCE_DATE_EPOCH": EPOCH, **extra}


def oracle(root: Path, targets: list[str], environ: dict[str, str], go: Path, tmp: Path) -> list[dict]:
    """The go commands the tree's own build_binaries runs, as the stub go recorded them."""
    stub_dir = tmp / "stub-bin"
    stub_dir.mkdir(exist_ok=True)
    (stub_dir / "go").write_text(STUB_GO)
    (stub_dir / "go").chmod(0o755)
    log = tmp / "oracle.jsonl"
    log.unlink(missing_ok=True)
    env = {**environ, "PATH": f"{stub_dir}:{go.parent}:{environ['PATH']}", "ORACLE_LOG": str(log),
           "ORACLE_REAL_GO": str(go), "ORACLE_PYTHON": sys.executable, "ORACLE_KEYS": " ".join(ENV_KEYS),
           "OSTYPE": "linux-gnu"}
    out = subprocess.run(["bash", "-c", RUN, "oracle", *targets], cwd=root, env=env, capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line) for line in log.read_text().splitlines()]


def kbuild(tree: KubeTree, targets: list[str], environ: dict[str, str], go_version: str):
    """kbuild's plan for the same build, in the oracle's record shape (go install, no -o)."""
    layout = plan_layout(tree, environ)
    stamp = kversion.compute(tree.root, environ)
    plan = plan_build(BuildRequest(tree, layout, stamp, resolve_targets(tree, targets), BuildOptions(), environ, HOST,
                                   go_version=go_version))
    records = []
    for cmd in plan.commands:
        argv = list(cmd.argv)
        i = argv.index("-o")
        del argv[i:i + 2]
        argv[1] = "install"
        env = merged_env(environ, cmd.env)
        records.append({"argv": argv, "cwd": str(cmd.cwd), "env": {k: env.get(k) for k in ENV_KEYS}})
    return records, plan


def go_view(records: list[dict]) -> list[dict]:
    """The records as compared: exactly, spaces inside flag values included (go records -gcflags, and
    -ldflags without -trimpath, verbatim in the binary: a space more is another binary)."""
    return records


@pytest.fixture(scope="module")
def newest(tmp_path_factory: pytest.TempPathFactory) -> KubeTree:
    root = materialize(tmp_path_factory.mktemp("newest") / "tree", "workspace", "newest")
    init_repo(root, "v1.38.0-alpha.1")
    return KubeTree(root.resolve())


NEWEST_CASES = [
    {},
    {"DBG": "1"},
    {"GOFLAGS": "-tags=extra,more"},
    {"GOFLAGS": "-v -tags=late"},
    {"GOFLAGS": "-tags=late -v"},  # the tree's sed keeps "late " (with the space): so must kbuild
    {"GOLDFLAGS": "-X main.extra=1", "GOGCFLAGS": "-B"},
    {"KUBE_CGO_OVERRIDES": "kubelet"},
    {"KUBE_CGO_OVERRIDES": "kubelet", "KUBE_BUILD_PLATFORMS": "linux/arm64"},
    {"KUBE_BUILD_PLATFORMS": "linux/arm64 linux/amd64"},
]


@pytest.mark.parametrize("extra", NEWEST_CASES, ids=lambda e: " ".join(f"{k}={v}" for k, v in e.items()) or "plain")
def test_newest_go_command_equals_build_binaries(newest, go_toolchain, tmp_path, extra):
    require(go_toolchain is not None, "a Go toolchain")
    environ = base_environ({"FORCE_HOST_GO": "1", **extra})
    want = oracle(newest.root, NEWEST_TARGETS, environ, go_toolchain.go, tmp_path)
    got, _ = kbuild(newest, NEWEST_TARGETS, environ, go_toolchain.version)
    assert go_view(got) == go_view(want)
    # The flags the newest trees add are there, in the tree's spelling.
    static = got[0]["argv"]
    assert static[:3] == ["go", "install", "-installsuffix=static"]
    tags = next(a for a in static if a.startswith("-tags="))
    assert "kustomize_disable_go_plugin_support" in tags
    assert ("grpcnotrace" in tags) is (extra.get("DBG") != "1")
    assert ("-trimpath" in static) is (extra.get("DBG") != "1")
    assert not any(a.startswith("-asmflags") for a in static)


def test_newest_toolchain_is_local_where_the_tree_would_download(newest, go_toolchain, tmp_path):
    """Without FORCE_HOST_GO the tree asks for .go-version's Go (a download); kbuild builds with the local Go
    and says so in one line. With GOTOOLCHAIN set both pass it on."""
    require(go_toolchain is not None, "a Go toolchain")
    environ = base_environ({})
    want = oracle(newest.root, ["cmd/kubectl"], environ, go_toolchain.go, tmp_path)
    got, plan = kbuild(newest, ["cmd/kubectl"], environ, go_toolchain.version)
    pinned = "go" + (newest.root / ".go-version").read_text().strip()
    assert pinned != go_toolchain.version  # the variant pins another Go on purpose
    assert [r["env"]["GOTOOLCHAIN"] for r in want] == [pinned]
    assert [r["env"]["GOTOOLCHAIN"] for r in got] == ["local"]
    assert [n for n in plan.notes if ".go-version" in n] == [
        f".go-version pins {pinned}; building with the local {go_toolchain.version} (GOTOOLCHAIN=local, "
        "no download) - set GOTOOLCHAIN to choose another"]
    for rec in (*want, *got):
        rec["env"]["GOTOOLCHAIN"] = None
    assert go_view(got) == go_view(want)

    chosen = base_environ({"GOTOOLCHAIN": go_toolchain.version})
    want = oracle(newest.root, ["cmd/kubectl"], chosen, go_toolchain.go, tmp_path)
    got, plan = kbuild(newest, ["cmd/kubectl"], chosen, go_toolchain.version)
    assert go_view(got) == go_view(want) and not plan.notes


@pytest.fixture(scope="module")
def eras(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KubeTree]:
    """The sample in each era's shape, each with its era's spelling of build_binaries."""
    base = tmp_path_factory.mktemp("eras")
    out = {}
    for era in ("gopath", "modules", "workspace"):
        root = materialize(base / era, era)
        init_repo(root, "v1.20.2")
        out[era] = KubeTree(root.resolve())
    return out


SAMPLE_TARGETS = ["cmd/kube-apiserver", "cmd/kubelet", "cmd/kubectl"]
SAMPLE_CASES = [
    {},
    {"DBG": "1"},
    {"GOFLAGS": "-v -tags=extra"},
    {"GOFLAGS": "-v"},  # v1.20's sed (no -n) passes all of GOFLAGS on as a tag: so must kbuild
    {"GOLDFLAGS": "-X main.extra=1", "GOGCFLAGS": "-B"},
    {"KUBE_CGO_OVERRIDES": "kube-apiserver"},
    {"KUBE_STATIC_OVERRIDES": "kubelet"},
    {"KUBE_BUILD_PLATFORMS": "linux/arm64 linux/amd64"},
]


@pytest.mark.parametrize("era", ["gopath", "modules", "workspace"])
@pytest.mark.parametrize("extra", SAMPLE_CASES, ids=lambda e: " ".join(f"{k}={v}" for k, v in e.items()) or "plain")
def test_sample_eras_go_command_equals_build_binaries(eras, go_toolchain, tmp_path, era, extra):
    """Each era shape's own build_binaries (v1.20, v1.2x and v1.30 spellings) against kbuild's plan.
    These trees know nothing of GOTOOLCHAIN: with the user's GOTOOLCHAIN both sides pass it on."""
    require(go_toolchain is not None, "a Go toolchain")
    tree = eras[era]
    environ = base_environ({"GOTOOLCHAIN": "local", **extra})
    want = oracle(tree.root, SAMPLE_TARGETS, environ, go_toolchain.go, tmp_path)
    got, _ = kbuild(tree, SAMPLE_TARGETS, environ, go_toolchain.version)
    assert go_view(got) == go_view(want)


@pytest.mark.parametrize("era", ["gopath", "modules", "workspace", "newest"])
def test_binary_is_the_one_make_builds(eras, newest, go_toolchain, tmp_path, era):
    """Real Go on both sides: the tree's own `make all` (go install + place_bins) and `inv build` write
    byte-identical binaries, and each prints the version `inv version` computes."""
    require(go_toolchain is not None, "a Go toolchain")
    tree = newest if era == "newest" else eras[era]
    whats = ["cmd/kube-apiserver", "cmd/kubelet"]
    if era == "newest":
        whats.append("staging/src/k8s.io/component-base/logs/kube-log-runner")
    environ = base_environ({"FORCE_HOST_GO": "1", "GOTOOLCHAIN": "local",
                            "PATH": f"{go_toolchain.bin_dir}:{os.environ['PATH']}"})
    made = subprocess.run(["make", "all", f"WHAT={' '.join(whats)}"], cwd=tree.root, env=environ,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
    assert made.returncode == 0, made.stderr[-3000:]
    bindir = tree.root / "_output/local/bin/linux/amd64"
    by_make = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in bindir.iterdir() if p.is_file()}
    for p in bindir.iterdir():
        p.unlink()
    inv("build", "--kube-root", str(tree.root), *[f"--what={w}" for w in whats], env=environ, check=True)
    by_kbuild = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in bindir.iterdir() if p.is_file()}
    assert by_kbuild == by_make and set(by_make) == {Path(w).name for w in whats}
    want = json.loads(inv("version", "--kube-root", str(tree.root), "--json", env=environ, check=True).stdout)
    for name in by_make:
        raw = json.loads(subprocess.run([str(bindir / name), "--version=raw"], capture_output=True, text=True,
                                        check=True).stdout)
        for key in ("gitVersion", "gitCommit", "gitTreeState", "buildDate", "major", "minor"):
            assert raw[key] == want[key], (name, key)


@pytest.mark.realtree
@pytest.mark.parametrize("extra", [{}, {"DBG": "1"}, {"GOFLAGS": "-mod=vendor"}, {"KUBE_STATIC_OVERRIDES": "kubelet"}],
                         ids=["plain", "DBG=1", "GOFLAGS", "static-override"])
def test_real_v120_go_command_equals_build_binaries(real_tree, go_toolchain, tmp_path, extra):
    """The real v1.20.2 build_binaries (gopath era: -installsuffix static, -asmflags, -trimpath=KUBE_ROOT).
    v1.20 knows nothing of GOTOOLCHAIN: with it set by the user, both sides pass it on."""
    require(go_toolchain is not None, "a Go toolchain")
    tree = KubeTree(real_tree.resolve())
    whats = ["cmd/kube-apiserver", "cmd/kubelet", "cmd/kubectl"]
    environ = base_environ({"GOTOOLCHAIN": "local", **extra})
    want = oracle(tree.root, whats, environ, go_toolchain.go, tmp_path)
    got, _ = kbuild(tree, whats, environ, go_toolchain.version)
    assert go_view(got) == go_view(want)
    assert got[0]["argv"][:4] == ["go", "install", "-installsuffix", "static"]


@pytest.mark.parametrize("era", ["gopath", "modules", "workspace"])
def test_tree_path_with_spaces_quotes_and_dollar_builds(sample_repo, go_toolchain, era):
    """go splits -gcflags/-asmflags values on spaces: a -trimpath=<root> with spaces is given quoted."""
    require(go_toolchain is not None, "a Go toolchain")
    tree = sample_repo(era, name=f"tree {era} $(touch pwned) it's")
    result = inv("build", "--kube-root", str(tree), "--what=cmd/kubectl", check=True)
    binary = tree / "_output/local/bin/linux/amd64/kubectl"
    raw = json.loads(subprocess.run([str(binary), "--version=raw"], capture_output=True, text=True,
                                    check=True).stdout)
    assert raw["gitVersion"] == "v1.20.2", result.stderr
    assert not (tree.parent / "pwned").exists() and not (tree / "pwned").exists()
    # -trimpath reached go whole: the build settings go records name the full path (or go's own -trimpath).
    info = subprocess.run([str(go_toolchain.go), "version", "-m", str(binary)], capture_output=True, text=True,
                          check=True).stdout
    settings = dict(line.split("\t")[2].split("=", 1) for line in info.splitlines()
                    if line.startswith("\tbuild\t") and "=" in line)
    trimmed = {"gopath": str(tree), "modules": str(tree / "_output/local/go/src/k8s.io/kubernetes")}
    if era in trimmed:
        assert trimmed[era] in settings["-gcflags"] and trimmed[era] in settings["-asmflags"]
    else:
        assert settings["-trimpath"] == "true"

"""The _output/local/go workspace: the plan per era (pure), making it on disk, and `inv workspace`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from common.errors import TreeError
from tests.conftest import SHARED_GOCACHE, inv
from workspace.layout import MARKER, ensure_workspace, export_lines, plan_layout, plan_workspace
from workspace.sample import materialize
from workspace.tree import Era, load_tree

GOLANG_GOPATH = "kube::golang::create_gopath_tree() {\n  :\n}\n"
GO_MOD = "module k8s.io/kubernetes\n\ngo 1.20\n"


def make_tree(root: Path, era: str) -> Path:
    """A synthetic tree whose files say ``era``."""
    for d in ("cmd/kube-apiserver", "hack/lib"):
        (root / d).mkdir(parents=True, exist_ok=True)
    init = "export GO111MODULE=off\n" if era in ("godeps", "gopath") else "export GO111MODULE=on\n"
    (root / "hack/lib/init.sh").write_text(init)
    (root / "hack/lib/golang.sh").write_text(GOLANG_GOPATH if era != "workspace" else "# modern\n")
    if era == "godeps":
        (root / "Godeps/_workspace/src").mkdir(parents=True)
    if era in ("modules", "workspace"):
        (root / "go.mod").write_text(GO_MOD)
    if era == "workspace":
        (root / "go.work").write_text("go 1.22\n\nuse .\n")
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with what it is (dir, file contents, link target)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = "file:" + p.read_text()
    return out


# --------------------------------------------------------------------------- plan_layout (pure)

@pytest.mark.parametrize("era, expected", [
    ("godeps", {"GOPATH": "{gopath}:{root}/Godeps/_workspace", "GO111MODULE": "off"}),
    ("gopath", {"GOPATH": "{gopath}", "GO111MODULE": "off"}),
    ("modules", {"GOPATH": "{gopath}", "GO111MODULE": "on", "GOPROXY": "off"}),
    ("workspace", {"GO111MODULE": "on", "GOPROXY": "off"}),
])
def test_plan_layout_env_per_era(tmp_path: Path, era: str, expected: dict[str, str]) -> None:
    tree = load_tree(make_tree(tmp_path / "k", era))
    assert tree.era.value == era
    root = tree.root
    gopath = root / "_output" / "local" / "go"
    layout = plan_layout(tree, {})
    want = {k: v.format(gopath=gopath, root=root).replace(":", os.pathsep) for k, v in expected.items()}
    want["GOCACHE"] = str(gopath / "cache")  # Kubernetes' own default when GOCACHE is unset
    assert layout.env == want
    assert layout.output == root / "_output" / "local"
    assert layout.gopath == gopath
    if era == "workspace":
        assert layout.link is None
        assert layout.workdir == root
    else:
        assert layout.link == gopath / "src" / "k8s.io" / "kubernetes"
        assert layout.workdir == layout.link
    assert not (root / "_output").exists()  # planning touches nothing


@pytest.mark.parametrize("era", ["godeps", "gopath", "modules", "workspace"])
def test_plan_layout_gocache_env_wins(tmp_path: Path, era: str) -> None:
    tree = load_tree(make_tree(tmp_path / "k", era))
    assert plan_layout(tree, {"GOCACHE": "/shared/cache"}).env["GOCACHE"] == "/shared/cache"


def test_plan_layout_passes_goflags_and_extra_gopath(tmp_path: Path) -> None:
    tree = load_tree(make_tree(tmp_path / "k", "gopath"))
    env = plan_layout(tree, {"GOFLAGS": "-mod=vendor", "KUBE_EXTRA_GOPATH": "/extra"}).env
    assert env["GOFLAGS"] == "-mod=vendor"
    assert env["GOPATH"].split(os.pathsep) == [str(tree.root / "_output/local/go"), "/extra"]


def test_plan_layout_bin_paths(tmp_path: Path) -> None:
    tree = load_tree(make_tree(tmp_path / "k", "gopath"))
    layout = plan_layout(tree, {})
    assert layout.bin_dir("linux/arm64") == tree.root / "_output/local/bin/linux/arm64"
    assert layout.host_bin_link == tree.root / "_output/bin"


# --------------------------------------------------------------------------- ensure_workspace (real filesystem)

@pytest.mark.parametrize("era", ["gopath", "modules", "godeps"])
def test_ensure_workspace_creates_and_is_idempotent(tmp_path: Path, era: str) -> None:
    tree = load_tree(make_tree(tmp_path / "k", era))
    layout = plan_layout(tree, {})
    gopath = tree.root / "_output/local/go"
    actions = ensure_workspace(layout)
    assert {a.kind for a in actions} == {"mkdir", "link", "marker"}
    for d in ("src", "pkg", "bin"):
        assert (gopath / d).is_dir() and not (gopath / d).is_symlink()
    link = gopath / "src/k8s.io/kubernetes"
    assert link.is_symlink()
    assert os.readlink(link) == str(tree.root)
    assert link.resolve() == tree.root
    assert (link / "hack/lib/init.sh").read_text() == (tree.root / "hack/lib/init.sh").read_text()
    assert (gopath / "src/k8s.io" / MARKER).is_file()
    before = snapshot(tree.root / "_output")
    assert ensure_workspace(layout) == []
    assert plan_workspace(layout) == []
    assert snapshot(tree.root / "_output") == before


def test_ensure_workspace_repoints_a_stale_link(tmp_path: Path) -> None:
    tree = load_tree(make_tree(tmp_path / "k", "gopath"))
    other = tmp_path / "old-checkout"
    other.mkdir()
    layout = plan_layout(tree, {})
    link = tree.root / "_output/local/go/src/k8s.io/kubernetes"
    link.parent.mkdir(parents=True)
    link.symlink_to(other)
    actions = ensure_workspace(layout)
    assert [a.kind for a in actions if a.path == link] == ["relink"]
    assert os.readlink(link) == str(tree.root)
    assert other.is_dir()  # the old target is left alone
    assert not [p for p in link.parent.iterdir() if ".tmp-" in p.name]  # no temporary link left behind


def test_ensure_workspace_repoints_a_dangling_link(tmp_path: Path) -> None:
    tree = load_tree(make_tree(tmp_path / "k", "gopath"))
    layout = plan_layout(tree, {})
    link = tree.root / "_output/local/go/src/k8s.io/kubernetes"
    link.parent.mkdir(parents=True)
    link.symlink_to(tmp_path / "gone")
    ensure_workspace(layout)
    assert link.resolve() == tree.root


@pytest.mark.parametrize("kind", ["directory", "file"])
def test_ensure_workspace_refuses_a_real_entry_and_changes_nothing(tmp_path: Path, kind: str) -> None:
    tree = load_tree(make_tree(tmp_path / "k", "gopath"))
    layout = plan_layout(tree, {})
    link = tree.root / "_output/local/go/src/k8s.io/kubernetes"
    link.parent.mkdir(parents=True)
    if kind == "directory":
        link.mkdir()
        (link / "precious.go").write_text("package precious\n")
    else:
        link.write_text("precious\n")
    before = snapshot(tree.root)
    with pytest.raises(TreeError, match=f"real {kind}") as exc:
        ensure_workspace(layout)
    assert exc.value.hint
    assert snapshot(tree.root) == before  # contents intact, and no pkg/, bin/ or marker made
    assert not (tree.root / "_output/local/go/pkg").exists()
    assert not (tree.root / "_output/local/go/bin").exists()
    if kind == "directory":
        assert (link / "precious.go").read_text() == "package precious\n"
    else:
        assert link.read_text() == "precious\n"


def test_ensure_workspace_refuses_a_file_where_a_dir_goes(tmp_path: Path) -> None:
    tree = load_tree(make_tree(tmp_path / "k", "gopath"))
    gopath = tree.root / "_output/local/go"
    gopath.mkdir(parents=True)
    (gopath / "pkg").write_text("not a dir\n")
    before = snapshot(tree.root)
    with pytest.raises(TreeError, match="not a directory"):
        ensure_workspace(plan_layout(tree, {}))
    assert snapshot(tree.root) == before


def test_ensure_workspace_workspace_era_makes_no_link(tmp_path: Path) -> None:
    tree = load_tree(make_tree(tmp_path / "k", "workspace"))
    layout = plan_layout(tree, {})
    assert ensure_workspace(layout) == []
    assert not (tree.root / "_output").exists()


def test_ensure_workspace_on_sample_trees(tmp_path: Path) -> None:
    for era in ("gopath", "modules"):
        tree = load_tree(materialize(tmp_path / era, era))
        layout = plan_layout(tree, {})
        ensure_workspace(layout)
        assert (layout.workdir / "cmd").is_dir()
        assert layout.workdir.resolve() == tree.root


# --------------------------------------------------------------------------- the CLI

def _eval_in_bash(exports: str, names: tuple[str, ...]) -> dict[str, str]:
    prog = 'eval "$EXPORTS"; ' + "; ".join(f'printf "%s=%s\\n" {n} "${{{n}-<unset>}}"' for n in names)
    env = {"PATH": os.environ["PATH"], "EXPORTS": exports}
    out = subprocess.run(["bash", "-c", prog], env=env, check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


@pytest.mark.parametrize("era, expected", [
    ("gopath", {"GOPATH": "{gopath}", "GO111MODULE": "off", "GOPROXY": "<unset>"}),
    ("modules", {"GOPATH": "{gopath}", "GO111MODULE": "on", "GOPROXY": "off"}),
    ("workspace", {"GOPATH": "<unset>", "GO111MODULE": "on", "GOPROXY": "off"}),
])
def test_cli_env_evaluates_in_bash(tmp_path: Path, era: str, expected: dict[str, str]) -> None:
    root = make_tree(tmp_path / "dir with space $HOME" / "k", era)  # quoting must survive eval
    proc = inv("workspace", "--kube-root", str(root), "--env", check=True)
    got = _eval_in_bash(proc.stdout, ("GOPATH", "GO111MODULE", "GOPROXY", "GOCACHE"))
    gopath = root.resolve() / "_output" / "local" / "go"
    want = {k: v.format(gopath=gopath) for k, v in expected.items()}
    want["GOCACHE"] = str(SHARED_GOCACHE)  # the test environment sets GOCACHE; it wins
    assert got == want
    assert not (root / "_output").exists()  # --env only prints


def test_cli_env_default_gocache(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "k", "gopath")
    env = {k: v for k, v in os.environ.items() if k != "GOCACHE"}
    proc = inv("workspace", "--kube-root", str(root), "--env", env=env, check=True)
    got = _eval_in_bash(proc.stdout, ("GOCACHE",))
    assert got["GOCACHE"] == str(root.resolve() / "_output/local/go/cache")


def test_export_lines_match_layout(tmp_path: Path) -> None:
    tree = load_tree(make_tree(tmp_path / "k", "modules"))
    layout = plan_layout(tree, {"GOCACHE": "/c"})
    lines = export_lines(layout)
    exports = [line for line in lines if line.startswith("export ")]
    assert len(exports) == len(layout.env)
    assert _eval_in_bash("\n".join(lines), tuple(layout.env)) == layout.env


def test_cli_workspace_makes_it(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "k", "gopath")
    proc = inv("workspace", "--kube-root", str(root), check=True)
    link = root / "_output/local/go/src/k8s.io/kubernetes"
    assert link.resolve() == root.resolve()
    assert "gopath" in proc.stdout
    again = inv("workspace", "--kube-root", str(root), check=True)
    assert "already in place" in again.stdout


def test_cli_workspace_kube_root_env(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "k", "workspace")
    proc = inv("workspace", env={**os.environ, "KUBE_ROOT": str(root)}, cwd=tmp_path, check=True)
    assert Era.WORKSPACE.value in proc.stdout


def test_cli_workspace_missing_tree(tmp_path: Path) -> None:
    proc = inv("workspace", "--kube-root", "/nonexistent")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1 and "/nonexistent" in errors[0]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_cli_workspace_refuses_real_dir(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "k", "gopath")
    link = root / "_output/local/go/src/k8s.io/kubernetes"
    link.mkdir(parents=True)
    (link / "keep").write_text("keep\n")
    proc = inv("workspace", "--kube-root", str(root))
    assert proc.returncode == 2
    assert len([line for line in proc.stderr.splitlines() if line.startswith("ERROR")]) == 1
    assert "Traceback" not in proc.stderr
    assert (link / "keep").read_text() == "keep\n" and not link.is_symlink()

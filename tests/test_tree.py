"""Finding a Kubernetes tree and telling its era from its files (its facts from golang.sh: test_shell.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import TreeError
from workspace.sample import ERAS, materialize
from workspace.tree import (
    Era,
    KubeTree,
    load_tree,
    resolve_root,
)

INIT_OFF = "#!/usr/bin/env bash\nexport GO111MODULE=off\n"
INIT_ON = "#!/usr/bin/env bash\nexport GO111MODULE=on\n"
GOLANG_GOPATH = "kube::golang::create_gopath_tree() {\n  ln -snf \"${KUBE_ROOT}\" \"${go_pkg_dir}\"\n}\n"
GOLANG_MODULES = GOLANG_GOPATH + (
    "kube::golang::build_some_binaries() {\n"
    "  GO111MODULE=on GOPROXY=off go install \"${build_args[@]}\" \"$@\"\n}\n")
GO_MOD = "module k8s.io/kubernetes\n\ngo 1.20\n"
GO_WORK = "go 1.22\n\nuse .\n"


def make_tree(root: Path, files: dict[str, str], dirs: tuple[str, ...] = ()) -> Path:
    """A synthetic Kubernetes-shaped tree: cmd/, hack/lib/ plus the given files and dirs."""
    for d in ("cmd/kube-apiserver", "hack/lib", *dirs):
        (root / d).mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# --------------------------------------------------------------------------- eras

@pytest.mark.parametrize("files, dirs, era", [
    pytest.param({"hack/lib/init.sh": INIT_OFF, "hack/lib/golang.sh": GOLANG_GOPATH},
                 ("Godeps/_workspace/src",), Era.GODEPS, id="godeps"),
    pytest.param({"hack/lib/init.sh": INIT_OFF, "hack/lib/golang.sh": GOLANG_GOPATH},
                 ("vendor",), Era.GOPATH, id="vendor-gopath"),
    pytest.param({"hack/lib/init.sh": INIT_OFF, "hack/lib/golang.sh": GOLANG_GOPATH, "go.mod": GO_MOD},
                 ("vendor",), Era.GOPATH, id="go.mod-but-GO111MODULE-off"),
    pytest.param({"hack/lib/init.sh": INIT_ON, "hack/lib/golang.sh": GOLANG_GOPATH, "go.mod": GO_MOD},
                 ("vendor",), Era.MODULES, id="go.mod-modules"),
    pytest.param({"hack/lib/golang.sh": GOLANG_GOPATH, "go.mod": GO_MOD},
                 ("vendor",), Era.MODULES, id="go.mod-no-init-setting"),
    pytest.param({"hack/lib/init.sh": INIT_OFF, "hack/lib/golang.sh": GOLANG_MODULES, "go.mod": GO_MOD},
                 ("vendor",), Era.MODULES, id="init-off-but-golang-builds-with-modules"),
    pytest.param({"hack/lib/init.sh": INIT_ON, "hack/lib/golang.sh": "# no gopath tree\n",
                  "go.mod": GO_MOD, "go.work": GO_WORK}, (), Era.WORKSPACE, id="go.work"),
    pytest.param({"hack/lib/init.sh": INIT_ON, "hack/lib/golang.sh": GOLANG_GOPATH,
                  "go.mod": GO_MOD, "go.work": GO_WORK}, ("vendor",), Era.MODULES,
                 id="go.work-with-create_gopath_tree"),
])
def test_detect_era(tmp_path: Path, files: dict[str, str], dirs: tuple[str, ...], era: Era) -> None:
    tree = load_tree(make_tree(tmp_path / "k", files, dirs))
    assert tree.era is era


def test_godeps_needs_the_src_dir(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "k", {"hack/lib/init.sh": INIT_OFF}, ("Godeps/_workspace",))
    assert load_tree(root).era is Era.GOPATH


@pytest.mark.parametrize("era, expected", [("gopath", Era.GOPATH), ("modules", Era.MODULES),
                                           ("workspace", Era.WORKSPACE)])
def test_sample_eras(tmp_path: Path, era: str, expected: Era) -> None:
    assert era in ERAS
    tree = load_tree(materialize(tmp_path / era, era))
    assert tree.era is expected
    assert tree.era.makes_gopath_tree is (expected is not Era.WORKSPACE)
    assert tree.era.module_mode is (expected in (Era.MODULES, Era.WORKSPACE))


def test_real_tree_is_gopath_era(real_tree: Path) -> None:
    tree = load_tree(real_tree)
    assert (tree.root / "go.mod").is_file()  # it has a go.mod, and still builds in GOPATH mode
    assert tree.era is Era.GOPATH


# --------------------------------------------------------------------------- load_tree and resolve_root

def test_load_tree_missing(tmp_path: Path) -> None:
    with pytest.raises(TreeError, match="does not exist") as exc:
        load_tree(tmp_path / "nope")
    assert exc.value.hint and "kbuild source" in exc.value.hint and "inside a Kubernetes tree" in exc.value.hint


def test_load_tree_file(tmp_path: Path) -> None:
    f = tmp_path / "kubernetes"
    f.write_text("not a tree")
    with pytest.raises(TreeError, match="not a directory"):
        load_tree(f)


def test_load_tree_without_cmd(tmp_path: Path) -> None:
    root = tmp_path / "k"
    (root / "hack" / "lib").mkdir(parents=True)
    (root / "go.mod").write_text(GO_MOD)
    with pytest.raises(TreeError, match="not a Kubernetes tree"):
        load_tree(root)


def test_load_tree_other_module(tmp_path: Path) -> None:
    root = tmp_path / "k"
    (root / "cmd").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/other\n\ngo 1.20\n")
    with pytest.raises(TreeError, match="not a Kubernetes tree"):
        load_tree(root)


def test_load_tree_module_without_hack(tmp_path: Path) -> None:
    root = tmp_path / "k"
    (root / "cmd").mkdir(parents=True)
    (root / "go.mod").write_text(GO_MOD)
    assert load_tree(root).root == root.resolve()


def test_load_tree_resolves_symlinks(tmp_path: Path) -> None:
    real = make_tree(tmp_path / "real", {})
    link = tmp_path / "link"
    link.symlink_to(real)
    tree = load_tree(link)
    assert tree.root == real.resolve()
    assert isinstance(tree, KubeTree)


@pytest.mark.parametrize("flag, env, config, expected", [
    ("/from/flag", "/from/env", "/from/config", "/from/flag"),
    (None, "/from/env", "/from/config", "/from/env"),
    ("", "/from/env", "/from/config", "/from/env"),
    (None, None, "/from/config", "/from/config"),
    (None, "", "/from/config", "/from/config"),
    (None, None, None, "<cwd>/kubernetes"),
])
def test_resolve_root_precedence(tmp_path: Path, flag, env, config, expected) -> None:
    environ = {} if env is None else {"KUBE_ROOT": env}
    got = resolve_root(flag, environ, config, cwd=tmp_path)
    assert got == Path(expected.replace("<cwd>", str(tmp_path)))


def test_resolve_root_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_root("~/k8s", {}, None) == tmp_path / "k8s"


def test_resolve_root_default_is_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_root(None, {}, None) == tmp_path / "kubernetes"


def test_read_absent_file(tmp_path: Path) -> None:
    tree = load_tree(make_tree(tmp_path / "k", {}))
    assert tree.read("nope/none.txt") is None
    assert tree.read("cmd") is None  # a directory is not a file
    assert tree.golang_sh == ""

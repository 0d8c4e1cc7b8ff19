"""Generated files a target needs but the tree doesn't commit (v1.20–1.23's openapi file)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workspace.tree import KubeTree


@dataclass(frozen=True)
class Generated:
    """A generated Go file, the package it belongs to, and the make target that writes it."""

    path: str
    package_rel: str
    make_target: str


KNOWN = (
    Generated("pkg/generated/openapi/zz_generated.openapi.go", "pkg/generated/openapi", "gen_openapi"),
    Generated("test/e2e/generated/bindata.go", "test/e2e/generated", "gen_bindata"),
)


def _declared(tree: KubeTree, rels: tuple[str, ...]) -> set[str]:
    names: set[str] = set()
    for rel in rels:
        text = tree.read(rel) or ""
        for m in re.finditer(r"^([A-Za-z0-9_. -]+?)\s*:(?!=)", text, re.M):
            names.update(m.group(1).split())
    return names


MAIN_MAKEFILES = ("Makefile", "build/root/Makefile")
GENERATED_MAKEFILES = ("Makefile.generated_files", "build/root/Makefile.generated_files")


def make_targets(tree: KubeTree) -> set[str]:
    """Targets the tree's Makefiles declare (rule heads, including `a b:` lists)."""
    return _declared(tree, MAIN_MAKEFILES + GENERATED_MAKEFILES)


FORWARD_GOAL = "kbuild-forward-generated-file"


def make_command(tree: KubeTree, target: str) -> list[str]:
    """`make TARGET` where the main Makefile has the rule; else the way its own forwarding rule
    calls the generated-files Makefile (v1.20's main Makefile forwards gen_openapi, not gen_bindata)."""
    if target in _declared(tree, MAIN_MAKEFILES) or not (tree.root / "Makefile.generated_files").exists():
        return ["make", target]
    # Forward through the main Makefile, as its own rule does: its constants (META_DIR, OUT_DIR, BIN_DIR,
    # PRJ_SRC_PATH) reach the sub-make only through its .EXPORT_ALL_VARIABLES. Called directly, the
    # generated-files Makefile sees META_DIR empty and writes $(META_DIR)/go-pkgdeps.mk to /.
    forward = f"{FORWARD_GOAL}: ; $(MAKE) -f Makefile.generated_files {target} CALLED_FROM_MAIN_MAKEFILE=1"
    return ["make", "--eval", forward, FORWARD_GOAL]


def missing(tree: KubeTree) -> list[Generated]:
    """Generated files absent from the tree whose package exists and whose make target the tree has."""
    targets = None
    out = []
    for gen in KNOWN:
        if (tree.root / gen.path).exists() or not (tree.root / gen.package_rel).is_dir():
            continue
        targets = make_targets(tree) if targets is None else targets
        if gen.make_target in targets:
            out.append(gen)
    return out


def needed(candidates: list[Generated], deps: set[str], module_mode: bool) -> list[Generated]:
    """The candidates whose package is among ``deps`` (import paths from `go list -deps`)."""
    prefix = "" if module_mode else "k8s.io/kubernetes/"
    wanted = []
    for gen in candidates:
        names = {f"k8s.io/kubernetes/{gen.package_rel}", f"{prefix}{gen.package_rel}"}
        if names & deps:
            wanted.append(gen)
    return wanted


def tools_needed(tree: KubeTree) -> list[str]:
    """What the tree's `make gen_*` runs besides go: make, and rsync where its scripts use it
    (v1.20's place_bins copies the generator binaries with rsync)."""
    from workspace.shell import code

    scripts = tree.golang_sh + (tree.read("Makefile") or "") + (tree.read("Makefile.generated_files") or "")
    return ["make"] + (["rsync"] if re.search(r"\brsync\b", code(scripts)) else [])

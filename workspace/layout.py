"""The GOPATH-style workspace under ``_output/local/go`` (hack/lib/golang.sh create_gopath_tree).

``plan_layout`` decides paths and environment (pure); ``ensure_workspace``
makes the directories and the ``src/k8s.io/kubernetes`` link.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import TreeError
from workspace.tree import GO_PACKAGE, Era, KubeTree

# Kubernetes drops this beside the link so recursive tools don't loop through it.
MARKER = "DONT_FOLLOW_SYMLINKS_WHEN_TRAVERSING_THIS_DIRECTORY_VIA_A_RECURSIVE_TARGET_PATTERN"


@dataclass(frozen=True)
class Layout:
    """Where things live for one tree, and the Go environment its era needs."""

    root: Path
    era: Era
    output: Path                    # _output/local
    gopath: Path                    # _output/local/go
    link: Path | None               # _output/local/go/src/k8s.io/kubernetes, for eras that use it
    workdir: Path                   # where `go` runs
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bin_root(self) -> Path:
        return self.output / "bin"

    def bin_dir(self, platform: str) -> Path:
        return self.bin_root / platform

    @property
    def host_bin_link(self) -> Path:
        return self.root / "_output" / "bin"


def plan_layout(tree: KubeTree, environ: Mapping[str, str]) -> Layout:
    """Paths and Go environment for ``tree``'s era (pure: touches nothing)."""
    root = tree.root
    output = root / "_output" / "local"
    gopath = output / "go"
    era = tree.era
    # One GOCACHE shared by every tree is faster than Kubernetes' per-tree
    # _output/local/go/cache; an explicit GOCACHE wins, as everywhere in Go.
    gocache = environ.get("GOCACHE") or str(gopath / "cache")
    env: dict[str, str] = {"GOCACHE": gocache}
    link = gopath / "src" / GO_PACKAGE if era.makes_gopath_tree else None
    if era is Era.GODEPS:
        env["GOPATH"] = os.pathsep.join([str(gopath), str(root / "Godeps" / "_workspace")])
        env["GO111MODULE"] = "off"
    elif era is Era.GOPATH:
        env["GOPATH"] = str(gopath)
        env["GO111MODULE"] = "off"
    elif era is Era.MODULES:
        env["GOPATH"] = str(gopath)
        env["GO111MODULE"] = "on"
        env["GOPROXY"] = "off"
    else:
        env["GO111MODULE"] = "on"
        env["GOPROXY"] = "off"
    if environ.get("KUBE_EXTRA_GOPATH") and "GOPATH" in env:
        env["GOPATH"] += os.pathsep + environ["KUBE_EXTRA_GOPATH"]
    if environ.get("GOFLAGS"):
        env["GOFLAGS"] = environ["GOFLAGS"]
    workdir = link if link is not None else root
    return Layout(root=root, era=era, output=output, gopath=gopath, link=link, workdir=workdir, env=env)


@dataclass(frozen=True)
class WorkspaceAction:
    """One change ``ensure_workspace`` makes, for reporting."""

    kind: str   # "mkdir", "link", "relink", "marker"
    path: Path
    detail: str = ""


def plan_workspace(layout: Layout) -> list[WorkspaceAction]:
    """What must change on disk for the workspace to be right; raises if it can't be done safely."""
    actions: list[WorkspaceAction] = []
    dirs = [layout.gopath / d for d in ("src", "pkg", "bin")] if layout.link else []
    if layout.link is not None:
        dirs.append(layout.link.parent)
    for d in dirs:
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            raise TreeError(f"{d} exists and is not a directory: the workspace can't be made",
                            hint=f"move it away, or run `inv clean` (removes {layout.root / '_output' / 'local'})")
        if not d.is_dir():
            actions.append(WorkspaceAction("mkdir", d))
    link = layout.link
    if link is None:
        return actions
    if link.is_symlink():
        current = os.readlink(link)
        if Path(current) != layout.root:
            actions.append(WorkspaceAction("relink", link, f"{current} -> {layout.root}"))
    elif link.exists():
        kind = "directory" if link.is_dir() else "file"
        raise TreeError(f"a real {kind} sits where the workspace link goes: {link}",
                        hint="it is not ours to delete: move it away, then run `inv workspace` again")
    else:
        actions.append(WorkspaceAction("link", link, str(layout.root)))
    if not (link.parent / MARKER).exists():
        actions.append(WorkspaceAction("marker", link.parent / MARKER))
    return actions


def apply_workspace(actions: list[WorkspaceAction], root: Path) -> None:
    """Carry out ``plan_workspace``'s actions."""
    for action in actions:
        if action.kind == "mkdir":
            action.path.mkdir(parents=True, exist_ok=True)
        elif action.kind in ("link", "relink"):
            # Replace atomically, like `ln -snf`, but never over a real directory.
            tmp = action.path.with_name(f".{action.path.name}.tmp-{os.getpid()}")
            if tmp.is_symlink():
                tmp.unlink()
            tmp.symlink_to(root)
            os.replace(tmp, action.path)
        elif action.kind == "marker":
            action.path.touch()


def ensure_workspace(layout: Layout) -> list[WorkspaceAction]:
    """Make the workspace (idempotent) and return what was changed."""
    actions = plan_workspace(layout)
    apply_workspace(actions, layout.root)
    return actions


def export_lines(layout: Layout) -> list[str]:
    """``export`` lines for ``eval "$(inv workspace --env)"``."""
    lines = [f"export {key}={shlex.quote(value)}" for key, value in sorted(layout.env.items())]
    if layout.era.makes_gopath_tree:
        lines.append(f"# GOPATH-era builds run inside {shlex.quote(str(layout.workdir))}")
    return lines

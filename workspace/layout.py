"""The GOPATH-style workspace under ``_output/local/go`` (hack/lib/golang.sh create_gopath_tree).

``plan_layout`` decides paths and environment (pure); ``ensure_workspace``
makes the directories and the ``src/k8s.io/kubernetes`` link.
"""

from __future__ import annotations

import errno
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import TreeError
from common.outputs import check_inside
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


def read_only_hint(root: Path) -> str:
    """Copying is the fix: kbuild's outputs live in the tree's _output, and Kubernetes' OUT_DIR and
    KUBE_OUTPUT_SUBPATH only move them to another place inside the tree."""
    name = root.name or "kubernetes"
    copy = f"/tmp/{name}" if Path(f"/tmp/{name}") != root else f"/tmp/{name}-copy"
    return (f"copy the tree somewhere writable and build there: cp -a {shlex.quote(str(root))} {shlex.quote(copy)}"
            f" (outputs go to the tree's _output; there is no option to put them elsewhere)")


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def check_writable(root: Path, path: Path, doing: str) -> None:
    """Refuse, before changing anything, when ``path`` (or where it would be made) can't be written.

    ``os.access`` reports a read-only mount (EROFS) and an immutable directory even for root.
    """
    where = _nearest_existing(path)
    if where.is_dir() and not where.is_symlink():
        probe = where
    else:
        probe = where.parent
    if os.access(probe, os.W_OK):
        return
    read_only = False
    try:
        read_only = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
    except OSError:
        pass
    reason = "on a read-only file system" if read_only else "not writable"
    if probe.is_relative_to(root):
        raise TreeError(f"the tree is read-only: cannot {doing}: {probe} is {reason}", hint=read_only_hint(root))
    raise TreeError(f"cannot {doing}: {probe} is {reason}")


def ensure_dir(path: Path, root: Path) -> None:
    """``mkdir -p path``, with one clear line when a part of it under ``root`` is a file (or a dangling link)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        return
    except (FileExistsError, NotADirectoryError) as exc:
        blocker = _blocking_part(path, root)
        if blocker is None:
            raise
        raise blocked(blocker, root, f"{path} can't be made") from exc
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            check_writable(root, path, f"create {path}")
        raise


def blocked(blocker: Path, root: Path, consequence: str) -> TreeError:
    """The error for a file (or link) sitting where kbuild needs a directory."""
    kind = "a symlink" if blocker.is_symlink() else "a file"
    output = root / "_output"
    tip = "move it away"
    if blocker.is_relative_to(output / "local") or blocker == output / "bin":
        tip += f", or run `inv clean` (removes {output / 'local'} and {output / 'bin'})"
    elif blocker == output:
        tip += f", or run `inv clean --all` (removes {output})"
    return TreeError(f"{blocker} is {kind}, not a directory: {consequence}", hint=tip)


def _blocking_part(path: Path, root: Path) -> Path | None:
    """The first component of ``path`` that exists and is not a directory."""
    current = Path(path.anchor)
    for part in path.parts[1:]:
        current = current / part
        if os.path.lexists(current) and not current.is_dir():
            return current
        if not os.path.lexists(current):
            return None
    return None


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


def output_paths(layout: Layout) -> list[Path]:
    """Every directory a build with this layout writes under _output: the workspace, the binaries (each
    platform's directory that exists), the up-to-date stamps."""
    paths = [layout.output, layout.gopath, layout.bin_root, layout.output / ".kbuild"]
    paths += [layout.gopath / d for d in ("src", "pkg", "bin")]
    if layout.link is not None:
        paths.append(layout.link.parent)
    if layout.bin_root.is_dir() and not layout.bin_root.is_symlink():
        try:
            paths += [arch for os_dir in layout.bin_root.iterdir() if os_dir.is_dir() and not os_dir.is_symlink()
                      for arch in os_dir.iterdir()]
            paths += list(layout.bin_root.iterdir())
        except OSError:
            pass  # an unreadable directory is for the build's own check to report
    return paths


def check_outputs(layout: Layout) -> None:
    """The output guard for a build: no symlink out of _output anywhere a build writes, before any write."""
    check_inside(layout.root, *output_paths(layout))


def plan_workspace(layout: Layout) -> list[WorkspaceAction]:
    """What must change on disk for the workspace to be right; raises if it can't be done safely
    (a symlink out of _output on the way included)."""
    check_outputs(layout)
    actions: list[WorkspaceAction] = []
    dirs = [layout.gopath / d for d in ("src", "pkg", "bin")] if layout.link else []
    if layout.link is not None:
        dirs.append(layout.link.parent)
    for d in dirs:
        blocker = d if d.is_symlink() else _blocking_part(d, layout.root)
        if blocker is not None:
            raise blocked(blocker, layout.root, "the workspace can't be made")
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
    if actions:
        check_writable(root, actions[0].path, "make the workspace")
    for action in actions:
        if action.kind == "mkdir":
            ensure_dir(action.path, root)
        elif action.kind in ("link", "relink"):
            # Replace atomically, like `ln -snf`, but never over a real directory.
            ensure_dir(action.path.parent, root)
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

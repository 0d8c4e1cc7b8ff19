"""Locate a Kubernetes tree, check it is one, and read the build facts from its files.

Nothing here runs a command: it reads files, so it is cheap and testable.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from common.errors import KBError, TreeError
from common.treefiles import check_regular, read_text
from workspace import shell

GO_PACKAGE = "k8s.io/kubernetes"
DEFAULT_ROOT = "kubernetes"

# Files the tree's own scripts read (bash sources them, make and go read them) as well as kbuild:
# checked when the tree is loaded, so a FIFO there is one line before anything runs.
BUILD_FILES = ("go.mod", "go.work", "go.sum", ".go-version", "Makefile", "Makefile.generated_files",
               "build/dependencies.yaml", "build/build-image/cross/VERSION", "build/build-image/Dockerfile")
BUILD_SCRIPT_DIRS = ("build", "build/lib", "hack", "hack/lib", "hack/make-rules")


class Era(enum.StrEnum):
    """How a tree builds (see the eras table in the reference)."""

    GODEPS = "godeps"        # Godeps/_workspace on GOPATH (<= ~1.5)
    GOPATH = "gopath"        # GOPATH + vendor, GO111MODULE=off (~1.6 - 1.24)
    MODULES = "modules"      # go.mod, GOPATH tree still made (~1.25 - 1.29)
    WORKSPACE = "workspace"  # go.work, built from KUBE_ROOT (>= 1.30)

    @property
    def makes_gopath_tree(self) -> bool:
        return self is not Era.WORKSPACE

    @property
    def module_mode(self) -> bool:
        return self in (Era.MODULES, Era.WORKSPACE)


@dataclass(frozen=True)
class KubeTree:
    """A Kubernetes source tree and the facts its own files state."""

    root: Path

    def read(self, rel: str) -> str | None:
        """Text of a file in the tree, or None when absent; a FIFO or a device there is an error naming it."""
        return read_text(self.root / rel, root=self.root)

    @cached_property
    def golang_sh(self) -> str:
        return self.read("hack/lib/golang.sh") or ""

    @cached_property
    def init_sh(self) -> str:
        return self.read("hack/lib/init.sh") or ""

    @cached_property
    def era(self) -> Era:
        return detect_era(self)

    @cached_property
    def static_binaries(self) -> tuple[str, ...]:
        """The tree's list of statically linked binaries (KUBE_STATIC_LIBRARIES/BINARIES)."""
        return parse_static_list(self.golang_sh)

    @cached_property
    def minimum_go(self) -> str | None:
        """The oldest Go the tree accepts, as ``go1.x.y``, from golang.sh or .go-version."""
        return parse_minimum_go(self.golang_sh, self.read(".go-version"))

    @cached_property
    def supported_platforms(self) -> tuple[str, ...]:
        return parse_platforms(self.golang_sh)


def detect_era(tree: KubeTree) -> Era:
    """Decide the era from the tree's files, never from a version number."""
    root = tree.root
    if (root / "Godeps" / "_workspace" / "src").is_dir():
        return Era.GODEPS
    golang = shell.code(tree.golang_sh)
    has_gopath_tree = "create_gopath_tree" in golang
    if (root / "go.work").is_file() and not has_gopath_tree:
        return Era.WORKSPACE
    if not (root / "go.mod").is_file():
        return Era.GOPATH
    # Trees of ~1.25-1.29 keep GO111MODULE=off in init.sh but build with GO111MODULE=on.
    exports_off = any(a.keyword == "export" and a.value == "off"
                      for a in shell.assignments(tree.init_sh, "GO111MODULE"))
    if exports_off and not re.search(r"\bGO111MODULE=on\b", golang):
        return Era.GOPATH
    return Era.MODULES


def _module_name(go_mod: str | None) -> str | None:
    if not go_mod:
        return None
    m = re.search(r"^\s*module\s+(\S+)", go_mod, re.M)
    return m.group(1).strip('"') if m else None


def load_tree(path: Path | str) -> KubeTree:
    """Check ``path`` is a Kubernetes tree and return it (resolved)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise TreeError(f"no Kubernetes tree at {root}: it does not exist",
                        hint="run it inside a Kubernetes tree, pass --kube-root, set KUBE_ROOT, "
                             "or get one: `kbuild source --ref vX.Y.Z`")
    root = root.resolve()
    if not root.is_dir():
        raise TreeError(f"{root} is not a directory")
    check_build_files(root)
    has_cmd = (root / "cmd").is_dir()
    has_hack = (root / "hack" / "lib").is_dir()
    names_k8s = _module_name(KubeTree(root).read("go.mod")) == GO_PACKAGE
    if not (has_cmd and (has_hack or names_k8s)):
        raise TreeError(f"{root} is not a Kubernetes tree (needs cmd/ and hack/lib/ or a go.mod of {GO_PACKAGE})",
                        hint="point --kube-root or KUBE_ROOT at the top of a Kubernetes checkout")
    return KubeTree(root)


def check_build_files(root: Path) -> None:
    """Refuse a tree whose build files or scripts (``*.sh`` in build/ and hack/) are FIFOs or devices."""
    scripts: list[str] = []
    for directory in BUILD_SCRIPT_DIRS:
        try:
            with os.scandir(root / directory) as entries:
                scripts += [f"{directory}/{e.name}" for e in entries if e.name.endswith(".sh")]
        except OSError:
            continue
    check_regular(root, [*BUILD_FILES, *sorted(scripts)])


def looks_like_tree(path: Path) -> bool:
    """Cheap: what load_tree checks first (cmd/, and hack/lib/version.sh or a go.mod of k8s.io/kubernetes)."""
    try:
        if not (path / "cmd").is_dir():
            return False
        if (path / "hack" / "lib" / "version.sh").is_file():
            return True
        return _module_name(KubeTree(path).read("go.mod")) == GO_PACKAGE
    except (OSError, KBError):  # unreadable, or a go.mod that is not a regular file: not this one
        return False


def enclosing_tree(start: Path) -> Path | None:
    """The directory or its nearest parent that is a Kubernetes tree (as git finds a repository)."""
    for candidate in (start, *start.parents):
        if looks_like_tree(candidate):
            return candidate
    return None


def resolve_root(flag: str | None, environ: Mapping[str, str], config_root: str | None,
                 cwd: Path | None = None, config_dir: Path | None = None) -> Path:
    """--kube-root, else KUBE_ROOT, else kube.root from a config file (relative to that file's
    directory, ``config_dir``), else the current directory or its nearest parent that is a Kubernetes
    tree, else ./kubernetes. A relative flag or KUBE_ROOT is relative to the current directory."""
    here = cwd or Path(os.getcwd())
    for candidate, base in ((flag, here), (environ.get("KUBE_ROOT"), here), (config_root, config_dir or here)):
        if candidate:
            path = Path(candidate).expanduser()
            return path if path.is_absolute() else base / path
    return enclosing_tree(here) or here / DEFAULT_ROOT


def parse_static_list(golang_sh: str) -> tuple[str, ...]:
    """The static binaries list, whatever the tree calls it."""
    for name in ("KUBE_STATIC_BINARIES", "KUBE_STATIC_LIBRARIES"):
        items = shell.array(golang_sh, name)
        if items is not None:
            return tuple(items)
    for function in ("kube::golang::server_static_targets", "kube::golang::static_targets"):
        items = shell.function_targets(golang_sh, function)
        if items is not None:
            return tuple(os.path.basename(i) for i in items)
    return ()


def parse_minimum_go(golang_sh: str, go_version_file: str | None) -> str | None:
    """verify_go_version's ``minimum_go_version=goX.Y.Z``, else the first line of .go-version."""
    for assignment in shell.assignments(golang_sh, "minimum_go_version"):
        m = re.match(r"go[0-9][0-9.]*", assignment.value)
        if m:
            return m.group(0)
    if go_version_file and go_version_file.strip():
        v = go_version_file.strip().splitlines()[0].strip()
        return v if v.startswith("go") else f"go{v}"
    return None


def parse_platforms(golang_sh: str) -> tuple[str, ...]:
    """Union of the tree's KUBE_SUPPORTED_*_PLATFORMS lists, in first-seen order."""
    seen: dict[str, None] = {}
    for kind in ("SERVER", "NODE", "CLIENT", "TEST"):
        for item in shell.array(golang_sh, f"KUBE_SUPPORTED_{kind}_PLATFORMS") or []:
            seen.setdefault(item, None)
    return tuple(seen)

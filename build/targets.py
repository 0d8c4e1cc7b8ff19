"""Turning ``--what`` values into build targets, with the checks Kubernetes' make skips."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from common.errors import UsageError
from common.treefiles import read_text
from workspace.targetlists import GROUP_NAMES, all_targets, named_group
from workspace.tree import GO_PACKAGE, KubeTree

_MAIN = re.compile(r"^package\s+main\b", re.M)
_DOMAIN = re.compile(r"^([A-Za-z0-9]+\.)+[A-Za-z0-9]+/")


@dataclass(frozen=True)
class Target:
    """One thing to build: a main package (or a ``*.test`` binary) in the tree."""

    rel: str        # as Kubernetes names it: cmd/kube-apiserver, test/e2e/e2e.test
    name: str       # output file name: kube-apiserver, e2e.test
    pkg_rel: str    # the package directory, relative to the tree
    is_test: bool = False

    def package(self, module_mode: bool) -> str:
        """The import path ``go`` is given (vendor/ is dropped in module mode)."""
        rel = self.pkg_rel
        if module_mode:
            for prefix in ("vendor/", "staging/src/"):
                if rel.startswith(prefix):
                    return rel[len(prefix):]
        return f"{GO_PACKAGE}/{rel}"


def _has_main(directory: Path) -> bool:
    for f in directory.glob("*.go"):
        if f.name.endswith("_test.go"):
            continue
        try:
            head = (read_text(f) or "")[:4096]
        except OSError:
            continue
        if _MAIN.search(head):
            return True
    return False


def _has_tests(directory: Path) -> bool:
    return any(directory.glob("*_test.go"))


def known_targets(tree: KubeTree) -> list[str]:
    """Names to suggest: every cmd/* with a main package, plus the tree's declared targets."""
    names: dict[str, None] = {}
    cmd = tree.root / "cmd"
    if cmd.is_dir():
        for d in sorted(cmd.iterdir()):
            if d.is_dir() and _has_main(d):
                names.setdefault(f"cmd/{d.name}", None)
    for item in all_targets(tree.golang_sh):
        names.setdefault(item, None)
    for group in GROUP_NAMES:
        for item in named_group(tree.golang_sh, group):
            names.setdefault(item, None)
    return list(names)


def default_whats(tree: KubeTree, groups: list[str]) -> list[str]:
    """What `make` builds with no WHAT (the tree's KUBE_ALL_TARGETS), or the named lists of golang.sh."""
    text = tree.golang_sh
    if not groups:
        found = all_targets(text)
        if not found:
            raise UsageError(f"{tree.root}: hack/lib/golang.sh has no KUBE_ALL_TARGETS to build",
                             hint="name what to build with --what=cmd/NAME")
        return found
    out: dict[str, None] = {}
    for group in groups:
        if group not in GROUP_NAMES:
            raise UsageError(f"--group {group!r}: expected one of {', '.join(GROUP_NAMES)}")
        items = named_group(text, group)
        if not items:
            raise UsageError(f"--group {group}: hack/lib/golang.sh has no {group} targets")
        out.update(dict.fromkeys(items))
    return list(out)


# `ginkgo` in the test lists: build_binaries' alias for the vendored ginkgo CLI.
GINKGO_DIRS = ("vendor/github.com/onsi/ginkgo/v2/ginkgo", "vendor/github.com/onsi/ginkgo/ginkgo")


def requested_whats(flags: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The targets asked for: each --what may name several, space-separated (make's `WHAT="cmd/a cmd/b"`);
    without --what, $WHAT as `make WHAT=…` reads it; empty: none (the tree's default lists)."""
    items = list(flags) or [environ.get("WHAT", "")]
    return list(dict.fromkeys(w for item in items for w in item.split()))


def normalise(what: str) -> str:
    """Clean a --what value; reject absolute paths, `..`, option-like and empty values."""
    raw = what.strip()
    if not raw:
        raise UsageError("--what needs a package directory such as cmd/kube-apiserver")
    if raw.startswith("-"):
        raise UsageError(f"--what {raw!r}: looks like a flag, not a package directory")
    if _DOMAIN.match(raw) and raw.startswith(GO_PACKAGE + "/"):
        raw = raw[len(GO_PACKAGE) + 1:]
    path = PurePosixPath(raw)
    if path.is_absolute():
        raise UsageError(f"--what {what!r}: must be relative to the tree, e.g. cmd/kube-apiserver")
    if ".." in path.parts:
        raise UsageError(f"--what {what!r}: `..` is not allowed; name a directory inside the tree")
    if not re.fullmatch(r"[A-Za-z0-9_./+-]+", raw):
        raise UsageError(f"--what {what!r}: unexpected characters in a package directory")
    clean = str(path)
    return "" if clean == "." else clean


def resolve_targets(tree: KubeTree, whats: list[str]) -> list[Target]:
    """Check each --what names a main package (or a *.test) inside the tree."""
    targets: list[Target] = []
    seen: set[str] = set()
    for what in whats:
        rel = normalise(what)
        is_test = rel.endswith(".test")
        pkg_rel = str(PurePosixPath(rel).parent) if is_test else rel
        if rel == "ginkgo":
            pkg_rel = next((d for d in GINKGO_DIRS if (tree.root / d).is_dir()), GINKGO_DIRS[0])
        directory = (tree.root / pkg_rel) if pkg_rel not in ("", ".") else tree.root
        inside = directory.resolve().is_relative_to(tree.root) if directory.exists() else True
        ok = inside and directory.is_dir() and (_has_tests(directory) or _has_main(directory)
                                                 if is_test else _has_main(directory))
        if not ok:
            close = difflib.get_close_matches(rel, known_targets(tree), n=3, cutoff=0.5)
            reason = "not inside the tree" if not inside else (
                "no such directory" if not directory.is_dir() else "no main package there")
            hint = f"did you mean: {', '.join(close)}" if close else "list candidates with `ls cmd/`"
            raise UsageError(f"--what {what!r}: {reason} in {tree.root}", hint=hint)
        if rel in seen:
            continue
        seen.add(rel)
        targets.append(Target(rel=rel, name=PurePosixPath(rel).name, pkg_rel=pkg_rel, is_test=is_test))
    return targets

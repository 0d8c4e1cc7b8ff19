"""Orchestration for `inv build` and `inv demo`: gather facts, plan, execute, report."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from build.golang import GoToolchain, check_minimum, find_go
from build.plan import BuildOptions, BuildPlan, BuildRequest, plan_build
from build.runner import Built, execute
from build.targets import resolve_targets
from build.version import compute
from common.cli import info
from common.errors import UsageError
from common.units import size
from workspace.layout import Layout, plan_layout
from workspace.tree import KubeTree


def make_plan(tree: KubeTree, whats: list[str], platforms: list[str], *, debug: bool,
              environ: Mapping[str, str]) -> tuple[GoToolchain, Layout, BuildPlan]:
    """Everything decided before anything runs: toolchain, layout, stamp, targets, commands."""
    targets = resolve_targets(tree, whats)
    toolchain = find_go(environ)
    check_minimum(toolchain, tree.minimum_go)
    layout = plan_layout(tree, environ)
    stamp = compute(tree.root, environ)
    plan = plan_build(BuildRequest(tree, layout, stamp, targets, BuildOptions(tuple(platforms), debug), environ,
                                   toolchain.host_platform, staging_name=f".partial-{os.getpid()}",
                                   go_version=toolchain.version))
    return toolchain, layout, plan


def report(built: list[Built], root: Path) -> None:
    for b in built:
        rel = b.path.relative_to(root) if b.path.is_relative_to(root) else b.path
        print(f"{rel}  {size(b.size)}  sha256:{b.sha256}")


@dataclass(frozen=True)
class BuildJob:
    """What `inv build` was asked: the targets (or golang.sh's lists), the platforms, and how."""

    whats: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    debug: bool = False
    dry_run: bool = False
    force: bool = False
    hyperkube_links: bool = False
    json: bool = False              # the result as JSON on stdout instead of one line per binary


def chosen_whats(tree: KubeTree, request: BuildJob, environ: Mapping[str, str]) -> list[str]:
    """--what (several to a flag, as make's WHAT), else $WHAT, plus the --group lists; none of them: what
    `make` builds with no WHAT (KUBE_ALL_TARGETS)."""
    from build.targets import default_whats, requested_whats

    whats, groups = requested_whats(request.whats, environ), list(request.groups)
    if whats and not request.whats:
        info(f"WHAT from the environment: {' '.join(whats)}")
    if not whats or groups:
        whats = list(dict.fromkeys([*whats, *default_whats(tree, groups)]))
        if not groups:
            info(f"no --what: building what `make` builds, the tree's KUBE_ALL_TARGETS ({len(whats)} targets)")
    return whats


def build_tree(tree: KubeTree, request: BuildJob, environ: Mapping[str, str]) -> list[Built]:
    """`inv build`: plan, then (unless dry run) execute and print one line per binary.
    No --what: what `make` builds with no WHAT (KUBE_ALL_TARGETS), or the --group lists."""
    whats, platforms = chosen_whats(tree, request, environ), list(request.platforms)
    debug, dry_run, force = request.debug, request.dry_run, request.force
    link_names: list[str] = []
    if request.hyperkube_links:
        from build.hyperkube import server_names

        if not any(w.strip().strip("./").rstrip("/") == "cmd/hyperkube" for w in whats):
            raise UsageError("--hyperkube-links goes with --what=cmd/hyperkube")
        link_names = server_names(tree)
    toolchain, layout, plan = make_plan(tree, whats, platforms, debug=debug, environ=environ)
    info(f"{tree.root}: {tree.era.value} era, {toolchain.version}, version {plan.version.version or '(none)'}"
         f" ({plan.version.tree_state or 'no git'})")
    for note in plan.notes:
        info(note)
    if dry_run:
        for cmd in plan.commands:
            print(cmd.shell(str(toolchain.go)))
        return []
    start = time.monotonic()
    from common.console import stdout_to_stderr
    from common.trace import TRACE, recording

    # stdout carries --json's document alone: go's and code generation's output go to stderr
    with recording(tree.root / TRACE, tree.root, "kbuild build"), \
            stdout_to_stderr() if request.json else contextlib.nullcontext():
        built = execute(tree, layout, plan, toolchain, environ, info, force=force)
    if not request.json:
        report(built, tree.root)
    if link_names:
        from build.hyperkube import make_links

        for b in built:
            if b.path.name == "hyperkube":
                links = make_links(b.path, link_names)
                info(f"hyperkube links in {b.path.parent}: {', '.join(p.name for p in links)}")
    rebuilt = sum(not b.fresh for b in built)
    seconds = time.monotonic() - start
    info(f"{len(built)} binaries ({rebuilt} built, {len(built) - rebuilt} up to date) in {seconds:.1f}s")
    if request.json:
        print(as_json(tree, plan.version.version, built, seconds))
    return built


def as_json(tree: KubeTree, version: str, built: list[Built], seconds: float) -> str:
    """`inv build --json`: the tree, its version stamp, each binary and whether it was built."""
    import json

    return json.dumps({"tree": str(tree.root), "version": version, "seconds": round(seconds, 3),
                       "binaries": [{"platform": b.platform, "path": str(b.path), "size": b.size, "sha256": b.sha256,
                                     "built": not b.fresh} for b in built]}, indent=2)

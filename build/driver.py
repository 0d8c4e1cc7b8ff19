"""Orchestration for `inv build` and `inv demo`: gather facts, plan, execute, report."""

from __future__ import annotations

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
        print(f"{rel}  {b.size / 1048576:.1f} MiB  sha256:{b.sha256}")


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


def build_tree(tree: KubeTree, request: BuildJob, environ: Mapping[str, str]) -> list[Built]:
    """`inv build`: plan, then (unless dry run) execute and print one line per binary.
    No --what: what `make` builds with no WHAT (KUBE_ALL_TARGETS), or the --group lists."""
    whats, groups, platforms = list(request.whats), list(request.groups), list(request.platforms)
    debug, dry_run, force = request.debug, request.dry_run, request.force
    if not whats or groups:
        from build.targets import default_whats

        whats = list(dict.fromkeys([*whats, *default_whats(tree, list(groups or []))]))
        if not groups:
            info(f"no --what: building what `make` builds, the tree's KUBE_ALL_TARGETS ({len(whats)} targets)")
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
    built = execute(tree, layout, plan, toolchain, environ, info, force=force)
    report(built, tree.root)
    if link_names:
        from build.hyperkube import make_links

        for b in built:
            if b.path.name == "hyperkube":
                links = make_links(b.path, link_names)
                info(f"hyperkube links in {b.path.parent}: {', '.join(p.name for p in links)}")
    rebuilt = sum(not b.fresh for b in built)
    info(f"{len(built)} binaries ({rebuilt} built, {len(built) - rebuilt} up to date)"
         f" in {time.monotonic() - start:.1f}s")
    return built

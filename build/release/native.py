"""Native mode: no build container. kbuild's own builds (the tree's flags and stamps, the shared
GOCACHE, the up-to-date skip) of every release target, written where the packaging reads them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping

from build.release.plan import OUTPUT_SUBPATH, TargetGroup, per_platform
from build.runner import Built
from build.version import VersionInfo
from workspace.tree import KubeTree


def build_binaries(tree: KubeTree, groups: list[TargetGroup], stamp: VersionInfo, environ: Mapping[str, str],
                   say: Callable[[str], None], *, force: bool = False) -> list[Built]:
    """Each platform's targets into `_output/dockerized/bin/<os>/<arch>/` (the layout
    build/lib/release.sh packages); the GOPATH link stays where `inv build` keeps it."""
    from build.golang import check_minimum, find_go
    from build.plan import BuildOptions, plan_build
    from build.runner import execute
    from build.targets import resolve_targets
    from workspace.layout import plan_layout

    toolchain = find_go(environ)
    check_minimum(toolchain, tree.minimum_go)
    layout = dataclasses.replace(plan_layout(tree, environ), output=tree.root / OUTPUT_SUBPATH)
    built: list[Built] = []
    for platform, whats in per_platform(groups).items():
        targets = resolve_targets(tree, whats)
        plan = plan_build(tree, layout, stamp, targets, BuildOptions((platform,)), environ,
                          toolchain.host_platform, staging_name=f".partial-{os.getpid()}",
                          go_version=toolchain.version)
        for note in plan.notes if not built else ():
            say(note)
        say(f"{platform}: {len(targets)} targets ({', '.join(t.name for t in targets)})")
        built += execute(tree, layout, plan, toolchain, environ, say, force=force, link_host=False)
    return built

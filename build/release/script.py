"""Script mode: the tree's own build/release.sh (or release-images.sh), offline, with the images
kbuild put in place. The reference the other modes are compared against."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from build.release.plan import ReleaseRequest, base_env
from common.errors import UsageError
from workspace.tree import KubeTree

# kube::log::status lines where release.sh moves from building to packaging.
_PACKAGING = re.compile(r"^\+\+\+ \[[^]]*\] (Building tarball|Starting tarball|Building images|packaging)|"
                        r"^\+\+\+ \[release\] packaging")


@dataclass(frozen=True)
class ScriptPlan:
    """The release.sh invocation: argv, the environment overlay, and where its log goes."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path


def plan_script(tree: KubeTree, req: ReleaseRequest, image_env: Mapping[str, str],
                extra: Mapping[str, str]) -> ScriptPlan:
    """release.sh (release-images.sh with --images-only) and its environment."""
    rel = "build/release-images.sh" if req.images_only else "build/release.sh"
    script = tree.root / rel
    if not script.is_file():
        if req.images_only:
            raise UsageError(f"{tree.root} has no {rel}: script mode can't build the images alone",
                             hint="use --mode native (kbuild's builds + the tree's build/lib/release.sh)")
        raise UsageError(f"{tree.root} has no {rel}",
                         hint="with build/package-tarballs.sh present, --mode native or --mode direct works")
    env = {**base_env(req, image_env), **extra}
    return ScriptPlan(("bash", str(script)), env, tree.root)


def run(plan: ScriptPlan, environ: Mapping[str, str], engine: Any, log: Path, out: Callable[[str], None],
        phases: Any) -> int:
    """Run it; the time up to its first packaging line counts as build, the rest as package.
    On Ctrl-C the script's process group is stopped and the containers it started removed."""
    from build.release.process import run_logged

    before = _containers(engine)
    start = time.monotonic()
    marks: list[float] = []

    def watch(line: str) -> None:
        if not marks and _PACKAGING.search(line):
            marks.append(time.monotonic())
        out(line)

    def cleanup() -> None:
        _remove_new_containers(engine, before)

    code = run_logged(plan.argv, cwd=plan.cwd, env={**environ, **plan.env}, overlay=plan.env, log=log, out=watch,
                      label=Path(plan.argv[-1]).name, on_interrupt=cleanup)
    end = time.monotonic()
    split = marks[0] if marks else end
    phases.add("build", split - start)
    phases.add("package", end - split)
    return code


def _containers(engine: Any) -> set[str]:
    try:
        return {c["Id"] for c in engine.api.containers(all=True)}
    except Exception:  # noqa: BLE001 - best effort, only used for cleanup
        return set()


def _remove_new_containers(engine: Any, before: set[str]) -> None:
    for cid in _containers(engine) - before:
        try:
            engine.api.remove_container(cid, force=True)
        except Exception:  # noqa: BLE001 - keep removing the others
            pass

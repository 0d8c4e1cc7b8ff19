"""Script mode: the tree's own build/release.sh (or release-images.sh), offline, with the images
kbuild put in place. The reference the other modes are compared against."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from build.release.modes import Mode
from build.release.modes.base import Preflight, ReleaseRun
from build.release.plan import ReleaseRequest, base_env, is_local_engine
from common.checks import Check, tool
from common.errors import UsageError
from workspace.tree import KubeTree

if TYPE_CHECKING:
    from build.release.report import Phases
    from images.engine import Engine

# kube::log::status lines where release.sh moves from building to packaging.
_PACKAGING = re.compile(r"^\+\+\+ \[[^]]*\] (Building tarball|Starting tarball|Building images|packaging)|"
                        r"^\+\+\+ \[release\] packaging")


@dataclass(frozen=True)
class ScriptPlan:
    """The release.sh invocation: argv, the environment overlay, and where its log goes."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path


def _script_rel(req: ReleaseRequest) -> str:
    return "build/release-images.sh" if req.images_only else "build/release.sh"


def plan_script(tree: KubeTree, req: ReleaseRequest, image_env: Mapping[str, str],
                extra: Mapping[str, str]) -> ScriptPlan:
    """release.sh (release-images.sh with --images-only) and its environment."""
    rel = _script_rel(req)
    script = tree.root / rel
    if not script.is_file():
        if req.images_only:
            raise UsageError(f"{tree.root} has no {rel}: script mode can't build the images alone",
                             hint="use --mode native (kbuild's builds + the tree's build/lib/release.sh)")
        raise UsageError(f"{tree.root} has no {rel}",
                         hint="with build/package-tarballs.sh present, --mode native or --mode direct works")
    env = {**base_env(req, image_env), **extra}
    return ScriptPlan(("bash", str(script)), env, tree.root)


def run_script(plan: ScriptPlan, environ: Mapping[str, str], engine: Engine | None, log: Path,
               out: Callable[[str], None], phases: Phases) -> int:
    """Run it; the time up to its first packaging line counts as build, the rest as package.
    On Ctrl-C the script's process group is stopped and the containers it started removed."""
    from build.release.process import Command, run_logged

    before = _containers(engine)
    start = time.monotonic()
    marks: list[float] = []

    def watch(line: str) -> None:
        if not marks and _PACKAGING.search(line):
            marks.append(time.monotonic())
        out(line)

    def cleanup() -> None:
        _remove_new_containers(engine, before)

    code = run_logged(Command(plan.argv, plan.cwd, environ, plan.env, Path(plan.argv[-1]).name), log=log, out=watch,
                      on_interrupt=cleanup)
    end = time.monotonic()
    split = marks[0] if marks else end
    phases.add("build", split - start)
    phases.add("package", end - split)
    return code


def _containers(engine: Engine | None) -> set[str]:
    if engine is None:
        return set()
    try:
        return {c["Id"] for c in engine.api.containers(all=True)}
    except Exception:  # noqa: BLE001 - best effort, only used for cleanup
        return set()


def _remove_new_containers(engine: Engine | None, before: set[str]) -> None:
    if engine is None:
        return
    for cid in _containers(engine) - before:
        try:
            engine.api.remove_container(cid, force=True)
        except Exception:  # noqa: BLE001 - keep removing the others
            pass


# --- what release.sh needs, read from the tree's own build scripts --------------------------------

def _code(tree: KubeTree, rel: str) -> str:
    """A build script of the tree without its comments (a comment may still mention rsync)."""
    from workspace.shell import code

    return code(tree.read(rel) or "")


def uses_rsync_dance(tree: KubeTree) -> bool:
    """release.sh of trees up to v1.34 syncs the tree into a data container over rsync (the
    rsync command or rsyncd in build/common.sh's code); the newest run kube-cross directly."""
    return bool(re.search(r"\brsync", _code(tree, "build/common.sh")))


def publishes_port(tree: KubeTree) -> bool:
    """The rsync container of trees up to v1.34 publishes its port (docker run -p), which needs the
    engine's bridge network."""
    code = _code(tree, "build/common.sh")
    # A port mapping starts with an address or a port (-p 127.0.0.1:..., -p "${..._PORT}:..."), which
    # tells it from `mkdir -p`.
    return bool(re.search(r"""KUBE_RSYNC_PORT|\s(?:-p|--publish)[\s=]+["']?(?:\d[\d.]*:|\$\{?\w*PORT\b)""", code))


def mounts_tree(tree: KubeTree) -> bool:
    """The build runs kube-cross with the tree bind-mounted (`docker run --volume ${KUBE_ROOT}:...`,
    in build/common.sh or build/release.sh): the newest trees' build, and the sample's."""
    for rel in ("build/common.sh", "build/release.sh"):
        if re.search(r"""(?:--volume|-v)[\s=]+["']?\$\{?KUBE_ROOT\}?:""", _code(tree, rel)):
            return True
    return False


def _loopback(host: str | None) -> bool:
    """A TCP engine on this machine sees the same paths as a unix socket one."""
    m = re.match(r"^(?:tcp|http|https)://\[?([^\]/]+?)\]?(?::\d+)?/?$", host or "")
    return bool(m and m.group(1) in ("127.0.0.1", "localhost", "::1"))


def _direct_run_checks(tree: KubeTree, environ: Mapping[str, str], host: str | None) -> list[Check]:
    """What release.sh of a tree that runs kube-cross directly needs, instead of rsync and a port."""
    return [
        tool("docker", environ, "install the docker CLI (apt-get install docker-ce-cli)",
             why="release.sh runs kube-cross itself with `docker run` (no rsync, no published port)"),
        tool("tar", environ, "apt-get install tar", why="release.sh packages with GNU tar"),
        Check.of("tree mount", is_local_engine(host) or _loopback(host),
                 f"{host or 'the default socket'} (release.sh bind-mounts {tree.root} into kube-cross, "
                 "so the engine must run on this machine)",
                 "use a local engine (unix socket or loopback TCP), or --mode native"),
    ]


def _bridge_check(engine: Engine) -> Check:
    try:
        ok = bool(engine.api.networks(names=["bridge"]))
    except Exception:  # noqa: BLE001
        ok = False
    return Check.of("bridge network", ok,
                    "release.sh publishes its rsync container's port (needs the engine's bridge)",
                    "start dockerd with its default bridge, or use --mode direct / --mode native (no port, no bridge)")


@dataclass(frozen=True)
class ScriptMode:
    """The tree's build/release.sh builds and packages; kbuild only prepares and watches."""

    mode: Mode = Mode.SCRIPT
    runs_kube_cross: bool = True

    def refuse_early(self, tree: KubeTree, req: ReleaseRequest, image_env: Mapping[str, str]) -> None:
        plan_script(tree, req, image_env, {})

    def tree_checks(self, pre: Preflight) -> list[Check]:
        rel = _script_rel(pre.req)
        checks = [Check.of(rel, (pre.tree.root / rel).is_file(), f"{rel} in the tree",
                           "use --mode native (the tree's build/lib/release.sh packages)")]
        if uses_rsync_dance(pre.tree):
            checks.append(tool("rsync", pre.environ, "apt-get install rsync", why="release.sh syncs the tree with it"))
        elif mounts_tree(pre.tree):
            checks += _direct_run_checks(pre.tree, pre.environ, pre.host)
        return checks

    def engine_checks(self, pre: Preflight) -> list[Check]:
        if pre.engine is not None and publishes_port(pre.tree):
            return [_bridge_check(pre.engine)]
        return []

    def release(self, run: ReleaseRun) -> dict[str, str]:
        from build.release.package import no_partial_tarballs
        from build.release.process import failed

        plan = plan_script(run.tree, run.req, run.image_env, run.extra)
        with no_partial_tarballs(run.tree):  # release.sh packages at its end: a failure there leaves no half tarball
            code = run_script(plan, run.env, run.engine, run.log, run.out, run.phases)
            if code != 0:
                raise failed(f"{Path(plan.argv[-1]).relative_to(run.tree.root)} failed after {run.phases.total:.0f}s",
                             code, run.log)
        return plan.env

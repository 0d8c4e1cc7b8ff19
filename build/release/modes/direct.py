"""Direct mode: the tree's kube-cross image run directly, as Kubernetes >= 1.35 does: the tree
bind-mounted, no kube-build image, no data or rsync container, no published port, no network.
Each container is removed on success, on failure and on Ctrl-C."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from build.release.modes import Mode
from build.release.modes.base import (
    PackagesOnThisHost,
    Preflight,
    ReleaseRun,
    build_then_package,
)
from build.release.plan import ContainerSpec, is_local_engine
from common.checks import Check
from common.errors import KBError, UsageError
from common.progress import Heartbeat
from common.redact import redact

if TYPE_CHECKING:
    from images.engine import Engine


def run_all(engine: Engine, specs: list[ContainerSpec], log: Path, out: Callable[[str], None]) -> None:
    """Run each container in turn; the first failure raises with its exit code and the log."""
    import errno

    from common.outputs import os_failure

    for spec in specs:
        try:
            code = run_one(engine, spec, log, out)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            # A full disk while logging: say which file and which step, not "(no path given)".
            raise os_failure(exc, f"write the log of `{' '.join(spec.command)}` in {spec.image}", log) from None
        if code != 0:
            from build.release.process import failed

            raise failed(f"`{' '.join(spec.command)}` in {spec.image} failed", code, log,
                         hint="the lines above say why")


def run_one(engine: Engine, spec: ContainerSpec, log: Path, out: Callable[[str], None]) -> int:
    """docker run --rm, followed live: create, start, stream the logs, wait, always remove."""
    from docker.errors import APIError, NotFound

    api = engine.api
    try:
        api.remove_container(spec.name, force=True)  # a leftover of an earlier, killed run
    except NotFound:
        pass
    host_config = api.create_host_config(binds=spec.binds, network_mode=spec.network)
    try:
        created = api.create_container(spec.image, command=list(spec.command), environment=spec.env,
                                       working_dir=spec.working_dir, user=spec.user or "", name=spec.name,
                                       host_config=host_config, labels=spec.labels)
    except APIError as exc:
        raise KBError(f"cannot create the build container from {spec.image}: {exc.explanation or exc}",
                      hint="run `inv images` so kube-cross is present") from None
    cid = created["Id"]
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with log.open("a", encoding="utf-8", errors="replace", buffering=1) as fh, \
                Heartbeat(" ".join(spec.command)) as beat:
            fh.write(redact(f"# docker run {spec.image} {' '.join(spec.command)}\n# binds: {spec.binds}\n"))
            api.start(cid)
            pending = b""
            for chunk in engine.follow_logs(cid):  # no deadline on a quiet build, but on the engine
                beat.touch()
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for raw in lines:
                    line = redact(raw.decode("utf-8", "replace"))  # the log is published with the report
                    fh.write(line + "\n")
                    out(line)
            if pending:
                line = redact(pending.decode("utf-8", "replace"))
                fh.write(line + "\n")
                out(line)
            return int(api.wait(cid).get("StatusCode", 1))
    finally:
        try:
            api.remove_container(cid, force=True)
        except Exception:  # noqa: BLE001 - the engine may be gone; nothing more to do
            pass


def _build(run: ReleaseRun, build_env: dict[str, str]) -> None:
    """`make cross` (and the tests) in the tree's kube-cross, the tree and the host's GOCACHE mounted."""
    from build.release.plan import direct_specs, host_gocache

    if run.cross is None:
        raise UsageError("this tree names no kube-cross image: direct mode has nothing to run",
                         hint="use --mode native")
    if run.req.engines:
        _build_on_engines(run, build_env)
        return
    if run.engine is None:  # the preflight's engine row stops a release without one before this
        raise KBError("direct mode needs an engine and none answered",
                      hint="start dockerd or set DOCKER_HOST / --docker-host")
    rootless = "rootless" in " ".join(run.engine.info().get("SecurityOptions") or [])
    uid_gid = None if rootless else f"{os.getuid()}:{os.getgid()}"
    cache = host_gocache(run.env)
    cache.mkdir(parents=True, exist_ok=True)
    specs = direct_specs(run.tree, run.req, run.cross.ref.short, build_env, gocache=cache, uid_gid=uid_gid,
                         name_base=f"kbuild-cross-{os.getpid()}")
    run_all(run.engine, specs, run.log, run.out)


_IMAGES_LOCK = threading.Lock()  # one images task at a time: its table and pulls do not interleave


def _build_on_engines(run: ReleaseRun, build_env: dict[str, str]) -> None:
    """--engine URL…: each platform's `make cross` on one of the engines, through volumes (engines.fanout),
    the binaries back in this tree; the tests (without --quick) then run here, as without --engine."""
    from dataclasses import replace

    from build.release.plan import direct_specs, host_gocache, per_platform, release_groups
    from engines.fanout import FanoutJob, build_on_engines

    assert run.cross is not None  # _build refused a tree without one
    cross = run.cross
    req = run.req
    groups = release_groups(run.tree, build_env, images_only=req.images_only, conformance=req.conformance)
    platforms = per_platform(groups)
    if not platforms:
        raise UsageError("--engine: this release builds no platform (check --platform against the tree's lists)")
    name_base = f"kbuild-cross-{os.getpid()}"

    def spec_for(platform: str) -> ContainerSpec:
        one = replace(req, platforms=(platform,))
        return direct_specs(run.tree, one, cross.ref.short, build_env, gocache=Path("/nonexistent"), uid_gid=None,
                            name_base=name_base)[0]

    def ensure_cross(url: str) -> None:
        from images import driver as images_driver

        with _IMAGES_LOCK:
            images_driver.run(run.tree, run.env, mirrors=list(req.mirrors), layout=req.layout, docker_host=url,
                              only=[cross.ref.name])

    job = FanoutJob(tree_root=run.tree.root, environ=run.env, engines=req.engines, platforms=platforms,
                    spec_for=spec_for, cross=cross.ref.short, ensure_cross=None if req.skip_images else ensure_cross,
                    run_container=run_one, log=run.log, out=run.out)
    run.report["platforms"] = build_on_engines(job)
    run.report["engines"] = [redact(u) for u in req.engines]
    if req.run_tests and not req.images_only:  # the tests, on this host's engine with the tree mounted
        if run.engine is None:
            raise KBError("the tests (a release without --quick) run on this host's engine and none answered",
                          hint="start dockerd here, or add --quick")
        cache = host_gocache(run.env)
        cache.mkdir(parents=True, exist_ok=True)
        uid_gid = None if "rootless" in " ".join(run.engine.info().get("SecurityOptions") or []) \
            else f"{os.getuid()}:{os.getgid()}"
        specs = direct_specs(run.tree, req, cross.ref.short, build_env, gocache=cache, uid_gid=uid_gid,
                             name_base=name_base)
        run_all(run.engine, specs[1:], run.log, run.out)


@dataclass(frozen=True)
class DirectMode(PackagesOnThisHost):
    """kube-cross run directly (no rsync, no published port), then the tree's packaging on this host."""

    mode: Mode = Mode.DIRECT
    runs_kube_cross: bool = True

    def engine_checks(self, pre: Preflight) -> list[Check]:
        if pre.req.engines:  # the build goes to the engines through their API; this host packages
            rows = [Check("engines", "ok", f"{len(pre.req.engines)} engine(s) build: "
                                           f"{', '.join(redact(u) for u in pre.req.engines)}")]
            if pre.req.run_tests:
                rows.append(Check.of("local engine", is_local_engine(pre.host), f"{pre.host or 'the default socket'}"
                                     " (the tests bind-mount the tree)", "add --quick, or use a local engine"))
            return rows
        return [Check.of("local engine", is_local_engine(pre.host), f"{pre.host or 'the default socket'}"
                         " (direct mode bind-mounts the tree, which must be on the engine's machine)",
                         "use --mode script (rsync to a remote engine) or --mode native")]

    def release(self, run: ReleaseRun) -> dict[str, str]:
        return build_then_package(run, _build)

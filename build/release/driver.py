"""`inv release`: images → preflight → build (per mode) → the tree's packaging → report.

The mode modules do the work; this file only orders the phases and writes the report.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from build.release.modes.base import ReleaseMode, ReleaseRun
from build.release.modes.registry import MODES
from build.release.plan import ReleaseRequest, check_request
from build.release.preflight import images_for_mode
from build.release.report import Phases, ReleaseResult, clear_previous, write_report, write_sums
from common.errors import KBError, UsageError
from common.units import size
from workspace.tree import KubeTree

if TYPE_CHECKING:
    from build.release.bases import PlatformBases
    from build.release.package import ImageResult
    from images.engine import Engine
    from images.resolve import ImageSpec


def default_out(line: str) -> None:
    from common.redact import redact

    print(redact(line), flush=True)


def _epoch(build_date: str) -> str:
    when = _dt.datetime.strptime(build_date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
    return str(int(when.timestamp()))


def run_release(tree: KubeTree, environ: Mapping[str, str], request: ReleaseRequest,
                out: Callable[[str], None] = default_out) -> ReleaseResult:
    """Every mode, one report. Bad input and a failed preflight stop it before anything runs. With
    ``--json`` everything but the report goes to stderr, and the report (as written) to stdout."""
    import contextlib

    from common.console import stdout_to_stderr
    from common.trace import TRACE, recording
    from reports.html import write_beside

    # --json: the scripts' output, the tables and the tarball lines go to stderr
    with stdout_to_stderr() if request.json else contextlib.nullcontext(), \
            recording(tree.root / TRACE, tree.root, "kbuild release") as rec:
        result = _release(tree, environ, request, out)
    if result.report is not None:
        events = rec.document()["traceEvents"]
        write_beside(result.report, tree.root, f"kbuild release ({result.mode})", result.body,
                     events if isinstance(events, list) else [])
    if request.json and result.report is not None:
        from common.errors import file_op

        with file_op("read", result.report):
            sys.stdout.write(result.report.read_text())
        sys.stdout.flush()
    return result


def _release(tree: KubeTree, environ: Mapping[str, str], request: ReleaseRequest,
             out: Callable[[str], None]) -> ReleaseResult:
    from build.release import package as pkg
    from build.version import compute
    from common.cli import info
    from images import driver as images_driver
    from images.resolve import resolve
    from workspace.layout import ensure_workspace, plan_layout

    req = check_request(request)
    mode = MODES[req.mode]
    specs = resolve(tree, environ)
    image_env = images_driver.offline_env(tree, specs)
    _refuse_early(tree, environ, req, mode, image_env)
    stamp = compute(tree.root, environ)
    env = dict(environ)
    if stamp.build_date and not env.get("SOURCE_DATE_EPOCH"):
        # Every mode stamps the date kbuild computes (the commit time), so modes compare equal.
        env["SOURCE_DATE_EPOCH"] = _epoch(stamp.build_date)
    ensure_workspace(plan_layout(tree, env))
    phases = Phases()
    engine = _images_and_preflight(tree, env, req, specs, phases)
    bases = _platform_bases(tree, env, req, specs, engine, phases)

    now = _dt.datetime.now()
    log = tree.root / "_output" / "logs" / f"release-{req.mode}-{now.strftime('%Y%m%d-%H%M%S')}.log"
    tars = tree.root / "_output" / "release-tars"
    removed = clear_previous(tars)
    if removed:
        info(f"removed the previous release's {len(removed)} files from {tars}")
    extra = {"SOURCE_DATE_EPOCH": env["SOURCE_DATE_EPOCH"]} if "SOURCE_DATE_EPOCH" in env else {}
    if bases is not None:
        from build.release.bases import shim_env

        extra.update(shim_env(tree, env, bases))
    info(f"release ({req.mode}{', quick' if req.quick else ''}{', images only' if req.images_only else ''}) of "
         f"{tree.root} at {stamp.version or '(no version)'}; log: {log}")
    cross = next((s for s in specs if s.role == "kube-cross"), None)
    run = ReleaseRun(tree, req, env, image_env, extra, engine, stamp, cross, log, out, phases)
    try:
        overlay = mode.release(run)
    finally:
        if bases is not None and engine is not None:
            from build.release.bases import restore

            restore(engine, bases)
    _check_arches(tree, bases)
    overlay.pop("PATH", None)  # the shim's directory before the user's PATH: the report names the bases

    results = _server_images(engine, pkg.image_tars(tree), req, phases)
    images = _image_entries(results, loaded=req.images_only or bool(req.push))
    failed = [e for r in results for e in r.errors or []]
    tarballs = [] if req.images_only else write_sums(tars)
    body: dict[str, object] = {
        "mode": req.mode.value, "quick": req.quick, "images_only": req.images_only,
        "version": {"gitVersion": stamp.version, "gitCommit": stamp.commit, "gitTreeState": stamp.tree_state,
                    "buildDate": stamp.build_date},
        "tarballs": tarballs, "server_images": images, "images": _images_used(engine, images_for_mode(specs, req.mode)),
        "durations": {**phases.seconds, "total": phases.total}, "log": str(log), "environment": overlay,
        **({"platform_bases": bases.report()} if bases is not None else {}), **run.report}
    report = write_report(req.report_path or tars / "release-report.json", body, root=tree.root,
                          user_named=req.report_path is not None)
    for t in tarballs:
        print(f"{tars / t['name']}  {size(t['size'])}  sha256:{t['sha256']}")
    for result in results:
        for name, digest in (result.pushed or {}).items():
            default_out(f"{name}@{digest}")
    info(f"release ({req.mode}) done in {phases.total:.0f}s "
         f"({', '.join(f'{k} {v:.0f}s' for k, v in phases.seconds.items())}); report: {report}")
    if failed:
        raise KBError(f"{len(failed)} image push(es) failed: {failed[0]}", hint="see the report for each image")
    return ReleaseResult(0, log, tarballs, phases.total, report, images, req.mode.value, body)


def _refuse_early(tree: KubeTree, environ: Mapping[str, str], req: ReleaseRequest, mode: ReleaseMode,
                  image_env: Mapping[str, str]) -> None:
    """A tree that lacks what this mode runs, or what --images-only builds, is refused before images or builds;
    so is an output path a release can't write."""
    mode.refuse_early(tree, req, image_env)
    if req.images_only:
        from build.release.plan import release_groups

        if not release_groups(tree, environ, images_only=True, conformance=req.conformance):
            raise UsageError("--images-only: this tree lists no server image targets "
                             "(kube::golang::server_image_targets)", hint="drop --images-only for a full release")
    check_release_outputs(tree, req.report_path)


def _images_and_preflight(tree: KubeTree, env: dict[str, str], req: ReleaseRequest, specs: list[ImageSpec],
                          phases: Phases) -> Engine | None:
    """The images the mode uses (unless --skip-images), then every check; returns the engine (None if none answered)."""
    from build.release import preflight
    from images import driver as images_driver
    from images.engine import Engine, EngineError

    needed = images_for_mode(specs, req.mode)
    if req.engines and not req.run_tests:  # kube-cross runs on the engines only (the images task puts it there)
        needed = [s for s in needed if s.role != "kube-cross"]
    if not req.skip_images and needed:
        with phases.phase("images"):
            images_driver.run(tree, env, mirrors=list(req.mirrors), layout=req.layout, docker_host=req.docker_host,
                              only=[s.ref.name for s in needed])
    engine: Engine | None
    try:
        engine = Engine.connect(env, req.docker_host)
    except EngineError:
        engine = None
    preflight.require_ok(preflight.checks_for(tree, req, engine, specs, env), req.mode)
    return engine


def _platform_bases(tree: KubeTree, env: Mapping[str, str], req: ReleaseRequest, specs: list[ImageSpec],
                    engine: Engine | None, phases: Phases) -> PlatformBases | None:
    """Each server platform's variant of every base image, when the release's server images are for more
    than the engine's own platform (not with --skip-images: then only the check after the packaging)."""
    from build.release import bases

    if req.skip_images or engine is None:
        return None
    used = [s for s in images_for_mode(specs, req.mode) if s.role != "kube-cross"]
    platforms = bases.server_platforms(tree, env, req)
    if not used or not bases.needs_variants(platforms, bases.engine_platform(engine)):
        return None
    with phases.phase("images-platforms"):
        return bases.pull(tree, env, req, engine, used, platforms)


def _check_arches(tree: KubeTree, bases: PlatformBases | None) -> None:
    """Every server image the packaging wrote is for the arch it is filed under, else one error."""
    from build.release import package as pkg
    from build.release.bases import check_arches

    wrong = check_arches(pkg.image_tars(tree))
    if wrong:
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        hint = ("the mirror's base images must be multi-platform indexes listing every --platform" if bases is not None
                else "drop --skip-images, or pull each arch's base images with `inv images --platform`")
        raise KBError(f"wrong server image: {wrong[0]}{more}; it was built FROM another arch's base image",
                      hint=hint)


def _server_images(engine: Engine | None, tars: list[Path], req: ReleaseRequest, phases: Phases) -> list[ImageResult]:
    """The server image tars: loaded (and pushed) with --images-only or --push, else only read for their tags."""
    from build.release import package as pkg
    from common.cli import info

    if not (req.images_only or req.push):
        return [pkg.ImageResult(str(t), pkg.repo_tags(t)) for t in tars]
    if engine is None:  # the preflight's engine row stops a release without one before this
        raise KBError("no engine to load the server images into", hint="start dockerd or set DOCKER_HOST")
    with phases.phase("images-load" if not req.push else "images-push"):
        return pkg.load_and_push(engine, tars, list(req.push), info)


def _image_entries(results: list[ImageResult], *, loaded: bool) -> list[dict[str, object]]:
    """The report's server_images: every field once loaded (and pushed), else the tar and its tags."""
    if loaded:
        return [dict(vars(r)) for r in results]
    return [{"tar": r.tar, "tags": r.tags} for r in results]


# What the release modes write under _output (the tree's scripts and kbuild's builds).
RELEASE_OUTPUTS = ("logs", "release-tars", "release-stage", "release-images", "dockerized", "local", "kbuild")


def check_release_outputs(tree: KubeTree, report_path: Path | None) -> None:
    """The output guard, before anything is written: no symlink out of _output where a release writes,
    and a --report PATH that can be written (its directory exists, it is not a directory)."""
    from common.outputs import check_inside, output_target

    check_inside(tree.root, *(tree.root / "_output" / d for d in RELEASE_OUTPUTS))
    if report_path is not None:
        check_inside(tree.root, report_path)
        output_target(report_path, "--report", "release-report.json")


def _images_used(engine: Engine | None, specs: list[ImageSpec]) -> list[dict[str, object]]:
    used: list[dict[str, object]] = []
    for spec in specs:
        try:
            image = engine.image(spec.ref.short) if engine else None
        except Exception:  # noqa: BLE001 - the report says "absent" rather than failing a finished release
            image = None
        digests = sorted({d.split("@", 1)[1] for d in (image or {}).get("RepoDigests") or []})
        used.append({"name": spec.ref.name, "role": spec.role, "present": image is not None,
                     "id": (image or {}).get("Id", ""), "digests": digests})
    return used

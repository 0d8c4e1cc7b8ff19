"""`inv release`: images → preflight → build (per mode) → the tree's packaging → report.

The mode modules do the work; this file only orders the phases and writes the report.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from build.release.plan import VERSION_DEFS, ReleaseRequest, check_request
from build.release.report import Phases, ReleaseResult, clear_sums, write_report, write_sums
from common.errors import KBError, UsageError
from workspace.tree import KubeTree


def default_out(line: str) -> None:
    from common.redact import redact

    print(redact(line), flush=True)


def _epoch(build_date: str) -> str:
    when = _dt.datetime.strptime(build_date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
    return str(int(when.timestamp()))


def run_release(tree: KubeTree, environ: Mapping[str, str], *, mode: str = "script", quick: bool = False,
                platforms: list[str] | None = None, mirrors: list[str] | None = None, layout: str = "nested",
                skip_images: bool = False, docker_host: str | None = None, report_path: Path | None = None,
                images_only: bool = False, push: list[str] | None = None, conformance: bool = False,
                out: Callable[[str], None] = default_out) -> ReleaseResult:
    """Every mode, one report. Bad input and a failed preflight stop it before anything runs."""
    from build.release import package as pkg
    from build.release import preflight
    from build.version import compute
    from common.cli import info
    from images import driver as images_driver
    from images.engine import Engine, EngineError
    from images.resolve import resolve
    from workspace.layout import ensure_workspace, plan_layout

    req = check_request(ReleaseRequest(mode=mode, quick=quick, platforms=tuple(platforms or ()),
                                       images_only=images_only, conformance=conformance,
                                       push=tuple(push or ()), docker_host=docker_host))
    specs = resolve(tree, environ)
    image_env = images_driver.offline_env(tree, specs)
    # Refuse a tree that lacks what this mode runs, before images or builds.
    if mode == "script":
        from build.release.script import plan_script

        plan_script(tree, req, image_env, {})
    else:
        pkg.packaging_argv(tree, images_only)
    if images_only:
        from build.release.plan import release_groups

        if not release_groups(tree, environ, images_only=True, conformance=conformance):
            raise UsageError("--images-only: this tree lists no server image targets "
                             "(kube::golang::server_image_targets)", hint="drop --images-only for a full release")
    check_release_outputs(tree, report_path)
    stamp = compute(tree.root, environ)
    env = dict(environ)
    if stamp.build_date and not env.get("SOURCE_DATE_EPOCH"):
        # Every mode stamps the date kbuild computes (the commit time), so modes compare equal.
        env["SOURCE_DATE_EPOCH"] = _epoch(stamp.build_date)
    ensure_workspace(plan_layout(tree, env))
    phases = Phases()
    needed = preflight.images_for_mode(specs, mode)
    if not skip_images and needed:
        with phases.phase("images"):
            images_driver.run(tree, env, mirrors=mirrors or [], layout=layout, docker_host=docker_host,
                              only=[s.ref.name for s in needed])
    try:
        engine = Engine.connect(env, docker_host)
    except EngineError:
        engine = None
    preflight.require_ok(preflight.checks_for(tree, req, engine, specs, env), mode)

    now = _dt.datetime.now()
    log = tree.root / "_output" / "logs" / f"release-{mode}-{now.strftime('%Y%m%d-%H%M%S')}.log"
    tars = tree.root / "_output" / "release-tars"
    clear_sums(tars)
    extra = {"SOURCE_DATE_EPOCH": env["SOURCE_DATE_EPOCH"]} if "SOURCE_DATE_EPOCH" in env else {}
    info(f"release ({mode}{', quick' if quick else ''}{', images only' if images_only else ''}) of "
         f"{tree.root} at {stamp.version or '(no version)'}; log: {log}")
    overlay: dict[str, str]
    if mode == "script":
        overlay = _script(tree, req, image_env, extra, env, engine, log, out, phases)
    else:
        cross = next((s for s in specs if s.role == "kube-cross"), None)
        overlay = _build_then_package(tree, req, image_env, extra, env, engine, stamp, cross, log, out, phases)

    images: list[dict[str, Any]] = []
    tars_made = pkg.image_tars(tree)
    if images_only or req.push:
        with phases.phase("images-load" if not req.push else "images-push"):
            results = pkg.load_and_push(engine, tars_made, list(req.push), info)
        images = [vars(r) for r in results]
        failed = [e for r in results for e in r.errors or []]
    else:
        images = [{"tar": str(t), "tags": pkg.repo_tags(t)} for t in tars_made]
        failed = []
    tarballs = [] if images_only else write_sums(tars)
    used = _images_used(engine, preflight.images_for_mode(specs, mode))
    body = {"mode": mode, "quick": quick, "images_only": images_only,
            "version": {"gitVersion": stamp.version, "gitCommit": stamp.commit, "gitTreeState": stamp.tree_state,
                        "buildDate": stamp.build_date},
            "tarballs": tarballs, "server_images": images, "images": used,
            "durations": {**phases.seconds, "total": phases.total}, "log": str(log), "environment": overlay}
    report = write_report(report_path or tars / "release-report.json", body, root=tree.root,
                          user_named=report_path is not None)
    for t in tarballs:
        print(f"{tars / t['name']}  {t['size'] / 1048576:.1f} MiB  sha256:{t['sha256']}")
    for img in images:
        for name, digest in (img.get("pushed") or {}).items():
            default_out(f"{name}@{digest}")
    info(f"release ({mode}) done in {phases.total:.0f}s "
         f"({', '.join(f'{k} {v:.0f}s' for k, v in phases.seconds.items())}); report: {report}")
    if failed:
        raise KBError(f"{len(failed)} image push(es) failed: {failed[0]}", hint="see the report for each image")
    return ReleaseResult(0, log, tarballs, phases.total, report, images, mode)


def _script(tree: KubeTree, req: ReleaseRequest, image_env: dict[str, str], extra: dict[str, str],
            env: dict[str, str], engine: Any, log: Path, out: Callable[[str], None], phases: Phases) -> dict[str, str]:
    from build.release import script
    from build.release.package import no_partial_tarballs
    from build.release.process import failed

    plan = script.plan_script(tree, req, image_env, extra)
    with no_partial_tarballs(tree):  # release.sh packages at its end: a failure there leaves no half tarball
        code = script.run(plan, env, engine, log, out, phases)
        if code != 0:
            raise failed(f"{Path(plan.argv[-1]).relative_to(tree.root)} failed after {phases.total:.0f}s", code, log)
    return plan.env


def _build_then_package(tree: KubeTree, req: ReleaseRequest, image_env: dict[str, str], extra: dict[str, str],
                        env: dict[str, str], engine: Any, stamp: Any, cross: Any, log: Path,
                        out: Callable[[str], None], phases: Phases) -> dict[str, str]:
    from build.release import package as pkg
    from build.release.plan import base_env, packaging_env, release_groups
    from common.cli import info

    defs = tree.root / VERSION_DEFS
    content = "\n".join(stamp.shell_lines()) + "\n"  # kube::version::save_version_vars' format
    if not defs.is_file() or defs.read_text() != content:
        # Rewritten only when it changes: it is a tree file, so its mtime is in the up-to-date fingerprint.
        from common.outputs import write_file

        write_file(defs, content, step="the version file")
    build_env = {**env, **base_env(req, {})}
    with phases.phase("build"):
        if req.mode == "native":
            from build.release.native import build_binaries

            groups = release_groups(tree, build_env, images_only=req.images_only, conformance=req.conformance)
            built = build_binaries(tree, groups, stamp, env, info)
            rebuilt = sum(not b.fresh for b in built)
            info(f"{len(built)} binaries ({rebuilt} built, {len(built) - rebuilt} up to date)")
        else:
            from build.release import direct
            from build.release.plan import direct_specs, host_gocache

            if cross is None:
                raise UsageError("this tree names no kube-cross image: direct mode has nothing to run",
                                 hint="use --mode native")
            rootless = "rootless" in " ".join(engine.info().get("SecurityOptions") or [])
            uid_gid = None if rootless else f"{os.getuid()}:{os.getgid()}"
            cache = host_gocache(env)
            cache.mkdir(parents=True, exist_ok=True)
            specs = direct_specs(tree, req, cross.ref.short, build_env, gocache=cache, uid_gid=uid_gid,
                                 name_base=f"kbuild-cross-{os.getpid()}")
            direct.run_all(engine, specs, log, out)
    overlay = {**packaging_env(tree, req, image_env), **extra}
    with phases.phase("package"):
        pkg.run_packaging(tree, pkg.packaging_argv(tree, req.images_only), env, overlay, log, out)
    return overlay


# What the release modes write under _output (the tree's scripts and kbuild's builds).
RELEASE_OUTPUTS = ("logs", "release-tars", "release-stage", "release-images", "dockerized", "local")


def check_release_outputs(tree: KubeTree, report_path: Path | None) -> None:
    """The output guard, before anything is written: no symlink out of _output where a release writes,
    and a --report PATH that can be written (its directory exists, it is not a directory)."""
    from common.outputs import check_inside, output_target

    check_inside(tree.root, *(tree.root / "_output" / d for d in RELEASE_OUTPUTS))
    if report_path is not None:
        check_inside(tree.root, report_path)
        output_target(report_path, "--report", "release-report.json")


def _images_used(engine: Any, specs: list[Any]) -> list[dict[str, Any]]:
    used = []
    for spec in specs:
        try:
            image = engine.image(spec.ref.short) if engine else None
        except Exception:  # noqa: BLE001 - the report says "absent" rather than failing a finished release
            image = None
        digests = sorted({d.split("@", 1)[1] for d in (image or {}).get("RepoDigests") or []})
        used.append({"name": spec.ref.name, "role": spec.role, "present": image is not None,
                     "id": (image or {}).get("Id", ""), "digests": digests})
    return used

"""`inv release`: drive the tree's own build/release.sh, offline, with the images kbuild put in place.

Plan (pure): the command and its environment. Preflight: what release.sh needs,
checked before anything runs. Run: output streamed live and kept in a log;
Ctrl-C stops the script and removes the containers it started. Finish:
SHA256SUMS, a line per tarball and a JSON report.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from common.errors import KBError, ToolError, UsageError
from common.system import mem_available_gb, sha256_of
from workspace.tree import KubeTree

MIN_DISK_GB = 10.0
MIN_MEMORY_GB = 4.0


@dataclass(frozen=True)
class ReleasePlan:
    """The release.sh invocation: argv, the environment overlay, and where its log goes."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    log: Path
    tars: Path
    platforms: tuple[str, ...] = ()


def plan_release(tree: KubeTree, environ: Mapping[str, str], *, quick: bool, platforms: list[str],
                 image_env: list[str], docker_host: str | None, now: _dt.datetime) -> ReleasePlan:
    """release.sh's environment: offline images, quick mode, platforms, the engine to use."""
    script = tree.root / "build" / "release.sh"
    if not script.is_file():
        raise UsageError(f"{tree.root} has no build/release.sh", hint="release builds need a full Kubernetes tree")
    env: dict[str, str] = {}
    for line in image_env:  # "export NAME=value" lines from images --env
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value.strip("'")
    if quick:  # what `make quick-release` sets
        env["KUBE_RELEASE_RUN_TESTS"] = "n"
        env["KUBE_FASTBUILD"] = "true"
    for p in platforms:
        if "/" not in p or " " in p:
            raise UsageError(f"--platform {p!r}: expected os/arch, e.g. linux/arm64")
    if platforms:
        env["KUBE_BUILD_PLATFORMS"] = " ".join(platforms)
        env.pop("KUBE_FASTBUILD", None)  # explicit platforms win over the fast build's linux/amd64
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    stamp = now.strftime("%Y%m%d-%H%M%S")
    return ReleasePlan(("bash", str(script)), env, tree.root, tree.root / "_output" / "logs" / f"release-{stamp}.log",
                       tree.root / "_output" / "release-tars", tuple(platforms))


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def preflight(tree: KubeTree, plan: ReleasePlan, engine: Any, kube_cross: str | None,
              environ: Mapping[str, str]) -> list[Check]:
    """What release.sh needs: bash, rsync (where the tree uses it), the engine, kube-cross, disk, memory."""
    checks = [Check("bash", bool(shutil.which("bash", path=environ.get("PATH"))), "bash on PATH", "apt-get install bash")]
    if "rsync" in (tree.read("build/common.sh") or ""):
        checks.append(Check("rsync", bool(shutil.which("rsync", path=environ.get("PATH"))),
                            "rsync on PATH (release.sh syncs the tree with it)", "apt-get install rsync"))
    checks.append(Check("engine", engine is not None, getattr(engine, "host", "no engine"),
                        "start dockerd or set DOCKER_HOST / --docker-host"))
    if kube_cross:
        present = engine is not None and engine.image(kube_cross) is not None
        checks.append(Check("kube-cross", present, kube_cross,
                            "run `inv images` (with --mirror where the canonical registry is unreachable)"))
    min_disk = float(environ.get("KBUILD_MIN_DISK_GB", MIN_DISK_GB))
    free = shutil.disk_usage(tree.root).free / 2**30
    checks.append(Check("disk", free >= min_disk, f"{free:.1f} GiB free under {tree.root} (need {min_disk:g})",
                        "free some space (inv clean, docker system prune)"))
    min_mem = float(environ.get("KBUILD_MIN_MEMORY_GB", MIN_MEMORY_GB))
    mem = mem_available_gb()
    checks.append(Check("memory", mem >= min_mem, f"{mem:.1f} GiB available (need {min_mem:g})",
                        "the link steps need several GB: close other work or use a bigger machine"))
    return checks


def _containers(engine: Any) -> set[str]:
    try:
        return {c["Id"] for c in engine.api.containers(all=True)}
    except Exception:  # noqa: BLE001 - best effort, only used for cleanup
        return set()


def run_script(plan: ReleasePlan, environ: Mapping[str, str], engine: Any,
               out: Callable[[str], None]) -> int:
    """Run release.sh with output streamed to ``out`` and the log; on Ctrl-C stop it and its containers."""
    plan.log.parent.mkdir(parents=True, exist_ok=True)
    before = _containers(engine) if engine is not None else set()
    env = {**environ, **plan.env}
    with plan.log.open("w", encoding="utf-8", errors="replace", buffering=1) as log:  # tail -f keeps up
        log.write(f"# {' '.join(plan.argv)}\n# env: {json.dumps(plan.env, sort_keys=True)}\n")
        proc = subprocess.Popen(list(plan.argv), cwd=plan.cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                text=True, errors="replace", bufsize=1)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                out(line.rstrip("\n"))
            return proc.wait()
        except KeyboardInterrupt:
            _stop(proc)
            if engine is not None:
                _remove_new_containers(engine, before)
            log.write("# interrupted\n")
            raise


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _remove_new_containers(engine: Any, before: set[str]) -> None:
    for cid in _containers(engine) - before:
        try:
            engine.api.remove_container(cid, force=True)
        except Exception:  # noqa: BLE001 - keep removing the others
            pass


@dataclass
class ReleaseResult:
    code: int
    log: Path
    tarballs: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    report: Path | None = None


def write_sums(tars: Path) -> list[dict[str, Any]]:
    """SHA256SUMS beside the tarballs (sha256sum format); returns their names, sizes and digests."""
    entries = []
    for tar in sorted(tars.glob("*.tar.gz")):
        entries.append({"name": tar.name, "size": tar.stat().st_size, "sha256": sha256_of(tar)})
    if not entries:
        raise KBError(f"release.sh succeeded but wrote no tarballs to {tars}")
    (tars / "SHA256SUMS").write_text("".join(f"{e['sha256']}  {e['name']}\n" for e in entries))
    return entries


def tail(path: Path, lines: int = 20) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def default_out(line: str) -> None:
    print(line, flush=True)


def release(tree: KubeTree, plan: ReleasePlan, environ: Mapping[str, str], engine: Any,
            version: dict[str, str], images: list[dict[str, Any]], out: Callable[[str], None] = default_out,
            report_path: Path | None = None) -> ReleaseResult:
    """Run it; on success write SHA256SUMS and the JSON report. Failure raises with release.sh's code."""
    sums = plan.tars / "SHA256SUMS"
    if sums.exists():
        sums.unlink()  # a stale list must not describe new tarballs
    start = time.monotonic()
    code = run_script(plan, environ, engine, out)
    seconds = time.monotonic() - start
    if code != 0:
        for line in tail(plan.log):
            print(f"  | {line}", file=sys.stderr)
        raise KBError(f"build/release.sh failed (exit {code}) after {seconds:.0f}s; full log: {plan.log}",
                      code=code if 0 < code < 126 else 1)
    tarballs = write_sums(plan.tars)
    report = {"version": version, "tarballs": tarballs, "images": images,
              "durations": {"release_sh_seconds": round(seconds, 1)}, "log": str(plan.log),
              "environment": plan.env}
    report_path = report_path or plan.tars / "release-report.json"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return ReleaseResult(code, plan.log, tarballs, seconds, report_path)


def require_ok(checks: list[Check]) -> None:
    bad = [c for c in checks if not c.ok]
    if bad:
        first = bad[0]
        more = f" (and {', '.join(c.name for c in bad[1:])})" if bad[1:] else ""
        cls = ToolError if first.name in ("bash", "rsync", "engine") else KBError
        raise cls(f"release.sh can't run: {first.name}: {first.detail}{more}", hint=first.fix)


def run_release(tree: KubeTree, environ: Mapping[str, str], *, quick: bool = False, platforms: list[str] | None = None,
                mirrors: list[str] | None = None, layout: str = "nested", skip_images: bool = False,
                docker_host: str | None = None, report_path: Path | None = None,
                out: Callable[[str], None] = default_out) -> ReleaseResult:
    """Workspace → images → preflight → release.sh → SHA256SUMS and report."""
    from build.version import compute
    from common.cli import info
    from images import driver as images_driver
    from images.engine import Engine, EngineError
    from images.resolve import resolve
    from workspace.layout import ensure_workspace, plan_layout

    specs = resolve(tree, environ)
    plan = plan_release(tree, environ, quick=quick, platforms=platforms or [],
                        image_env=images_driver.env_lines(tree, specs), docker_host=docker_host,
                        now=_dt.datetime.now())
    env = {**environ, **plan.env}
    ensure_workspace(plan_layout(tree, env))
    outcomes = []
    if not skip_images:
        info("== images")
        outcomes = images_driver.run(tree, env, mirrors=mirrors or [], layout=layout, docker_host=docker_host)
    try:
        engine = Engine.connect(env, docker_host)
    except EngineError:
        engine = None
    cross = next((s for s in specs if s.role == "kube-cross"), None)
    require_ok(preflight(tree, plan, engine, cross.ref.short if cross else None, env))
    stamp = compute(tree.root, env)
    version = {"gitVersion": stamp.version, "gitCommit": stamp.commit, "gitTreeState": stamp.tree_state,
               "buildDate": stamp.build_date}
    used = []
    for spec in specs:
        image = engine.image(spec.ref.short) if engine else None
        digests = sorted({d.split("@", 1)[1] for d in (image or {}).get("RepoDigests") or []})
        used.append({"name": spec.ref.name, "role": spec.role, "present": image is not None,
                     "id": (image or {}).get("Id", ""), "digests": digests})
    info(f"== build/release.sh ({'quick' if quick else 'full'}; log: {plan.log})")
    result = release(tree, plan, env, engine, version, used, out, report_path)
    for t in result.tarballs:
        print(f"{plan.tars / t['name']}  {t['size'] / 1048576:.1f} MiB  sha256:{t['sha256']}")
    info(f"release done in {result.seconds:.0f}s; SHA256SUMS and {result.report} written")
    return result

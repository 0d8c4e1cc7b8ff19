"""The platforms of a direct-mode release built over several engines, one thread per engine.

For each engine, once: connect, make kube-cross present (the caller's ``ensure_cross``: the images
task against that engine), fill a named volume with the tree (engines.transfer). Then, platform by
platform as engines.schedule hands them out: the caller's kube-cross container with volumes instead
of bind mounts (the tree's volume, and ``GOCACHE_VOLUME``, kept between runs) and that platform
alone in KUBE_BUILD_PLATFORMS, then ``_output/dockerized/bin/<os>/<arch>`` back into the host tree.

An engine fault (it went away, a transfer broke, it refused a call) sends the platform to another
engine once (engines.schedule); a build that exits non-zero is the tree's failure and ends the
release at once. Whatever happens, each engine's helper container and tree volume are removed, and
no build container is left running (Ctrl-C included).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import KBError
from common.redact import redact
from engines.schedule import Attempt, Schedule, ScheduleError, weights

if TYPE_CHECKING:
    from build.release.plan import ContainerSpec
    from common.progress import Lines
    from images.engine import Engine

GOCACHE_VOLUME = "kbuild-gocache"
HELPER_TREE = "/tree"          # where the helper container mounts the tree's volume
LABEL = "io.kbuild.engines"
PHASES = ("upload", "build", "download")
CHANGED = "_output/kbuild-changed"   # in the engine's tree: a copy of every tree file the build wrote
# Around the build: a stamp, the build, then a copy of each file outside _output the build wrote (the
# code generation's zz_generated.*, openapi, …). A bind-mounted build leaves those in the tree, and
# release.sh copies them back (kube::build::copy_output); the source tarball packs them.
_AROUND_BUILD = ('mkdir -p _output && : > _output/.kbuild-build-start && "$@"; rc=$?; '
                 'if [ "$rc" -eq 0 ]; then rm -rf ' + CHANGED + ' && mkdir -p ' + CHANGED + ' && '
                 r'find . \( -path ./_output -o -path ./.git \) -prune -o -type f -newer _output/.kbuild-build-start '
                 '-print > _output/kbuild-changed.list && '
                 'while IFS= read -r f; do mkdir -p "' + CHANGED + '/$(dirname "$f")" && '
                 'cp -p "$f" "' + CHANGED + '/$f" || exit 1; done < _output/kbuild-changed.list || rc=$?; fi; '
                 'exit "$rc"')
_TREE_LOCK = threading.Lock()   # two engines bring back the same generated files: one at a time
STOP_SECONDS = 15.0            # how long Ctrl-C waits for each engine's thread to clean up

RunContainer = Callable[["Engine", "ContainerSpec", Path, Callable[[str], None]], int]


class BuildFailed(KBError):
    """The build itself exited non-zero on an engine: not the engine's fault, so no retry."""


@dataclass(frozen=True)
class FanoutJob:
    """What the release hands over: the tree, the engines, {platform: its targets}, the container for a
    platform (its binds are replaced here), how to make kube-cross present on an engine (None with
    --skip-images: it must be there), how to run a container, where logs and lines go."""

    tree_root: Path
    environ: Mapping[str, str]
    engines: tuple[str, ...]
    platforms: dict[str, list[str]]
    spec_for: Callable[[str], ContainerSpec]
    cross: str
    ensure_cross: Callable[[str], None] | None
    run_container: RunContainer
    log: Path
    out: Callable[[str], None]


@dataclass
class PlatformResult:
    """The report's entry for one platform."""

    engine: str = ""
    attempts: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    bytes_up: int = 0
    bytes_down: int = 0
    log: str = ""
    failures: list[dict[str, str]] = field(default_factory=list)

    def as_report(self) -> dict[str, object]:
        out: dict[str, object] = {"engine": self.engine, "attempts": self.attempts,
                                  "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                                  "bytes_up": self.bytes_up, "bytes_down": self.bytes_down, "log": self.log}
        if self.failures:
            out["failures"] = self.failures
        return out


@dataclass
class _Place:
    """One engine as its thread holds it: the connection, its volume and helper, what it is doing."""

    url: str
    engine: Engine | None = None
    helper: str | None = None
    volume: str | None = None
    uploaded: bool = False
    doing: str = "waiting"
    since: float = field(default_factory=time.monotonic)
    container: str | None = None                          # the build container running now
    containers: list[str] = field(default_factory=list)   # every one it ran (each gone before the volume)


def platform_tag(platform: str) -> str:
    return platform.replace("/", "-")


def build_on_engines(job: FanoutJob) -> dict[str, dict[str, object]]:
    """Every platform built on the engines and its binaries back in the tree; the report's ``platforms``."""
    from common.cli import info
    from common.progress import Lines, duration, progress_seconds

    sched = Schedule(weights(job.platforms), job.engines)
    results = {p: PlatformResult(log=str(_log_for(job.log, p))) for p in job.platforms}
    places = {url: _Place(url) for url in job.engines}
    cond = threading.Condition()
    info(f"building {', '.join(sched.order())} on {len(job.engines)} engine(s): "
         f"{', '.join(redact(u) for u in job.engines)}")

    def beat() -> str:
        with cond:
            return "... engines: " + "; ".join(
                f"{redact(p.url)} {p.doing} {duration(time.monotonic() - p.since)}" for p in places.values())

    lines = Lines(every=progress_seconds(job.environ), beat=beat, out=info)
    threads = [threading.Thread(target=_worker, args=(job, sched, cond, places[url], results, lines),
                                name=f"engine-{i}", daemon=True) for i, url in enumerate(job.engines)]
    with lines:
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(timeout=1.0)
        except BaseException:  # Ctrl-C: stop the builds on every engine before leaving
            with cond:
                sched.failure = sched.failure or ScheduleError("interrupted")
                cond.notify_all()
            _stop_containers(places)
            for t in threads:  # each thread removes its helper and tree volume (bounded: an engine may hang)
                t.join(timeout=STOP_SECONDS)
            raise
    if sched.failure is not None:
        raise sched.failure
    return {p: results[p].as_report() for p in sorted(results)}


def _worker(job: FanoutJob, sched: Schedule, cond: threading.Condition, place: _Place,
            results: dict[str, PlatformResult], lines: Lines) -> None:
    """One engine's thread: take a platform, build it, report; until nothing is left for this engine."""
    from images.engine import EngineGone

    shown = redact(place.url)
    try:
        while True:
            with cond:
                attempt = sched.take(place.url)
                while attempt is None:
                    if sched.finished or not sched.waiting_for(place.url):
                        return
                    cond.wait(timeout=2.0)
                    attempt = sched.take(place.url)
            result = results[attempt.platform]
            result.attempts = attempt.number
            try:
                _attempt(job, place, attempt, result, lines)
            except BuildFailed as exc:
                with cond:
                    sched.failure = sched.failure or ScheduleError(exc.message, hint=exc.hint)
                    cond.notify_all()
                return
            except KBError as exc:  # EngineError, EngineGone, a transfer refused: the engine's fault
                # Gone: it went away, or it could not even be prepared (reached, given kube-cross and the tree),
                # so no other platform would fare better there.
                gone = isinstance(exc, EngineGone) or not place.uploaded or place.engine is None \
                    or not place.engine.alive()
                result.failures.append({"engine": shown, "error": redact(exc.message)})
                lines.say(f"engine {shown}: {attempt.platform} failed: {redact(exc.message)}")
                with cond:
                    sched.failed(attempt, redact(exc.message), gone=gone)
                    cond.notify_all()
                if gone:
                    return
                continue
            except Exception as exc:  # noqa: BLE001 - a fault of one engine's thread must not hang the others
                with cond:
                    sched.failure = sched.failure or ScheduleError(
                        f"{attempt.platform} on the engine at {shown}: {type(exc).__name__}: {redact(str(exc))}")
                    cond.notify_all()
                raise
            result.engine = shown
            lines.say(f"engine {shown}: {attempt.platform} done (up {result.bytes_up} B, "
                      f"down {result.bytes_down} B)")
            with cond:
                sched.succeeded(attempt)
                cond.notify_all()
    finally:
        place.doing = "done"
        _clean(place)
        with cond:
            cond.notify_all()


def _attempt(job: FanoutJob, place: _Place, attempt: Attempt, result: PlatformResult, lines: Lines) -> None:
    """One platform on one engine: connect and prepare the engine (first time), build, fetch the binaries."""
    from engines import transfer
    from engines.pool import connect

    shown = redact(place.url)

    def phase(what: str) -> None:
        place.doing, place.since = f"{attempt.platform} {what}", time.monotonic()
        lines.say(f"engine {shown}: {attempt.platform} {what}")

    if place.engine is None:
        phase("connect")
        place.engine = connect(job.environ, place.url)
    engine = place.engine
    if not place.uploaded:
        if job.ensure_cross is not None:
            phase("kube-cross")
            job.ensure_cross(place.url)
        if engine.image(job.cross) is None:
            raise KBError(f"{job.cross} is not on the engine at {shown}",
                          hint="drop --skip-images (the images task puts it there from the mirror)")
        phase("upload")
        engine.api.create_volume(GOCACHE_VOLUME)
        place.volume = f"kbuild-tree-{os.getpid()}-{job.engines.index(place.url)}"
        engine.api.create_volume(place.volume, labels={LABEL: str(job.tree_root)})
        place.helper = transfer.create_helper(engine, f"{place.volume}-helper", {place.volume: HELPER_TREE},
                                              {LABEL: str(job.tree_root)})
        moved = transfer.upload_tree(engine, place.helper, job.tree_root, HELPER_TREE)
        place.uploaded = True
        result.bytes_up, result.seconds["upload"] = moved.nbytes, moved.seconds
    phase("build")
    spec = job.spec_for(attempt.platform)
    remote_cache = spec.env["GOCACHE"]
    command = " ".join(spec.command)
    spec = replace(spec, name=f"{spec.name}-{platform_tag(attempt.platform)}",
                   command=("bash", "-c", _AROUND_BUILD, "kbuild", *spec.command),
                   binds={place.volume or "": {"bind": spec.working_dir, "mode": "rw"},
                          GOCACHE_VOLUME: {"bind": remote_cache, "mode": "rw"}},
                   user=None, labels={**spec.labels, LABEL: str(job.tree_root)})
    log = Path(result.log)
    place.container = spec.name
    place.containers.append(spec.name)
    began = time.monotonic()
    code = job.run_container(engine, spec, log, lambda line: job.out(f"[{attempt.platform}] {line}"))
    place.container = None
    result.seconds["build"] = time.monotonic() - began
    if code != 0:
        if not engine.alive():
            from images.engine import EngineGone

            raise EngineGone(f"the engine at {shown} went away during the build of {attempt.platform}")
        raise BuildFailed(f"`{command}` for {attempt.platform} failed on the engine at {shown} "
                          f"(exit {code}); full log: {log}", hint="the lines above say why")
    phase("download")
    remote = f"{HELPER_TREE}/_output/dockerized/bin/{attempt.platform}"
    dest = job.tree_root / "_output" / "dockerized" / "bin" / attempt.platform
    moved = transfer.download_dir(engine, place.helper or "", remote, dest, job.tree_root / "_output")
    result.bytes_down, result.seconds["download"] = moved.nbytes, moved.seconds
    changed = job.tree_root / "_output" / "kbuild" / f"changed-{platform_tag(attempt.platform)}"
    moved = transfer.download_dir(engine, place.helper or "", f"{HELPER_TREE}/{CHANGED}", changed,
                                  job.tree_root / "_output")
    result.bytes_down += moved.nbytes
    result.seconds["download"] += moved.seconds
    with _TREE_LOCK:
        into_tree(changed, job.tree_root)


def into_tree(changed: Path, root: Path) -> list[str]:
    """Move each file under ``changed`` (already checked: regular files and directories inside it) to the
    same path in the tree; a path whose directory leads out of the tree (a symlink) is refused."""
    import shutil

    moved = []
    top = root.resolve()
    try:
        for path in sorted(p for p in changed.rglob("*") if p.is_file() and not p.is_symlink()):
            rel = path.relative_to(changed)
            dest = root / rel
            if not dest.parent.resolve().is_relative_to(top) or dest.is_symlink():
                raise KBError(f"{dest}: outside the tree {root} (a symlink on the way); the build's file {rel} "
                              "was not brought back")
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            moved.append(str(rel))
    except OSError as exc:
        from common.outputs import os_failure

        raise os_failure(exc, "bring back the build's file", changed) from None
    finally:
        shutil.rmtree(changed, ignore_errors=True)
    return moved


def _log_for(log: Path, platform: str) -> Path:
    return log.with_name(f"{log.stem}-{platform_tag(platform)}{log.suffix}")


def _clean(place: _Place) -> None:
    """The helper and the tree's volume go (the GOCACHE volume stays); best effort on an engine that is gone."""
    from engines import transfer

    if place.engine is None:
        return
    for name in place.containers:  # a removal Ctrl-C started may still be deleting its files: wait for it
        transfer.remove_quietly(place.engine, container=name)
    transfer.remove_quietly(place.engine, container=place.helper, volume=place.volume)
    try:
        place.engine.client.close()
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


def _stop_containers(places: Mapping[str, _Place]) -> None:
    """On Ctrl-C: remove each engine's running build container (on a connection of its own)."""
    from engines import transfer

    for place in places.values():
        if place.engine is not None and place.container:
            try:
                transfer.remove_quietly(place.engine.clone(), container=place.container)
            except Exception:  # noqa: BLE001 - the engine may be gone
                pass

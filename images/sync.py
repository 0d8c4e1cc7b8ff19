"""Make the tree's image set present under its canonical names: plan (pure), then pull/verify/tag.

For each image: present with the right name (and the locked digest) → nothing
to do; otherwise try its sources in order (the canonical name, or each mirror's
copy), ask the registry for the digest, refuse a digest the lock file doesn't
allow, pull by that digest, check the engine has exactly it, and only then tag
the canonical name. Failures are per image; the others still finish.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from common.errors import KBError, UsageError
from images.engine import Engine, EngineError, EngineGone, RegistryError
from images.platforms import Platform
from images.refs import ImageRef, mirror_ref
from images.resolve import ImageSpec

MAX_PARALLEL = 3


@dataclass(frozen=True)
class ImageTask:
    """What to do for one image: where it may come from, and the digest it must have (if locked)."""

    spec: ImageSpec
    sources: tuple[ImageRef, ...]
    locked: str = ""
    force: bool = False
    platform: Platform | None = None   # this platform's variant, read from the source's index


@dataclass
class Outcome:
    """What happened to one image, for the final table and the lock file."""

    name: str
    action: str = "pending"      # present / pulled / retagged / failed
    source: str = ""
    digest: str = ""
    bytes: int = 0
    error: str = ""
    tried: list[str] = field(default_factory=list)
    seconds: float = 0.0
    platform: str = ""           # the variant asked for (--platform), empty for the engine's own
    image_id: str = ""           # the engine's id of what the canonical name now holds

    @property
    def label(self) -> str:
        """The image, and the platform when one was asked for."""
        return f"{self.name} ({self.platform})" if self.platform else self.name


def select(specs: list[ImageSpec], only: list[str]) -> list[ImageSpec]:
    """Keep the images named by --only (role, canonical name, or repository basename)."""
    if not only:
        return specs
    chosen = [s for s in specs if {s.role, s.ref.name, s.ref.short, s.ref.path.rsplit("/", 1)[-1]} & set(only)]
    unknown = [o for o in only if not any(o in {s.role, s.ref.name, s.ref.short, s.ref.path.rsplit("/", 1)[-1]}
                                          for s in specs)]
    if unknown:
        raise UsageError(f"--only {', '.join(unknown)}: not in this tree's image set",
                         hint="see `inv images --list`: " + ", ".join(sorted({s.role for s in specs})))
    return chosen


def plan(specs: list[ImageSpec], mirrors: list[str], layout: str, lock: dict[str, str],
         force: bool = False) -> list[ImageTask]:
    """The sources to try for each image: the mirrors in order, or the canonical name without mirrors."""
    tasks = []
    for spec in specs:
        sources = tuple(mirror_ref(spec.ref, m, layout) for m in mirrors) if mirrors else (spec.ref,)
        tasks.append(ImageTask(spec, sources, lock.get(spec.ref.name, ""), force))
    return tasks


def _local_digests(engine: Engine, name: str) -> tuple[str, set[str]] | None:
    image = engine.image(name)
    if image is None:
        return None
    return image["Id"], {item.partition("@")[2] for item in image.get("RepoDigests") or []}


def run_task(engine: Engine, task: ImageTask, report: Callable[[str, str, int], None]) -> Outcome:
    """Carry out one image's task. Never raises for registry trouble: the outcome says. An engine that
    went away or stopped answering (EngineGone) ends the run."""
    canonical = task.spec.ref
    out = Outcome(canonical.name)
    start = time.monotonic()
    if _present(engine, task, out):
        report(canonical.name, "present", 0)
        return out
    for source in task.sources:
        label = source.name
        try:
            if _from_source(engine, task, source, out, report):
                out.seconds = time.monotonic() - start
                report(canonical.name, out.action, out.bytes)
                return out
        except RegistryError as exc:
            out.tried.append(exc.message if exc.kind == "stalled" else f"{label}: {exc.kind} ({exc.detail})")
        except KBError as exc:  # the source's index has no variant for the platform, or can't be read
            out.tried.append(exc.message)
        except EngineGone:
            raise  # no other source can help: the run stops with the engine's one line
        except EngineError as exc:
            out.tried.append(f"{label}: {exc.message}")
    out.action = "failed"
    out.error = "; ".join(out.tried) or "no source to try"
    out.seconds = time.monotonic() - start
    report(canonical.name, "failed", out.bytes)
    return out


def _present(engine: Engine, task: ImageTask, out: Outcome) -> bool:
    """The canonical name is there already (with the locked digest, for the asked platform): nothing to do."""
    canonical = task.spec.ref
    if task.platform is not None:
        return False  # which variant the name holds is known only from the index: see _already_holds
    local = _local_digests(engine, canonical.short)
    if not local or task.force:
        return False
    image_id, digests = local
    if not task.locked or task.locked in digests:
        out.action, out.source, out.image_id = "present", "local", image_id
        out.digest = task.locked or (sorted(digests)[0] if digests else "")
        return True
    out.tried.append(f"local copy has {', '.join(sorted(digests)) or 'no registry digest'}, "
                     f"lock wants {task.locked}")
    return False


def _from_source(engine: Engine, task: ImageTask, source: ImageRef, out: Outcome,
                 report: Callable[[str, str, int], None]) -> bool:
    """Resolve, pull by digest, check, tag the canonical name; False (with the reason noted) to try the next."""
    canonical, label = task.spec.ref, source.name
    report(canonical.name, f"resolving {label}", out.bytes)
    digest = _digest_for(engine, task, source)
    if task.locked and task.platform is None and digest != task.locked:
        out.tried.append(f"{label}: serves {digest}, lock wants {task.locked}")
        return False
    if task.platform is not None and not task.force and _already_holds(engine, task, source, digest, out):
        return True
    layers: dict[str, int] = {}

    def on_event(event: dict[str, object]) -> None:
        detail = event.get("progressDetail")
        total = detail.get("total") if isinstance(detail, dict) else None
        if event.get("id") and isinstance(total, int) and total:
            layers[str(event["id"])] = total
        status = str(event.get("status", ""))
        if status.startswith(("Downloading", "Extracting", "Pull complete", "Download complete")):
            report(canonical.name, f"pulling {label}", sum(layers.values()))

    report(canonical.name, f"pulling {label}", 0)
    engine.pull(source.repository, digest, on_event)
    pulled = engine.image(f"{source.repository}@{digest}")
    # Every name@digest the engine holds it by (an index's and its platform entry's can name one image).
    if pulled is None or f"{_docker_repo(source)}@{digest}" not in (pulled.get("RepoDigests") or []):
        out.tried.append(f"{label}: the engine does not hold {digest} after the pull")
        return False
    if task.platform is not None and not _is_for(pulled, task.platform):
        out.tried.append(f"{label}: {digest} is listed for {task.platform} but is an image for {_platform_of(pulled)}")
        return False
    engine.tag(pulled["Id"], _docker_repo(canonical), canonical.tag)
    out.action = "pulled" if source == canonical else "retagged"
    out.source, out.digest, out.bytes = label, digest, sum(layers.values())
    out.image_id = str(pulled["Id"])
    return True


def _already_holds(engine: Engine, task: ImageTask, source: ImageRef, digest: str, out: Outcome) -> bool:
    """The canonical name holds the platform's variant (pulled by ``digest`` from ``source``) already."""
    held = engine.image(task.spec.ref.short)
    variant = engine.image(f"{source.repository}@{digest}")
    if held is None or variant is None or held["Id"] != variant["Id"]:
        return False
    out.action, out.source, out.digest, out.image_id = "present", source.name, digest, str(held["Id"])
    return True


def _digest_for(engine: Engine, task: ImageTask, source: ImageRef) -> str:
    """The digest to pull: the platform's entry in the source's index, else what the registry serves."""
    if task.platform is None:
        return engine.remote_digest(source.name)
    from images.platforms import variant_of

    return variant_of(source, task.platform, os.environ).digest


def _platform_of(image: Mapping[str, object] | None) -> str:
    from images.platforms import config_platform

    found = config_platform(image or {})
    return str(found) if found else "an unknown platform"


def _is_for(image: Mapping[str, object] | None, platform: Platform) -> bool:
    """Does the engine's image (its inspect) say it is for ``platform``?"""
    from images.platforms import config_platform

    return image is not None and config_platform(image) == platform


def _docker_repo(ref: ImageRef) -> str:
    """The repository as the engine names it (docker.io/library/ dropped)."""
    return ref.short.rsplit(":", 1)[0]


def run_all(engine: Engine, tasks: list[ImageTask], report: Callable[[str, str, int], None],
            parallel: int = MAX_PARALLEL) -> list[Outcome]:
    """Every task, a few at a time, each on its own client; results in task order."""
    if not tasks:
        return []
    workers = max(1, min(parallel, len(tasks)))
    if workers == 1:
        return [run_task(engine, t, report) for t in tasks]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(lambda t: run_task(engine.clone(), t, report), t) for t in tasks]
        try:
            return [f.result() for f in futures]
        except EngineGone:
            for f in futures:
                f.cancel()  # those not started; the running ones end at their next engine call
            raise


def lock_pins(engine: Engine, specs: list[ImageSpec], outcomes: list[Outcome]) -> tuple[dict[str, str], list[str]]:
    """{name: digest} for --lock, and the names that have no registry digest to pin."""
    by_name = {o.name: o for o in outcomes}
    pins, missing = {}, []
    for spec in specs:
        o = by_name.get(spec.ref.name)
        digest = o.digest if o and o.digest else ""
        if not digest:
            local = _local_digests(engine, spec.ref.short)
            digest = sorted(local[1])[0] if local and local[1] else ""
        if digest:
            pins[spec.ref.name] = digest
        else:
            missing.append(spec.ref.name)
    return pins, missing

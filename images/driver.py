"""`inv images`: list, sync (pull or mirror-and-retag), lock, save, load, env: one function per action,
each taking the same ImagesRequest."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from common.cli import info
from common.errors import KBError, UsageError
from common.units import size
from images import sync
from images.engine import Engine
from images.lock import read_lock, write_lock
from images.platforms import Platform, parse_platform
from images.progress import make_progress
from images.refs import LAYOUTS, check_mirror, mirror_ref
from images.resolve import ImageSpec, as_json, resolve
from workspace.tree import KubeTree


def print_list(specs: list[ImageSpec], as_json_output: bool,
               on_mirrors: dict[str, list[dict[str, object]]] | None = None) -> None:
    """One line per image (role, name, where the name came from, who uses it); below it, where the
    newest trees chose a base per binary, how, any disagreement with build/dependencies.yaml, and (asked
    with --mirror) the platforms and digests each mirror holds."""
    found = on_mirrors or {}
    if as_json_output:
        print(as_json(specs, {name: {"mirrors": held} for name, held in found.items()}))
        return
    width = max(len(s.ref.name) for s in specs)
    for s in specs:
        used = f"  (used by {', '.join(s.used_by)})" if s.used_by else ""
        print(f"{s.role:20} {s.ref.name:{width}}  {s.source}{used}")
        details = [*s.via, *s.notes]
        if s.carries:
            details.append(f"each image built on it also carries {', '.join(s.carries)}")
        if [e for e in s.environment if not any(e in line for line in s.via)]:
            details.append(f"environment: {', '.join(s.environment)}")
        if s.mismatch:
            details.append(f"! differs from build/dependencies.yaml: {s.mismatch}")
        details += [_mirror_line(m) for m in found.get(s.ref.name, [])]
        for line in details:
            print(f"{'':21}{line}")


def _mirror_line(held: Mapping[str, object]) -> str:
    if "error" in held:
        return f"{held['mirror']}: {held['error']}"
    platforms = held.get("platforms")
    listed = ", ".join(f"{p} {str(d)[:19]}…" for p, d in platforms.items()) if isinstance(platforms, dict) else ""
    return f"{held['mirror']}: {str(held['digest'])[:19]}… " + (f"({listed})" if listed else "(one platform)")


def offline_env(tree: KubeTree, specs: list[ImageSpec]) -> dict[str, str]:
    """What build/release.sh needs to use the local (retagged) images without going to the network."""
    env = {"KUBE_BUILD_PULL_LATEST_IMAGES": "n", "KUBE_BUILD_CONFORMANCE": "n"}
    common = tree.read("build/common.sh") or ""
    # The registry of the tree's own base images (an image named by a KUBE_*_BASE_IMAGE override says nothing).
    bases = [s for s in specs if s.used_by and not s.source.startswith("environment:")]
    if "KUBE_BASE_IMAGE_REGISTRY" in common and bases:
        env["KUBE_BASE_IMAGE_REGISTRY"] = bases[0].ref.repository.rsplit("/", 1)[0]
    cross = next((s for s in specs if s.role == "kube-cross"), None)
    if cross and "KUBE_CROSS_IMAGE" in common:
        env["KUBE_CROSS_IMAGE"] = cross.ref.repository
        env["KUBE_CROSS_VERSION"] = cross.ref.tag
    return env


def env_lines(tree: KubeTree, specs: list[ImageSpec]) -> list[str]:
    """offline_env as `export` lines, for `inv images --env`."""
    return [f"export {k}={shlex.quote(v)}" for k, v in offline_env(tree, specs).items()]


def table(outcomes: list[sync.Outcome]) -> list[str]:
    rows = [("IMAGE", "SOURCE", "DIGEST", "ACTION", "BYTES")]
    for o in outcomes:
        digest = o.digest[:19] + "…" if o.digest else "-"
        rows.append((o.label, o.source or "-", digest, o.action, size(o.bytes)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


@dataclass(frozen=True)
class ImagesRequest:
    """What `inv images` was asked for, whichever action: the image set and where to get it."""

    mirrors: tuple[str, ...] = ()   # registries to pull from instead of the canonical ones, tried in order
    layout: str = "nested"          # how a mirror names images: nested or flat
    only: tuple[str, ...] = ()      # just these images (roles or names); none: the whole set
    force: bool = False             # pull again even when the canonical name is present
    lock: bool = False              # write the resolved names and digests to the lock file
    lock_file: str = ""             # the lock file (default $KBUILD_IMAGES_LOCK, else ./images.lock)
    docker_host: str | None = None  # the engine (default $DOCKER_HOST, else the local socket)
    platforms: tuple[str, ...] = () # each image's variant for these platforms, from the sources' indexes


@dataclass(frozen=True)
class _Selected:
    """The request checked, its images, and the lock's pins."""

    req: ImagesRequest
    specs: list[ImageSpec]
    pins: dict[str, str]
    lock_path: Path


def _select(tree: KubeTree, environ: Mapping[str, str], req: ImagesRequest) -> _Selected:
    """Bad input is refused here, before the engine is contacted."""
    req = replace(req, mirrors=tuple(check_mirror(m) for m in req.mirrors),
                  platforms=tuple(dict.fromkeys(str(parse_platform(p)) for p in req.platforms)))
    if req.lock and req.platforms:
        raise UsageError("--lock pins one digest per image, --platform pulls one per platform: not both",
                         hint="lock without --platform (the indexes' digests), then pull the variants")
    if req.layout not in LAYOUTS:
        raise UsageError(f"--layout {req.layout!r}: choose nested or flat")
    lock_path = Path(req.lock_file or sync_lock_default(environ))
    pins = read_lock(lock_path)
    return _Selected(req, sync.select(resolve(tree, environ), list(req.only)), pins, lock_path)


def list_images(tree: KubeTree, environ: Mapping[str, str], req: ImagesRequest, *, json_output: bool = False) -> None:
    """`inv images.list`: the image set this tree's build uses, read from the tree (no engine); with mirrors
    in the request, also what each mirror holds for each image (its digest, its platforms' digests)."""
    from images import declared

    chosen = _select(tree, environ, req)
    on_mirrors: dict[str, list[dict[str, object]]] = {}
    if chosen.req.mirrors:
        from images.platforms import on_mirror

        jobs = [(s.ref.name, mirror_ref(s.ref, m, chosen.req.layout)) for s in chosen.specs for m in chosen.req.mirrors]
        with ThreadPoolExecutor(max_workers=4) as pool:
            for (name, _), held in zip(jobs, pool.map(lambda job: on_mirror(job[1], environ), jobs), strict=True):
                on_mirrors.setdefault(name, []).append(held)
    print_list(declared.mark(tree, chosen.specs, environ), json_output, on_mirrors)


def print_env(tree: KubeTree, environ: Mapping[str, str], req: ImagesRequest) -> None:
    """`inv images.env`: the `export` lines a release build needs to use these images offline."""
    print("\n".join(env_lines(tree, _select(tree, environ, req).specs)))


def sync_images(tree: KubeTree, environ: Mapping[str, str], req: ImagesRequest) -> list[sync.Outcome]:
    """`inv images`: pull, or mirror and retag, every image; print the table; lock when asked."""
    chosen = _select(tree, environ, req)
    engine = Engine.connect(environ, chosen.req.docker_host)
    outcomes: list[sync.Outcome] = []
    # One tag holds one variant: the platforms go one after the other, the last one stays tagged.
    for platform in chosen.req.platforms or (None,):
        tasks = _plan(chosen, parse_platform(platform) if platform else None)
        with make_progress() as progress:
            done = sync.run_all(engine, tasks, progress)
        outcomes += [replace(o, platform=platform) for o in done] if platform else done
    return _report(engine, chosen, outcomes)


def load_images(tree: KubeTree, environ: Mapping[str, str], req: ImagesRequest, path: str,
                flag: str = "--load") -> list[sync.Outcome]:
    """`inv images.load`: load a tar written by a save into the engine, then report the set (no pulls)."""
    chosen = _select(tree, environ, req)
    if not Path(path).is_file():
        raise UsageError(f"{flag} {path}: no such file")
    engine = Engine.connect(environ, chosen.req.docker_host)
    with open(path, "rb") as fh:
        loaded = engine.load(iter(lambda: fh.read(1 << 20), b""), what=path)
    for line in loaded:
        info(line)
    chosen = replace(chosen, req=replace(chosen.req, mirrors=()))  # after a load, only report what is present
    outcomes = [sync.run_task(engine, sync.ImageTask(t.spec, (), t.locked), lambda *a: None) for t in _plan(chosen)]
    return _report(engine, chosen, outcomes)


def save_images(tree: KubeTree, environ: Mapping[str, str], req: ImagesRequest, path: str,
                flag: str = "--save") -> list[sync.Outcome]:
    """`inv images.save`: write the image set (all present in the engine) to one tar file."""
    chosen = _select(tree, environ, req)
    engine = Engine.connect(environ, chosen.req.docker_host)
    return _save(engine, chosen.specs, Path(path), flag)


def run(tree: KubeTree, environ: Mapping[str, str], *, mirrors: list[str] | None = None, layout: str = "nested",
        only: list[str] | None = None, docker_host: str | None = None) -> list[sync.Outcome]:
    """Make the images present (the images step of `inv ci` and `inv release`)."""
    return sync_images(tree, environ, ImagesRequest(mirrors=tuple(mirrors or ()), layout=layout,
                                                    only=tuple(only or ()), docker_host=docker_host))


def _plan(chosen: _Selected, platform: Platform | None = None) -> list[sync.ImageTask]:
    req = chosen.req
    tasks = sync.plan(chosen.specs, list(req.mirrors), req.layout, chosen.pins, req.force)
    return [replace(t, platform=platform) for t in tasks] if platform else tasks


def _report(engine: Engine, chosen: _Selected, outcomes: list[sync.Outcome]) -> list[sync.Outcome]:
    """The table; the failures, one line each; the lock file when asked and nothing failed."""
    print("\n".join(table(outcomes)))
    failed = [o for o in outcomes if o.action == "failed"]
    for o in failed:
        info(f"FAILED {o.label}: tried {o.error}")
    if chosen.req.lock and not failed:
        lock_pins, missing = sync.lock_pins(engine, chosen.specs, outcomes)
        if missing:
            raise KBError(f"cannot lock {', '.join(missing)}: no registry digest (built or loaded locally)",
                          hint="pull them from a registry (or a mirror) first")
        write_lock(chosen.lock_path, lock_pins)
        info(f"wrote {chosen.lock_path} ({len(lock_pins)} images)")
    if failed:
        first = f"{failed[0].label}: {failed[0].error}" + (" …" if len(failed) > 1 else "")
        raise KBError(f"{len(failed)} of {len(outcomes)} images failed ({first})", hint=failure_hint(failed), code=1)
    return outcomes


def failure_hint(failed: list[sync.Outcome]) -> str | None:
    """The likeliest fix, from what the failed images' sources said."""
    said = " ".join(o.error for o in failed)
    for needle, hint in (
        ("lock wants", "the lock file pins another digest: fix the mirror, or re-lock with --lock --force"),
        (" stalled while ", "the registry stopped sending or answering: check it and the network, add another "
                            "--mirror (tried in order), or raise KBUILD_STALL_SECONDS for a slow link"),
        ("auth refused", "run `docker login` for that registry"),
        ("unreachable", "check the mirror address, or add another with --mirror (tried in order)"),
        ("not found", "mirror the image there first, or try the other --layout (nested/flat)"),
    ):
        if needle in said:
            return hint
    return None


def sync_lock_default(environ: Mapping[str, str]) -> str:
    return environ.get("KBUILD_IMAGES_LOCK", "images.lock")


def _save(engine: Engine, specs: list[ImageSpec], path: Path, flag: str = "--save") -> list[sync.Outcome]:
    """Write the set as one tar. A regular file is written under a temporary name and renamed into place;
    a device, a pipe or /dev/stdout is written directly (renaming over a device node would replace it)."""
    import errno

    from common.system import output_target

    direct = output_target(path, flag, "images.tar")
    missing = [s.ref.name for s in specs if engine.image(s.ref.short) is None]
    if missing:
        raise KBError(f"not present, cannot save: {', '.join(missing)}", hint="run `inv images` first")
    names = [s.ref.short for s in specs]
    if direct:
        try:
            with path.open("wb") as fh:
                engine.save(names, fh.write)
        except OSError as exc:
            raise KBError(f"{flag} {path}: writing failed: {exc.strerror}") from None
        info(f"saved {len(specs)} images to {path}")  # to stderr: stdout may be the tar itself
        return []
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            engine.save(names, fh.write)
        os.replace(tmp, path)
    except OSError as exc:
        doing = "creating" if exc.filename == str(tmp) and exc.errno != errno.ENOSPC else "writing"
        raise KBError(f"{flag} {path}: {doing} {tmp.name} in {path.parent} failed: {exc.strerror}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    print(f"saved {len(specs)} images to {path} ({size(path.stat().st_size)})")
    return []

"""`inv kit --load FILE --dest DIR` and `inv kit --list FILE`: kit.unpack's load with the images
loaded in-process (the engine is reached before anything is read), errors through the task funnel."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from common.archive import printable
from common.errors import KBError, UsageError
from common.units import size
from kit.plan import TREE_DIR, KitError, Manifest, check_dest, next_steps
from kit.unpack import Loaded, Reporter, install, read_manifest


def _as_kb(exc: KitError) -> KBError:
    return KBError(exc.message, hint=exc.hint)


def load_kit(kit: Path, dest: Path, environ: Mapping[str, str], report: Reporter, *, with_images: bool = True,
             docker_host: str | None = None) -> Loaded:
    """Verify, unpack, make the venv, load the images and check their ids; DIR as it was on failure."""
    from images.engine import Engine
    from kit.images import load_and_check

    if not kit.is_file():
        raise UsageError(f"--load {kit}: no such file")
    try:
        check_dest(dest.absolute())  # before the engine: the cheapest refusals first
        manifest = read_manifest(kit)
        engine = Engine.connect(environ, docker_host) if with_images and manifest.images else None

        def load(images_tar: Path, manifest: Manifest) -> None:
            assert engine is not None
            load_and_check(engine, images_tar, manifest, lambda n: report.advance("load images", n))

        done = install(kit, dest, report, load if engine is not None else None)
    except KitError as exc:
        raise _as_kb(exc) from None
    report.say(same_stamp(done))
    return done


def same_stamp(done: Loaded) -> str:
    """Does the unpacked tree give the stamp the saving side recorded? Computed from the tree alone
    (no KUBE_GIT_* or SOURCE_DATE_EPOCH): a difference is said, not fatal (the saving side may have set them)."""
    import json

    from build.version import compute

    got = json.loads(compute(done.dest / TREE_DIR, {}).as_json())
    want = dict(done.manifest.stamp)
    if got == want:
        return f"version stamp as on the saving side: {want.get('gitVersion') or '(none)'} {want.get('gitTreeState')}"
    diff = ", ".join(f"{k} {want.get(k)!r} -> {got.get(k)!r}" for k in sorted(set(got) | set(want))
                     if got.get(k) != want.get(k))
    return f"NOTE the unpacked tree's version stamp differs from the saving side's: {diff}"


def describe(manifest: Manifest) -> list[str]:
    """`inv kit --list`: what is in the kit, one line per part and image."""
    stamp = manifest.stamp
    lines = [
        f"tree     {stamp.get('gitVersion') or '(no version)'} {stamp.get('gitCommit', '')[:14]} "
        f"{stamp.get('gitTreeState', '')} built {stamp.get('buildDate', '')} ({manifest.tree})",
        f"kbuild   {manifest.tool_version}; wheels for Python {manifest.python} on {manifest.platform}",
        f"go       {manifest.go_version} (the tree needs {manifest.go_minimum or 'any'})",
        f"images   {len(manifest.images)}" + (f" for --mode {manifest.mode}" if manifest.mode else " (saved without)"),
        f"created  {manifest.created}",
        "",
        f"{'PART':14} {'KIND':14} {'SIZE':>11}  SHA256",
    ]
    for p in manifest.parts:
        lines.append(f"{p.name:14} {p.kind:14} {size(p.size):>10}  {p.sha256}")
    lines.append(f"{'total':14} {'':14} {size(manifest.size):>10}")
    for i in manifest.images:
        lines.append(f"image    {i.name}  {i.id}" + (f"  {', '.join(i.repo_digests)}" if i.repo_digests else ""))
    return [printable(line, 100_000) for line in lines]  # the manifest's text, never a terminal's escapes


def list_kit(kit: Path) -> Manifest:
    if not kit.is_file():
        raise UsageError(f"--list {kit}: no such file")
    try:
        return read_manifest(kit)
    except KitError as exc:
        raise _as_kb(exc) from None


def after_load(done: Loaded) -> list[str]:
    head = f"unpacked into {done.dest}"
    if done.manifest.images:
        head += (f"; {len(done.manifest.images)} images loaded, ids as recorded" if done.images_loaded else
                 f"; images not loaded: inv images --load {done.dest / 'images' / 'images.tar'}")
    return [head, "next:", *(f"  {line}" for line in next_steps(done.dest, done.manifest.mode))]

#!/usr/bin/env python3
"""Benchmark `inv images` (cold pull of a tree's image set from a mirror, and the warm no-op) against
the same work done by hand with the docker CLI.

    python bench/bench_images.py [--kube-root TREE] [--runs 5] [--markdown] [--inv PATH]

Everything runs against a private dockerd and a private docker-registry on loopback, started
here with tests/_support/engine.py in a temp dir and stopped at the end (also on error or
Ctrl-C). The tree's image set (images.resolve.resolve) is seeded into the registry as small
stand-in images under the nested mirror names (ADDR/mirror/<canonical path>:<tag>).

Rows (wall time, time.perf_counter around subprocesses; one untimed warm-up, then --runs runs):

* ``inv images (cold)``      ``inv images --kube-root T --mirror ADDR/mirror`` with no image in the
                              engine (canonical and mirror names removed, images pruned, checked empty)
* ``docker pull + tag``       for each image in order: ``docker pull MIRROR_REF``, then
                              ``docker tag MIRROR_REF CANONICAL``; same cleanup before each run
* ``inv images (warm)``       the same ``inv images`` with everything present (interpreter start
                              included); its table must show only ``present`` rows with 0.0 MB

Figures: warm median (target <= 1.5 s), cold inv / by hand (target <= 1.0). Progress goes to
stderr, the tables to stdout. Exit 0 unless a step fails (then one ``error:`` line on stderr and
exit 1; 2 for bad arguments; 130 when interrupted).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
for _p in (REPO, REPO / "bench"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import bench_build as bb  # noqa: E402 - shared timing, facts and report helpers
from bench_build import BenchError, Report, Timing, say, time_task  # noqa: E402

TARGET_WARM_SECONDS = 1.5      # warm `inv images` median: at most
TARGET_COLD_OVER_HAND = 1.0    # cold inv images / docker pull + tag by hand: at most
MIRROR_PREFIX = "mirror"
LAYOUT = "nested"


@dataclass(frozen=True)
class Image:
    """One image of the set: its canonical name (as docker shows it) and its copy in the mirror."""

    role: str
    canonical: str
    mirror: str
    digest: str = ""


# --------------------------------------------------------------------------- running and timing


def run(argv: Sequence[str], *, env: Mapping[str, str], what: str, cwd: Path = REPO) -> tuple[float, str]:
    """Run argv (no shell), output captured; return (wall seconds, stdout) or raise BenchError."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, capture_output=True)
    except OSError as exc:
        raise BenchError(f"`{what}` could not start: {exc}") from None
    elapsed = time.perf_counter() - start
    stdout = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        output = stdout + proc.stderr.decode(errors="replace")
        raise BenchError(f"`{what}` failed (exit {proc.returncode}) after {elapsed:.1f}s: "
                         f"{bb.failure_line(output)[:300]}")
    return elapsed, stdout


# --------------------------------------------------------------------------- the engine's state


def _absent(exc: Exception) -> bool:
    from docker.errors import NotFound

    return isinstance(exc, NotFound)


def clean_engine(client: Any, images: list[Image], data_root: Path) -> None:
    """No image left at all: canonical and mirror names removed, then everything unused pruned.

    Checks the engine lists no image and (with vfs) no layer directory remains, so the next pull
    really downloads and extracts every layer.
    """
    api = client.api
    names = [n for im in images for n in (im.canonical, im.mirror)]
    for name in names:
        try:
            api.remove_image(name, force=True)
        except Exception as exc:  # noqa: BLE001 - absent is what we want
            if not _absent(exc):
                raise BenchError(f"removing {name}: {exc}") from None
    for leftover in api.images(all=True):  # digest-only references (pulled by digest) and the like
        try:
            api.remove_image(leftover["Id"], force=True)
        except Exception as exc:  # noqa: BLE001
            if not _absent(exc):
                raise BenchError(f"removing {leftover['Id'][:19]}: {exc}") from None
    api.prune_images(filters={"dangling": False})
    left = api.images(all=True)
    if left:
        tags = ", ".join(t for im in left for t in (im.get("RepoTags") or [im["Id"][:19]]))
        raise BenchError(f"the engine still holds {len(left)} image(s) after cleanup: {tags}")
    layers = data_root / "vfs" / "dir"
    if layers.is_dir() and any(layers.iterdir()):
        raise BenchError(f"{layers} still holds {len(list(layers.iterdir()))} layer(s) after removing every image")


def check_present(client: Any, images: list[Image], after: str) -> None:
    for im in images:
        try:
            client.api.inspect_image(im.canonical)
        except Exception as exc:  # noqa: BLE001
            raise BenchError(f"{after}: {im.canonical} is not in the engine ({exc})") from None


def seed(client: Any, registry_address: str, specs: list, data_root: Path, payload_mb: int = 0) -> list[Image]:
    """A stand-in image per spec, pushed under its nested mirror name; local copies removed."""
    from images.refs import mirror_ref
    from tests._support import engine as eng

    images = []
    for spec in specs:
        mirror = mirror_ref(spec.ref, f"{registry_address}/{MIRROR_PREFIX}", LAYOUT).name
        try:
            # A payload (random, so incompressible) makes the pulls big enough for parallelism to show.
            eng.make_image(client, mirror, spec.ref.name + os.urandom(payload_mb * 524288).hex())
            digest = eng.push(client, mirror)
        except eng.EngineError as exc:
            raise BenchError(f"seeding the mirror with {mirror}: {exc.message}") from None
        images.append(Image(spec.role, spec.ref.short, mirror, digest))
        say(f"[seed] {mirror} {digest[:19]}…")
    clean_engine(client, images, data_root)
    return images


def set_size(client: Any, images: list[Image]) -> tuple[int, str]:
    """(count, total size) of the set as the engine holds it now."""
    total = sum(int(client.api.inspect_image(im.canonical).get("Size") or 0) for im in images)
    return len(images), f"{total / 1048576:.1f} MB"


def check_warm_table(stdout: str, images: list[Image]) -> None:
    """Only `present` rows with 0.0 MB, one per image, or a one-line BenchError."""
    rows = [ln for ln in stdout.splitlines()[1:] if ln.strip()]
    bad = [r for r in rows if " present " not in f" {r} " or not r.rstrip().endswith(" 0.0 MB")]
    if bad:
        raise BenchError(f"warm `inv images` did not find everything present: {' '.join(bad[0].split())}")
    if len(rows) != len(images):
        raise BenchError(f"warm `inv images` printed {len(rows)} rows for {len(images)} images")


# --------------------------------------------------------------------------- the benchmark


def default_tree(workdir: Path) -> Path:
    from workspace.sample import materialize
    from workspace.source import init_repo

    path = materialize(workdir / "tree", "gopath")
    init_repo(path, "v1.20.2")
    return path


def bench(args: argparse.Namespace, workdir: Path) -> Report:
    from common.errors import KBError
    from images.resolve import resolve
    from tests._support import engine as eng
    from workspace.tree import load_tree

    inv = args.inv or shutil.which("inv")
    if not inv:
        raise BenchError("inv: not found on PATH (pip install invoke, or pass --inv PATH)")
    docker_cli = shutil.which("docker")
    if not docker_cli:
        raise BenchError("docker: the CLI is not on PATH (apt-get install docker.io)")

    if args.kube_root:
        root = Path(args.kube_root).expanduser().resolve()
        if not root.is_dir():
            raise BenchError(f"--kube-root {args.kube_root}: not a directory", code=2)
        tree_note = str(root)
    else:
        root = default_tree(workdir)
        tree_note = f"{root} (samples/sample-tree, gopath shape, tagged v1.20.2)"

    # One environment for resolve, inv and the CLI: the caller's, minus any docker settings, plus
    # (below) the private daemon, an empty docker config (no credential helpers) and no lock file.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(workdir / "docker-config")
    env["KBUILD_IMAGES_LOCK"] = str(workdir / "no-images.lock")
    env.pop("KUBE_ROOT", None)
    Path(env["DOCKER_CONFIG"]).mkdir()
    try:
        specs = resolve(load_tree(root), env)
    except KBError as exc:
        raise BenchError(f"resolving the image set of {root}: {exc}") from None

    load_start = bb.load_average()
    facts = bb.machine_facts()

    daemon = registry = None
    try:
        say("[setup] starting a private dockerd and docker-registry ...")
        try:
            daemon = eng.start_dockerd(workdir / "engine")
            registry = eng.start_registry(workdir / "registry")
        except eng.EngineError as exc:
            raise BenchError(f"starting the private engine: {exc.message}") from None
        client = daemon.client(timeout=300)

        env["DOCKER_HOST"] = daemon.host
        images = seed(client, registry.address, specs, daemon.data_root, args.payload_mb)

        def clean() -> None:
            clean_engine(client, images, daemon.data_root)

        mirror = f"{registry.address}/{MIRROR_PREFIX}"
        inv_argv = [inv, "images", "--kube-root", str(root), "--mirror", mirror]
        inv_what = f"inv images --kube-root {root} --mirror {mirror}"

        # (a) cold inv images
        def inv_cold() -> float:
            seconds, out = run(inv_argv, env=env, what=inv_what)
            rows = [ln for ln in out.splitlines()[1:] if ln.strip()]
            if len(rows) != len(images) or not all(" retagged " in r for r in rows):
                raise BenchError(f"cold `inv images` did not retag every image from the mirror: {out.strip()[:300]}")
            check_present(client, images, "after a cold `inv images`")
            return seconds

        cold_inv = time_task(f"inv images, cold ({len(images)} images)", args.runs, True, inv_cold, before=clean)

        # (b) the same by hand, sequentially
        def by_hand() -> float:
            seconds = 0.0
            for im in images:
                seconds += run([docker_cli, "pull", im.mirror], env=env, what=f"docker pull {im.mirror}")[0]
                seconds += run([docker_cli, "tag", im.mirror, im.canonical], env=env,
                               what=f"docker tag {im.mirror} {im.canonical}")[0]
            check_present(client, images, "after docker pull + tag")
            return seconds

        cold_hand = time_task(f"docker pull + tag by hand, cold ({len(images)} images)", args.runs, True,
                              by_hand, before=clean)

        # warm: the set as inv leaves it, then inv images again
        clean()
        say("[setup] one cold `inv images` for the warm runs ...")
        inv_cold()
        count, total = set_size(client, images)

        def inv_warm() -> float:
            seconds, out = run(inv_argv, env=env, what=inv_what)
            check_warm_table(out, images)
            return seconds

        warm = time_task("inv images, warm (all present)", args.runs, True, inv_warm)

        version = client.api.version()
        info = client.api.info()
        cli_version = run([docker_cli, "version", "--format", "{{.Client.Version}}"], env=env,
                          what="docker version")[1].strip()
    finally:
        if registry is not None:
            registry.stop()
        if daemon is not None:
            say("[teardown] stopping the private dockerd ...")
            daemon.stop()

    timings: list[Timing] = [cold_inv, cold_hand, warm]
    ratios = [
        ("inv images warm median", f"{warm.median:.3f} s", f"<= {TARGET_WARM_SECONDS:g} s",
         "ok" if warm.median <= TARGET_WARM_SECONDS else "MISSED"),
        bb.ratio_row("cold: inv images / by hand", cold_inv, cold_hand, TARGET_COLD_OVER_HAND, at_most=True),
    ]
    from images.sync import MAX_PARALLEL

    report_facts = [
        ("machine", f"nproc {facts['nproc']}, memory {facts['memory']}, {facts['cpu']}, "
                    f"{platform.system()} {platform.release()}"),
        ("load average", f"{load_start} at start, {bb.load_average()} at end (1/5/15 min)"),
        ("dockerd", f"{version.get('Version')} (API {version.get('ApiVersion')}), storage driver "
                    f"{info.get('Driver')}, private daemon; docker CLI {cli_version}"),
        ("registry", f"docker-registry on {registry.address} (loopback), layout {LAYOUT}, prefix /{MIRROR_PREFIX}"),
        ("images", f"{count} stand-ins, {total} in total as the engine reports them: "
                   + ", ".join(im.canonical for im in images)),
        ("tree", tree_note),
        ("inv", f"{inv} (cwd {REPO}); python {platform.python_version()}; up to {MAX_PARALLEL} pulls at once"),
        ("method", f"wall time (perf_counter), 1 warm-up + {args.runs} runs per task, tasks in the order shown; "
                   "before each cold run every image is removed and pruned (engine checked empty)"),
    ]
    return Report("images", timings, ratios, report_facts, [])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kube-root", default=None,
                   help="the Kubernetes tree whose image set to use (default: the bundled sample tree, in a temp dir)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per task after one warm-up (default 5)")
    p.add_argument("--markdown", action="store_true", help="print the results as markdown tables")
    p.add_argument("--payload-mb", type=int, default=32,
                   help="random bytes added to each stand-in image, in MB (default 32; 0 for ~2 MB images)")
    p.add_argument("--inv", default=None, help="the inv executable (default: `inv` on PATH)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # teardown runs on `kill` too, not only on Ctrl-C
    workdir = Path(tempfile.mkdtemp(prefix="bench-images-"))
    try:
        return bb.run_main(lambda: bench(args, workdir), args.markdown, catch_all=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

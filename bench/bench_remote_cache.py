"""Benchmark the shared build cache: two runners that share nothing but a registry.

    python bench/bench_remote_cache.py [--kube-root TREE] [--what cmd/kube-apiserver] [--release]
                                       [--s3] [--keep]

Runner A builds the target (or, with --release, a native quick release) in a copy of the tree
with an empty GOCACHE and --remote-cache pointing at a docker-registry this script starts on
loopback (moto's S3 server with --s3); runner B does the same in a fresh copy at the SAME path
(GOPATH-mode cache keys hold the package's directory, as a CI checkout path is fixed) with a new
empty GOCACHE. Prints both wall times, B/A (targets: build <= 0.3, release <= 0.4), whether the
binaries are byte-identical, and each runner's remote-cache summary line. The tree defaults to
$KBUILD_REAL_TREE, else ~/.cache/kbuild/ci/kubernetes-1.20.2; it is copied, never changed.
A release needs the engine (DOCKER_HOST) and the tree's images present (`inv images`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGETS = {"build": 0.3, "release": 0.4}


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def copy_tree(src: Path, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("_output"))


def binaries(tree: Path, release: bool) -> dict[str, str]:
    root = tree / "_output" / ("dockerized/bin" if release else "local/bin")
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def run(tree: Path, gocache: Path, url: str, args: argparse.Namespace, extra_env: dict[str, str]) -> tuple[float, str]:
    inv = shutil.which("inv") or "inv"
    if args.release:
        task = ["release", "--mode", "native", "--quick", "--skip-images"]
    else:
        task = ["build", "--what", args.what]
    argv = [inv, "--search-root", str(REPO), *task, "--kube-root", str(tree), "--remote-cache", url]
    env = {**os.environ, **extra_env, "GOCACHE": str(gocache)}
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(task)} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = [ln for ln in proc.stderr.splitlines() if ln.startswith(("remote cache ", "WARNING"))]
    return seconds, "\n    ".join(summary)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    default = os.environ.get("KBUILD_REAL_TREE") or str(Path.home() / ".cache/kbuild/ci/kubernetes-1.20.2")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kube-root", default=default, help=f"the tree to copy (default {default})")
    p.add_argument("--what", default="cmd/kube-apiserver", help="the target for inv build (default cmd/kube-apiserver)")
    p.add_argument("--release", action="store_true", help="a native quick release instead of one target")
    p.add_argument("--s3", action="store_true", help="moto's S3 server as the store instead of a registry")
    p.add_argument("--workdir", default="", help="where the copies, caches and store live (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    source = Path(args.kube_root).resolve()
    if not (source / "hack" / "lib" / "version.sh").is_file():
        say(f"ERROR {source} is not a Kubernetes tree (set KBUILD_REAL_TREE or --kube-root)")
        return 2
    work = Path(args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="kbuild-bench-cache-"))
    work.mkdir(parents=True, exist_ok=True)
    store = None
    try:
        if args.s3:
            from tests._support.s3 import start_moto

            store = start_moto(work / "moto")
            store.make_bucket()
            url, env = "s3://kbuild-cache/bench", store.env()
        else:
            from tests._support.engine import start_registry

            store = start_registry(work / "registry")
            url, env = f"oci://{store.address}/kbuild/gocache", {}
        tree = work / "ci" / "kubernetes"       # both runners check out here
        results = {}
        for runner in ("A", "B"):
            say(f"[runner {runner}] fresh copy of {source} at {tree}, empty GOCACHE ...")
            copy_tree(source, tree)
            gocache = work / f"gocache-{runner}"
            shutil.rmtree(gocache, ignore_errors=True)
            seconds, summary = run(tree, gocache, url, args, env)
            results[runner] = (seconds, summary, binaries(tree, args.release))
            say(f"[runner {runner}] {seconds:.1f}s\n    {summary}")
        (a, sa, ba), (b, sb, bb) = results["A"], results["B"]
        kind = "release" if args.release else "build"
        what = "native quick release" if args.release else args.what
        ratio = b / a if a else float("nan")
        identical = ba == bb and bool(ba)
        print(f"remote cache benchmark: {what} of {source.name}, store {'s3 (moto)' if args.s3 else 'oci registry'}")
        print(f"  runner A (empty GOCACHE, fills the store): {a:.1f}s")
        print(f"  runner B (empty GOCACHE, reads the store): {b:.1f}s")
        print(f"  B/A = {ratio:.2f} (target <= {TARGETS[kind]}) {'ok' if ratio <= TARGETS[kind] else 'MISSED'}")
        print(f"  binaries byte-identical: {'yes' if identical else 'NO'} ({len(ba)} files)")
        print(f"  A: {sa}\n  B: {sb}")
        return 0 if identical else 1
    finally:
        if store is not None:
            store.stop()
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Everything the benchmarks measure, on one tree, as one markdown table.

    python bench/report.py --kube-root TREE [--runs 3] [--out FILE]

Rows: task, its median, the Kubernetes-script equivalent, that median, and how many times faster
kbuild is. It runs bench_build.py (inv build vs raw go build vs make WHAT=) and bench_images.py
(inv images vs docker pull + tag, on the tree's own image set), and times `inv version`,
`inv workspace` and `inv smoke` against what Kubernetes' own scripts do for the first two.
Progress goes to stderr; the table to stdout (and --out).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_build as bb  # noqa: E402
import bench_images as bi  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _median(t: bb.Timing) -> float | None:
    return t.median if t.samples else None


def _row(task: str, mine: float | None, equiv: str, theirs: float | None) -> list[str]:
    if mine and theirs:
        ratio = f"{theirs / mine:.1f}x faster" if theirs >= mine else f"{mine / theirs:.1f}x slower"
    else:
        ratio = "-"
    return [task, f"{mine:.2f}" if mine is not None else "-", equiv,
            f"{theirs:.2f}" if theirs is not None else "-", ratio]


def script_timings(root: Path, runs: int, inv: str, env: dict[str, str]) -> list[list[str]]:
    """inv version / workspace / smoke, and Kubernetes' own ways to get the first two."""
    bash = shutil.which("bash") or "bash"
    rows = []
    pairs = [
        ("inv version", [inv, "version", f"--kube-root={root}"],
         "source hack/lib/init.sh; kube::version::get_version_vars",
         [bash, "-c", 'KUBE_ROOT="$1"; source "$1/hack/lib/init.sh"; kube::version::get_version_vars', "_", str(root)]),
        ("inv workspace", [inv, "workspace", f"--kube-root={root}"],
         "source hack/lib/init.sh; kube::golang::setup_env",
         [bash, "-c", 'KUBE_ROOT="$1"; source "$1/hack/lib/init.sh"; kube::golang::setup_env', "_", str(root)]),
    ]
    for label, argv, equiv, theirs_argv in pairs:
        mine = bb.time_task(label, runs, True, lambda a=argv, w=label: bb.run_timed(a, cwd=REPO, env=env, what=w))
        try:
            theirs = bb.time_task(equiv, runs, True,
                                  lambda a=theirs_argv, w=equiv: bb.run_timed(a, cwd=root, env=env, what=w))
            rows.append(_row(f"`{label}`", _median(mine), f"`{equiv}`", _median(theirs)))
        except bb.BenchError as exc:
            bb.say(f"[{equiv}] not comparable here: {exc}")
            rows.append(_row(f"`{label}`", _median(mine), f"`{equiv}` (failed here)", None))
    if shutil.which("etcd"):
        smoke = bb.time_task("inv smoke", runs, True, lambda: bb.run_timed(
            [inv, "smoke", f"--kube-root={root}"], cwd=REPO, env=env, what="inv smoke"))
        rows.append(_row("`inv smoke` (etcd + apiserver boot, /readyz, ConfigMap)", _median(smoke), "-", None))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kube-root", required=True, help="the tree to measure (the README uses the real v1.20.2)")
    p.add_argument("--what", default="cmd/kube-apiserver", help="package to build (default cmd/kube-apiserver)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per task after one warm-up (default 3)")
    p.add_argument("--out", default="", help="also write the table to this file")
    args = p.parse_args(argv)
    root = Path(args.kube_root).expanduser().resolve()
    inv = shutil.which("inv")
    if not inv:
        print("error: inv not found on PATH", file=sys.stderr)
        return 1
    env = dict(os.environ)
    env["GOCACHE"] = str(Path(env.get("GOCACHE") or bb.DEFAULT_GOCACHE).expanduser())
    try:
        build = bb.bench(argparse.Namespace(kube_root=str(root), what=args.what, runs=args.runs, skip_make=False,
                                            markdown=True, inv=inv))
        workdir = Path(tempfile.mkdtemp(prefix="bench-report-"))
        try:
            images = bi.bench(argparse.Namespace(kube_root=str(root), runs=args.runs, payload_mb=32, inv=inv),
                              workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        scripts = script_timings(root, args.runs, inv, env)
    except bb.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    t = {timing.label.split(" (")[0]: timing for timing in build.timings + images.timings}
    what = args.what
    make = t.get(f"make WHAT={what}")
    rows = [
        _row("`inv --list`", _median(t["inv --list"]), "-", None),
        _row(f"`inv build --what={what}` (nothing changed)", _median(t[f"inv build {what}"]),
             f"`make WHAT={what}`", _median(make) if make else None),
        _row(f"`inv build --force --what={what}`", _median(t[f"inv build --force {what}"]),
             f"`make WHAT={what}`", _median(make) if make else None),
        _row(f"raw `go build` of {what}, same flags", _median(t["raw go build"]), "-", None),
    ]
    noop = t.get("Go's no-op, ldflags without -buildid=") or t.get("raw go build, output in place")
    if noop:
        rows.append(_row(f"`inv build --what={what}` (nothing changed)", _median(t[f"inv build {what}"]),
                         f"Go's own no-op: {noop.label}", _median(noop)))
    cold = next(v for k, v in t.items() if k.startswith("inv images, cold"))
    by_hand = next(v for k, v in t.items() if k.startswith("docker pull + tag by hand"))
    warm = next(v for k, v in t.items() if k.startswith("inv images, warm"))
    rows.append(_row("`inv images`, cold pull from a local mirror", _median(cold),
                     "`docker pull` + `docker tag` per image", _median(by_hand)))
    rows.append(_row("`inv images`, all present", _median(warm), "-", None))
    rows += scripts
    facts = bb.machine_facts()
    lines = [f"Machine: {facts['nproc']} cores, {facts['memory']} memory, {facts['cpu']}; tree {root}; "
             f"{args.runs} runs after a warm-up, medians in seconds.", "",
             "| task | median s | Kubernetes-script equivalent | median s | ratio |",
             "|---|---:|---|---:|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

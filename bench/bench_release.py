"""Benchmark `inv release --quick` in each mode on one tree: first runs and second runs, with peak memory.

    python bench/bench_release.py --kube-root <tree> [--modes native,direct,script] [--runs 3]
                                  [--first-runs N] [--copy-per-mode] [--markdown]

For each mode: a *first run* (with --first-runs) is on a fresh copy of the tree (new `_output`, cold
code generation) with an empty GOCACHE; *second runs* repeat on the same tree with the cache warm
(with --copy-per-mode each mode gets its own copy of the tree, so one mode's outputs never make the
next one's stale: all modes, and so the ratios, in one run).
Script mode (the tree's build/release.sh) is the anchor: ratios are each mode's median over script
mode's, measured in the same run. Peak memory is the largest resident set of any process the run
started (RUSAGE_CHILDREN) and, because script and direct modes build inside containers that are not
our children, also the machine's peak memory in use above the baseline before the run (sampled from
/proc/meminfo four times a second): the figure that compares across modes. The engine is whatever
DOCKER_HOST points at; a fresh engine for first runs is the caller's to start (see bench/README.md).
Images must be present (`inv images` first): the benchmark passes --skip-images.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_build import BenchError, Report, Timing, machine_facts, ratio_row, run_main, run_timed, say  # noqa: E402
from build.release.modes import Mode  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MODES = tuple(m.value for m in Mode)  # the words `inv release --mode` takes
# The targets: second runs native <= 0.35x script, direct <= 0.7x; first runs native <= 0.7x.
TARGETS = {("native", "second"): 0.35, ("direct", "second"): 0.7, ("native", "first"): 0.7}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def used_mb() -> float:
    fields = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            fields[key] = int(rest.split()[0])
    return (fields["MemTotal"] - fields["MemAvailable"]) / 1024


class MemoryPeak:
    """Peak of the machine's memory in use above what was in use at the start."""

    def __init__(self) -> None:
        self.base = used_mb()
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.peak = max(self.peak, used_mb() - self.base)

    def __enter__(self) -> MemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def release_argv(tree: Path, mode: str) -> list[str]:
    inv = shutil.which("inv") or "inv"
    return [inv, "--search-root", str(REPO), "release", "--kube-root", str(tree), "--mode", mode, "--quick",
            "--skip-images"]


def fresh_copy(tree: Path, into: Path) -> Path:
    """The tree without `_output` (symlinks kept), as a first run would see it."""
    dest = into / tree.name
    shutil.copytree(tree, dest, symlinks=True, ignore=lambda d, names: [n for n in names
                                                                        if d == str(tree) and n.startswith("_output")])
    return dest


def bench(args: argparse.Namespace) -> Report:
    tree = Path(args.kube_root).resolve()
    if not (tree / "hack/lib").is_dir():
        raise BenchError(f"{tree} is not a Kubernetes tree", code=2)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise BenchError(f"--modes: unknown {', '.join(bad)} (choose from {', '.join(MODES)})", code=2)
    base_env = {**os.environ, "KBUILD_MIN_DISK_GB": os.environ.get("KBUILD_MIN_DISK_GB", "2")}
    timings: list[Timing] = []
    by_key: dict[tuple[str, str], Timing] = {}
    memory: dict[str, float] = {}
    machine_peak: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-release-") as tmp:
        for mode in modes:
            if args.first_runs:
                first = Timing(f"{mode}: first run (fresh tree, empty GOCACHE)")
                for i in range(args.first_runs):
                    work = Path(tmp) / f"{mode}-{i}"
                    work.mkdir()
                    copy = fresh_copy(tree, work)
                    env = {**base_env, "GOCACHE": str(work / "gocache")}
                    say(f"[{first.label}] run {i + 1}/{args.first_runs} ...")
                    with MemoryPeak() as mem:
                        first.samples.append(run_timed(release_argv(copy, mode), cwd=REPO, env=env,
                                                       what=f"inv release --mode {mode}"))
                    machine_peak[f"{mode} first"] = max(machine_peak.get(f"{mode} first", 0.0), mem.peak)
                    say(f"[{first.label}] {first.samples[-1]:.1f}s")
                    shutil.rmtree(work, ignore_errors=True)
                timings.append(first)
                by_key[(mode, "first")] = first
            second = Timing(f"{mode}: second run (same tree, warm)")
            run_tree = tree
            if args.copy_per_mode:
                (Path(tmp) / f"{mode}-second").mkdir()
                run_tree = fresh_copy(tree, Path(tmp) / f"{mode}-second")
            say(f"[{second.label}] warm-up ...")
            run_timed(release_argv(run_tree, mode), cwd=REPO, env=base_env, what=f"inv release --mode {mode}")
            before = peak_rss_mb()
            for i in range(args.runs):
                with MemoryPeak() as mem:
                    second.samples.append(run_timed(release_argv(run_tree, mode), cwd=REPO, env=base_env,
                                                    what=f"inv release --mode {mode}"))
                machine_peak[f"{mode} second"] = max(machine_peak.get(f"{mode} second", 0.0), mem.peak)
                say(f"[{second.label}] run {i + 1}/{args.runs}: {second.samples[-1]:.1f}s")
            memory[mode] = max(before, peak_rss_mb())
            timings.append(second)
            by_key[(mode, "second")] = second
    ratios = []
    for (mode, kind), target in TARGETS.items():
        if (mode, kind) in by_key and ("script", kind) in by_key:
            ratios.append(ratio_row(f"{mode} / script, {kind} runs", by_key[(mode, kind)], by_key[("script", kind)],
                                    target, True))
    facts = [(k, v) for k, v in machine_facts().items()]
    facts.append(("tree", str(tree)))
    facts += [(f"peak RSS of a child process, up to {m}", f"{mb:.0f} MB") for m, mb in memory.items()]
    facts += [(f"machine memory in use above baseline, {k} runs (peak)", f"{mb:.0f} MB")
              for k, mb in machine_peak.items()]
    facts.append(("method", f"wall time of `inv release --quick --skip-images --mode M`; {args.runs} second runs "
                            "after a warm-up; first runs on a fresh copy with an empty GOCACHE"))
    return Report("inv release", timings, ratios, facts, [])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kube-root", required=True, help="the Kubernetes tree (its images present in the engine)")
    p.add_argument("--modes", default="script,direct,native", help="comma-separated modes (script is the anchor)")
    p.add_argument("--runs", type=int, default=3, help="second runs per mode (median reported)")
    p.add_argument("--first-runs", type=int, default=0, help="first runs per mode on a fresh copy (0: none)")
    p.add_argument("--copy-per-mode", action="store_true",
                   help="run each mode's second runs on its own fresh copy of the tree")
    p.add_argument("--markdown", action="store_true", help="print a markdown table (for the README)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(lambda: bench(args), args.markdown, catch_all=True)


if __name__ == "__main__":
    sys.exit(main())

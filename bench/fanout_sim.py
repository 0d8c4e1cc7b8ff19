#!/usr/bin/env python3
"""What spreading a release over N engines buys: a simulation from measured per-platform build times.

The platforms and their targets are the tree's own (`make cross`'s lists, as `inv release` reads them
from hack/lib/golang.sh). Each platform's build time is what you measured (``--seconds P=S``, e.g. from
the `build` phase of `inv release --mode native --platform P`'s report); a platform you did not measure
gets the measured seconds per target times its own number of targets (marked "est."). The engines take
platforms exactly as `inv release --engine …` does (`engines.schedule.Schedule`: one platform per engine
at a time, the heaviest first). Packaging runs once, on this machine, after the last platform, and is
added as ``--package-seconds``.

    python bench/fanout_sim.py --kube-root TREE --seconds linux/arm64=1130 [--seconds …] [--engines 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def platform_targets(root: Path) -> dict[str, list[str]]:
    from build.release.plan import per_platform, release_groups
    from workspace.tree import KubeTree

    return per_platform(release_groups(KubeTree(root), {}))


def durations(targets: dict[str, list[str]], measured: dict[str, float]) -> tuple[dict[str, float], set[str]]:
    """Seconds per platform: the measured ones, the others scaled by their number of targets."""
    per_target = sum(measured.values()) / sum(len(targets[p]) for p in measured)
    out = {p: measured.get(p, per_target * len(ts)) for p, ts in targets.items()}
    return out, set(targets) - set(measured)


def wall_time(targets: dict[str, list[str]], seconds: dict[str, float], engines: int) -> float:
    """The time the last engine finishes, the platforms handed out as the release hands them out."""
    from engines.schedule import Schedule, weights

    names = [f"engine-{i + 1}" for i in range(engines)]
    sched = Schedule(weights(targets), names)
    free_at = dict.fromkeys(names, 0.0)
    running = {}
    now = 0.0
    while not sched.finished:
        for name in names:
            if name not in running:
                attempt = sched.take(name)
                if attempt is not None:
                    running[name] = (now + seconds[attempt.platform], attempt)
        name = min(running, key=lambda n: (running[n][0], names.index(n)))
        now, attempt = running.pop(name)
        free_at[name] = now
        sched.succeeded(attempt)
    return max(free_at.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kube-root", required=True, type=Path, help="the Kubernetes tree (its platform lists)")
    parser.add_argument("--seconds", action="append", default=[], metavar="OS/ARCH=S",
                        help="a measured build time of one platform (repeatable; at least one)")
    parser.add_argument("--package-seconds", type=float, default=0.0,
                        help="the packaging's time, added once after the builds")
    parser.add_argument("--engines", type=int, default=8, help="simulate 1..N engines (default 8)")
    args = parser.parse_args(argv)
    targets = platform_targets(args.kube_root)
    measured = {}
    for item in args.seconds:
        platform, _, value = item.partition("=")
        if platform not in targets:
            parser.error(f"--seconds {item}: {platform} is not one of the tree's platforms ({', '.join(targets)})")
        try:
            measured[platform] = float(value)
        except ValueError:
            parser.error(f"--seconds {item}: expected OS/ARCH=SECONDS")
    if not measured:
        parser.error("give at least one --seconds OS/ARCH=S")
    seconds, estimated = durations(targets, measured)
    print(f"{len(targets)} platforms, {sum(len(t) for t in targets.values())} builds of a target in all")
    for platform, ts in sorted(targets.items(), key=lambda kv: -seconds[kv[0]]):
        mark = "est." if platform in estimated else "measured"
        print(f"  {platform:16} {len(ts):3} targets  {seconds[platform]:7.0f} s  ({mark})")
    one = wall_time(targets, seconds, 1) + args.package_seconds
    print(f"\n{'engines':>7}  {'wall time':>10}  {'vs 1 engine':>11}")
    for n in range(1, args.engines + 1):
        wall = wall_time(targets, seconds, n) + args.package_seconds
        print(f"{n:7}  {wall / 60:8.1f} m  {one / wall:10.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

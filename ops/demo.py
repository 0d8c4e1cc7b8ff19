"""`inv demo`: the bundled sample tree as a tagged repository, then workspace → version → build → --version."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from build.driver import BuildJob, build_tree
from build.targets import resolve_targets
from build.version import compute
from common.cli import info
from common.errors import KBError, UsageError
from workspace.layout import ensure_workspace, plan_layout
from workspace.tree import load_tree


def run_demo(base: Path, era: str, what: str, environ: Mapping[str, str]) -> Path:
    """Materialise the sample tree as a tagged git repository, then workspace → version → build → --version."""
    from workspace.sample import ERAS, materialize
    from workspace.source import init_repo

    if era not in ERAS:
        raise UsageError(f"--era {era!r}: choose one of {', '.join(ERAS)}")
    dest = base / era
    if dest.exists() and "_output" not in dest.resolve().parts:
        raise KBError(f"refusing to remove {dest}: not under _output")
    base.mkdir(parents=True, exist_ok=True)
    # The new tree is made beside the old one and checked (--what among its commands) before the old
    # one goes: a bad --what leaves the previous demo as it was.
    staging = base / f".{era}.new-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        materialize(staging, era)
        resolve_targets(load_tree(staging), [what])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    commit = init_repo(dest, "v1.20.2", "sample tree for inv demo")
    info(f"sample tree ({era} era) at {dest}, commit {commit[:12]} tagged v1.20.2")
    tree = load_tree(dest)
    layout = plan_layout(tree, environ)
    ensure_workspace(layout)
    stamp = compute(tree.root, environ)
    print("\n".join(stamp.shell_lines()))
    built = build_tree(tree, BuildJob(whats=(what,)), environ)
    if not built:
        raise KBError("the demo built nothing")
    binary = built[0].path
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, errors="replace",
                         stdin=subprocess.DEVNULL)
    print(f"$ {binary} --version")
    print(out.stdout.strip() or out.stderr.strip())
    if out.returncode != 0:
        raise KBError(f"{binary} --version failed (exit {out.returncode})")
    return binary

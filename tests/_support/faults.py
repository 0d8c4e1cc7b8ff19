"""Hostile environments for the fault tests: read-only mounts, unreadable files, snapshots of a tree.

We run as root, so ``chmod`` alone stops nothing: a read-only tree is a real read-only bind mount,
and an unreadable file is mode 000 read by a process without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH
(``setpriv`` drops them from the bounding set, so the ``inv`` it starts can't regain them).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO, require

# git refreshes its index's stat cache on `git status`; that file is git's, not the user's.
VOLATILE = {".git/index"}


def snapshot(root: Path, *, skip_output: bool = False) -> dict[str, str]:
    """Every entry under ``root``: a file's sha256, a link's target, "dir" for a directory."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if skip_output and rel_dir.parts[:1] and rel_dir.parts[0].startswith("_output"):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if rel in VOLATILE or (skip_output and rel.startswith("_output")):
                continue
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            elif not p.is_file():  # a FIFO or a device: reading it would block or never end
                out[rel] = f"special:{stat.S_IFMT(p.lstat().st_mode):o}"
            else:
                try:
                    out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
                except OSError as exc:
                    out[rel] = f"unreadable:{exc.errno}"
    return out


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Entries that existed before and are gone or different now (new entries are not counted)."""
    return sorted(k for k, v in before.items() if after.get(k) != v)


def can_mount() -> bool:
    probe = Path("/tmp") / f"kbuild-mount-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(["mount", "--bind", str(probe), str(probe)], capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], capture_output=True)
        return ok
    finally:
        probe.rmdir()


@contextlib.contextmanager
def read_only(source: Path, mountpoint: Path) -> Iterator[Path]:
    """``source`` bind-mounted read-only at ``mountpoint`` (a real EROFS, even for root)."""
    require(os.geteuid() == 0 and shutil.which("mount") is not None and can_mount(),
            "root and mount(8) for a read-only bind mount")
    mountpoint.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(mountpoint)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mountpoint)], check=True)
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def no_dac_override() -> list[str]:
    """Prefix for a command that must obey file modes although it runs as root."""
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search"]


def run_inv(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None,
            cwd: Path = REPO, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`inv` as conftest.inv runs it, optionally under ``prefix`` (e.g. no_dac_override())."""
    exe = shutil.which("inv") or "inv"
    return subprocess.run([*(prefix or []), exe, "--search-root", str(REPO), *args], cwd=cwd,
                          capture_output=True, text=True, env=env if env is not None else dict(os.environ),
                          stdin=subprocess.DEVNULL, timeout=timeout)


def project_copy(dest: Path) -> Path:
    """A project directory whose tasks.py and packages are this repository's, for a project-level
    invoke.yaml of our own (invoke reads the one beside tasks.py)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("tasks.py", "common", "build", "images", "workspace"):
        (dest / name).symlink_to(REPO / name)
    return dest


def assert_one_line_failure(proc: subprocess.CompletedProcess[str], *needles: str, max_lines: int = 4) -> str:
    """Non-zero exit, no traceback, one ERROR line (plus a TIP) that says each of ``needles``."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "Traceback" not in out, out
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, out
    assert len(proc.stderr.strip().splitlines()) <= max_lines, out
    for needle in needles:
        assert needle in errors[0], (needle, out)
    return errors[0]

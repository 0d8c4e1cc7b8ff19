"""`inv clean`: remove build outputs under _output, never anything else, never through a symlink."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from common.errors import KBError
from workspace.layout import check_writable


def clean_targets(root: Path, everything: bool) -> list[Path]:
    """What `clean` removes: _output/local (and the _output/bin link), or all of _output."""
    output = root / "_output"
    if everything:
        return [output]
    return [output / "local", output / "bin"]


def _check(path: Path, root: Path) -> None:
    output = root / "_output"
    if output.is_symlink():
        raise KBError(f"{output} is a symlink; refusing to clean through it",
                      hint="remove the link yourself if that is what you want")
    if not path.absolute().is_relative_to(output.absolute()):
        raise KBError(f"refusing to remove {path}: not under {output}")
    parent = path.parent.resolve()
    if not parent.is_relative_to(root.resolve()):
        raise KBError(f"refusing to remove {path}: its parent leaves the tree")


def _make_writable_and_retry(func: Callable[[str], object], path: str, _exc: object) -> None:
    # Go makes module-cache directories read-only; make them writable and try again.
    os.chmod(os.path.dirname(path), stat.S_IRWXU)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, stat.S_IRWXU)
    func(path)


def remove(path: Path) -> bool:
    """Remove one path without following symlinks: a link is unlinked, a directory removed with its contents."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return True
    if path.is_dir():
        # shutil.rmtree never follows symlinks inside the tree (it unlinks them).
        shutil.rmtree(path, onerror=_make_writable_and_retry)
        return True
    return False


def clean(root: Path, everything: bool) -> list[Path]:
    """Remove the outputs of the tree at ``root``; returns what was removed."""
    removed = []
    targets = clean_targets(root, everything)
    for path in targets:
        _check(path, root)
    for path in targets:
        if os.path.lexists(path):  # nothing to remove is no reason to refuse a read-only tree
            check_writable(root, path.parent, f"remove {path}")
            if path.is_dir() and not path.is_symlink():
                check_writable(root, path, f"remove {path}")
    for path in targets:
        if remove(path):
            removed.append(path)
    return removed

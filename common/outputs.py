"""The one guard every write under a tree's ``_output`` goes through, and the file writer built on it.

- ``check_inside``: before the first write, refuse a path under ``ROOT/_output`` that goes through a
  symlink leaving ``_output`` (``_output`` itself may only point inside the tree). ``inv clean``
  already refuses to delete through such links; this keeps builds, releases, ``ci`` and ``workspace``
  from writing through them.
- ``output_target``: where a user-named ``--report``/``--junit``/``--save PATH`` will go: a directory is
  refused with a TIP, the parent must exist (kbuild never creates directories the user did not name).
- ``write_file``: write a whole file atomically (a temporary file in the same directory, renamed into
  place, removed on every failure), with an ``OSError`` said as one line naming the path and the step.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.errors import KBError, TreeError, UsageError

__all__ = ["check_inside", "make_dirs", "os_failure", "output_target", "remove_quietly", "translate_os_errors",
           "write_file"]

_HINTS = {
    errno.ENOSPC: "free some disk space (or give the tree's _output a bigger file system), then run it again",
    errno.EDQUOT: "the disk quota is used up: free some space, then run it again",
    errno.EROFS: "the file system is mounted read-only: work on a writable copy",
    errno.EACCES: "check the permissions (and the owner) of the path",
    errno.EPERM: "check the permissions, and for immutable files `lsattr`",
}


def _under(path: str, base: str) -> bool:
    return path == base or path.startswith(base.rstrip(os.sep) + os.sep)


def check_inside(root: Path, *paths: Path) -> None:
    """Refuse, before anything is written, when writing any of ``paths`` would go through a symlink that
    leaves the tree's ``_output``: ``_output`` itself pointing outside the tree, or any component below it
    (``_output/local``, ``_output/local/go``, ``_output/ci``, …) pointing outside ``_output``.
    Paths that are not under ``ROOT/_output`` are not this guard's business and pass."""
    root = Path(os.path.abspath(root))
    output = root / "_output"
    real_root = os.path.realpath(root)
    for path in paths:
        path = Path(os.path.abspath(path))
        if not _under(str(path), str(output)):
            continue
        if os.path.islink(output):
            target = os.path.realpath(output)
            if not _under(target, real_root):
                raise _escape(output, path, f"outside the tree {root}")
        allowed = os.path.realpath(output)
        current = output
        for part in path.relative_to(output).parts:
            current = current / part
            if not os.path.lexists(current):
                break
            if os.path.islink(current) and not _under(os.path.realpath(current), allowed):
                raise _escape(current, path, f"outside {output}")


def _escape(link: Path, path: Path, where: str) -> TreeError:
    try:
        target = os.readlink(link)
    except OSError:
        target = os.path.realpath(link)
    doing = "" if link == path else f" (writing {path})"
    return TreeError(f"{link} is a symlink to {target}, {where}: refusing to write through it{doing}",
                     hint=f"kbuild writes only inside the tree's _output: remove the link (rm {link}) and run "
                          "it again, or build a copy of the tree")


def make_dirs(root: Path, path: Path) -> None:
    """``mkdir -p`` for a directory kbuild owns under ``ROOT/_output``, after ``check_inside``."""
    check_inside(root, path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_failure(exc, "create the directory", path) from None


def output_target(path: Path, flag: str, example: str) -> bool:
    """Check where ``flag PATH`` will write, before any work is done: a directory is refused, and a
    regular file (new or not) needs an existing, writable directory. Returns True for a device, a pipe
    or a /dev/... path, which is written directly (renaming over a device node would replace it)."""
    try:
        mode: int | None = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise KBError(f"{flag} {path}: {exc.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"{flag} {path}: is a directory", hint=f"give a file name, e.g. {path / example}")
    if (mode is not None and not stat.S_ISREG(mode)) or str(path).startswith(("/dev/", "/proc/self/fd/")):
        return True
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: the directory {path.parent} does not exist",
                         hint="kbuild does not create it: make it first, or give a path in an existing directory")
    if not os.access(path.parent, os.W_OK):
        raise KBError(f"{flag} {path}: the directory {path.parent} is not writable")
    return False


def os_failure(exc: OSError, step: str, path: Path, *, name_given: bool = False) -> KBError:
    """One line for an OSError met while doing ``step`` to ``path``: the path, the step, the reason.
    The path the error names wins over ``path`` unless ``name_given``."""
    named = path if name_given or exc.filename is None else exc.filename
    reason = exc.strerror or type(exc).__name__
    return KBError(f"cannot {step} {named}: {reason}", hint=_HINTS.get(exc.errno or 0))


@contextmanager
def translate_os_errors(step: str, path: Path) -> Iterator[None]:
    """Say an OSError inside the block as ``cannot STEP PATH: reason`` (the path it names, else ``path``)."""
    try:
        yield
    except OSError as exc:
        raise os_failure(exc, step, path) from None


def remove_quietly(path: Path) -> None:
    """Remove a partial file; a failure here must not hide the error that made it partial."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def write_file(path: Path, data: str | bytes, *, step: str, root: Path | None = None, flag: str | None = None,
               example: str = "report.json", make_parent: bool = False) -> Path:
    """Write ``data`` to ``path`` whole or not at all.

    ``root``: the tree; a path under its ``_output`` is checked with ``check_inside`` first.
    ``flag``: the path was named by the user with this flag: it must not be a directory and its
    directory must exist. ``make_parent``: the directory is kbuild's own (under ``_output``) and is made.
    The temporary file sits beside ``path`` and is removed on every failure (Ctrl-C included).
    """
    if root is not None:
        check_inside(root, path)
    direct = False
    if flag is not None and not make_parent:
        direct = output_target(path, flag, example)
    elif make_parent:
        if root is not None:
            make_dirs(root, path.parent)
        else:
            with translate_os_errors("create the directory", path.parent):
                path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    if direct:
        try:
            with path.open("wb") as fh:
                fh.write(raw)
        except OSError as exc:
            raise os_failure(exc, f"write {step}", path, name_given=True) from None
        return path
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(raw)
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        # The temporary name means nothing to the user: name the file being written.
        raise os_failure(exc, f"write {step}", path, name_given=True) from None
    except BaseException:
        remove_quietly(tmp)
        raise
    return path

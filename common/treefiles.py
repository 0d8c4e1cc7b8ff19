"""Reading a tree's files: regular files only, never blocking, never unbounded.

A FIFO where ``go.mod`` or ``hack/lib/golang.sh`` should be makes a plain
``open()`` wait forever for a writer; a character device (``/dev/zero`` behind a
link) never ends. Every file kbuild reads from a tree is opened here with
``O_NONBLOCK`` (a FIFO opens at once), checked with ``fstat`` on the open
descriptor (what is read is what was checked), refused unless it is a regular
file, and read up to a size cap.

Symlinks are followed: real trees link files (``Makefile`` ->
``build/root/Makefile``), and the check is made on what the link leads to.
``check_regular`` does the same check without reading, for files another
program (bash, make) will read.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from common.errors import TreeError

# The largest tree file kbuild reads (golang.sh is ~40 KB, the biggest Dockerfile or yaml a few KB).
MAX_BYTES = 16 * 2**20

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


class NotRegularFile(TreeError):
    """A file kbuild reads from the tree is a FIFO, a device or a socket."""


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO")."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _where(path: Path, root: Path | None) -> str:
    """``rel in <tree>`` when ``path`` is under ``root``, else the path itself."""
    if root is not None:
        try:
            return f"{path.relative_to(root)} in {root}"
        except ValueError:
            pass
    return str(path)


def not_regular(path: Path, root: Path | None, mode: int) -> NotRegularFile:
    where = _where(path, root)
    rel = path.relative_to(root) if root is not None and path.is_relative_to(root) else path
    hint = (f"move it away (if git tracks it, `git -C {root} checkout -- {rel}` puts the file back)"
            if root is not None else "replace it with a regular file")
    return NotRegularFile(f"{where} is not a regular file ({kind_of(mode)})", hint=hint)


def read_bytes(path: Path | str, *, root: Path | None = None, limit: int = MAX_BYTES) -> bytes | None:
    """The bytes of the regular file at ``path``, or None when it is missing or a directory.

    Raises ``NotRegularFile`` for a FIFO, device or socket and ``TreeError`` for a file
    larger than ``limit``; both name the file (relative to ``root`` when given).
    """
    path = Path(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket (or a FIFO on a system without O_NONBLOCK semantics)
            try:
                mode = os.stat(path).st_mode
            except OSError:
                raise exc from None
            raise not_regular(path, root, mode) from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return None  # not a file here, as when it is missing (reading a directory neither blocks nor ends)
        if not stat.S_ISREG(st.st_mode):
            raise not_regular(path, root, st.st_mode)
        if st.st_size > limit:
            raise _too_big(path, root, st.st_size, limit)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew after the fstat
                raise _too_big(path, root, size, limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: Path | str, *, root: Path | None = None, limit: int = MAX_BYTES) -> str | None:
    """``read_bytes`` decoded as UTF-8; bytes that are not UTF-8 become U+FFFD (the text is only parsed)."""
    data = read_bytes(path, root=root, limit=limit)
    return None if data is None else data.decode("utf-8", errors="replace")


def check_regular(root: Path, rels: Iterable[str]) -> None:
    """Refuse, naming the first, any of ``rels`` under ``root`` that exists and is not a regular file.

    For files another program reads (bash sources golang.sh, make reads the Makefile): a FIFO
    there would block it just as it blocks us. Missing files, dangling links and directories (which
    fail at once, as a missing file does) are left to the reader.
    """
    for rel in rels:
        path = root / rel
        try:
            mode = os.stat(path).st_mode
        except OSError:
            continue
        if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
            raise not_regular(path, root, mode)


def _too_big(path: Path, root: Path | None, size: int, limit: int) -> TreeError:
    return TreeError(f"{_where(path, root)} is {size / 2**20:.1f} MiB: more than kbuild reads from a tree "
                     f"file ({limit / 2**20:.0f} MiB)", hint="it is not a file of a Kubernetes tree: move it away")

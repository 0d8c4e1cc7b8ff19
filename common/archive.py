"""kbuild's own check of every tar member it extracts, on every Python (tarfile's filters are not
relied upon: 3.11.7's ``data`` filter has a known bypass, CVE-2025-4517).

Standard library only, and no imports from the rest of kbuild: ``install.sh`` carries this module.

The rules, member by member, before anything is written:

- a name is relative, has no ``..``, no control character, components of at most 255 bytes and
  at most ``MAX_NAME`` bytes in all, and appears once;
- only regular files and directories, and (where allowed) symbolic links with a relative target
  that stays inside the root; never hardlinks, devices or FIFOs;
- a file's size from its header fits in what is left of ``budget`` (the free disk, or what a
  manifest declared): a header never makes us write more than that.

Every path is created relative to directory descriptors opened one component at a time with
``O_NOFOLLOW`` from the root (a directory the caller created), so no member is ever written through a
symlink, whatever an earlier member made; files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW``.
When all members are in, every link made is resolved inside the root, one component at a time: a
chain that leads outside is refused (and the caller removes the root).
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tarfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

MAX_NAME = 1024          # bytes of a member's name: Kubernetes' longest is ~200
NAME_MAX = 255           # bytes of one component (the kernel's limit)
MAX_HOPS = 40            # symlinks followed while resolving one link (the kernel's limit)
CHUNK = 1 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def printable(text: str, limit: int = 160) -> str:
    """``text`` safe for a terminal and one line: control characters (ESC, CR, LF, bidi overrides)
    shown as escapes, and cut to ``limit`` characters."""
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                         else f"\\u{ord(m.group()):04x}", text)
    shown = shown.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates from bad bytes
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


class ArchiveError(tarfile.TarError):
    """A member refused: ``member`` (its name as in the archive) and ``rule`` (what it broke)."""

    def __init__(self, member: str, rule: str) -> None:
        self.member, self.rule = member, rule
        super().__init__(f"member {printable(member)!r}: {rule}")


def member_parts(name: str) -> tuple[str, ...]:
    """The components of a member's name, checked; ``()`` for the root itself (``.``, ``./``)."""
    if "\0" in name:
        raise ArchiveError(name, "a NUL byte in the name")
    if _CONTROL.search(name):
        raise ArchiveError(name, "a control character in the name")
    if name.startswith("/"):
        raise ArchiveError(name, "an absolute name (members must stay inside the destination)")
    if len(os.fsencode(name)) > MAX_NAME:
        raise ArchiveError(name, f"a name longer than {MAX_NAME} bytes")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ArchiveError(name, "'..' in the name (members must stay inside the destination)")
    if any(len(os.fsencode(p)) > NAME_MAX for p in parts):
        raise ArchiveError(name, f"a path component longer than {NAME_MAX} bytes")
    return parts


def check_member(member: tarfile.TarInfo, *, symlinks: bool = True) -> tuple[str, ...]:
    """The member's components, once its name, type and (for a link) target pass the rules."""
    parts = member_parts(member.name)
    if member.isreg():
        if not parts:
            raise ArchiveError(member.name, "a file with no name")
        if member.size < 0:
            raise ArchiveError(member.name, "a negative size")
    elif member.isdir():
        pass
    elif member.issym():
        if not symlinks:
            raise ArchiveError(member.name, "a symbolic link (only files and directories belong here)")
        if not parts:
            raise ArchiveError(member.name, "a link with no name")
        link_target_ok(member.name, parts, member.linkname)
    elif member.islnk():
        raise ArchiveError(member.name, "a hard link (only files, directories and links inside are allowed)")
    elif member.ischr() or member.isblk():
        raise ArchiveError(member.name, "a device (only files and directories belong here)")
    elif member.isfifo():
        raise ArchiveError(member.name, "a FIFO or other device (only files and directories belong here)")
    else:
        raise ArchiveError(member.name, f"an entry of tar type {member.type!r} (only files and directories)")
    return parts


def link_target_ok(name: str, parts: tuple[str, ...], target: str) -> None:
    """A link's target read as text: relative, no NUL or control character, and (lexically, from
    where the link is) not above the root. Chains through other links are checked at the end."""
    if not target or "\0" in target or _CONTROL.search(target):
        raise ArchiveError(name, "a link with an empty or unprintable target")
    if target.startswith("/"):
        raise ArchiveError(name, f"a link to an absolute path ({printable(target)})")
    if len(os.fsencode(target)) > MAX_NAME:
        raise ArchiveError(name, f"a link target longer than {MAX_NAME} bytes")
    depth = list(parts[:-1])
    for p in target.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not depth:
                raise ArchiveError(name, f"a link that leads outside the destination ({printable(target)})")
            depth.pop()
        else:
            depth.append(p)


class Extractor:
    """Members into ``root`` (an existing directory the caller made and will remove on failure)."""

    def __init__(self, root: Path, *, symlinks: bool = True, budget: int | None = None) -> None:
        self.root = root
        self.symlinks = symlinks
        self.budget = budget if budget is not None else free_bytes(root)
        self.seen: set[tuple[str, ...]] = set()
        self.links: list[tuple[str, tuple[str, ...]]] = []
        self.dirs: list[tuple[tuple[str, ...], int, float]] = []
        self.root_fd = os.open(root, _DIR_FLAGS)

    def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _dir(self, name: str, parts: Iterable[str], create: bool = True) -> int:
        """A descriptor of the directory ``parts`` under the root, each component opened with
        O_NOFOLLOW (and made, mode 0700 until the end, when missing)."""
        fd = os.dup(self.root_fd)
        try:
            for p in parts:
                try:
                    nxt = os.open(p, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(p, 0o700, dir_fd=fd)
                    nxt = os.open(p, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                        raise ArchiveError(name, f"its path passes through {printable(p)!r}, which is not a "
                                                 "directory (a link or a file made by an earlier member)") from None
                    raise
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """Check ``member``, then write it (a file's bytes read from ``tar``)."""
        parts = check_member(member, symlinks=self.symlinks)
        if parts in self.seen:
            raise ArchiveError(member.name, "appears twice in the archive")
        if member.isreg() and member.size > self.budget:
            raise ArchiveError(member.name, f"its header says {member.size} bytes, more than the {self.budget} "
                                            "left (the free disk, or what the manifest declared)")
        if not parts:
            return  # "." itself: the root is ours
        self.seen.add(parts)
        parent = self._dir(member.name, parts[:-1])
        try:
            last = parts[-1]
            if member.isdir():
                try:
                    os.mkdir(last, 0o700, dir_fd=parent)
                except FileExistsError:
                    os.close(self._dir(member.name, parts))  # an existing directory is fine, not a link
                self.dirs.append((parts, member.mode & 0o777, member.mtime))
            elif member.issym():
                os.symlink(member.linkname, last, dir_fd=parent)
                self.links.append((member.name, parts))
            else:
                self._file(tar, member, parent, last)
        except FileExistsError:
            raise ArchiveError(member.name, "is already there (an earlier member made it)") from None
        finally:
            os.close(parent)

    def _file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, last: str) -> None:
        src = tar.extractfile(member)
        if src is None:
            raise ArchiveError(member.name, "has no data")
        fd = os.open(last, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            left = member.size
            while left > 0:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    raise ArchiveError(member.name, f"cut off: {member.size - left} of its {member.size} bytes")
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
                left -= len(chunk)
            self.budget -= member.size
            os.fchmod(fd, member.mode & 0o777)  # no setuid/setgid/sticky, no owner from the archive
            os.utime(fd, (member.mtime, member.mtime))
        finally:
            os.close(fd)

    def finish(self) -> None:
        """Every link resolved inside the root; then the directories' modes and times (deepest first)."""
        for name, parts in self.links:
            self._resolves_inside(name, parts)
        for parts, mode, mtime in sorted(self.dirs, key=lambda d: -len(d[0])):
            fd = self._dir("/".join(parts), parts, create=False)
            try:
                os.fchmod(fd, mode | 0o700)  # we made it; the owner keeps access to what is inside
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)

    def _resolves_inside(self, name: str, parts: tuple[str, ...]) -> None:
        """Follow the link ``parts`` as the kernel would, never leaving the root: a component that
        is a link is replaced by its target; ``..`` at the root is an escape."""
        here: list[str] = list(parts[:-1])
        todo = [p for p in os.readlink(os.path.join(*parts), dir_fd=self.root_fd).split("/")][::-1]
        hops = 1
        while todo:
            p = todo.pop()
            if p in ("", "."):
                continue
            if p == "..":
                if not here:
                    raise ArchiveError(name, "a link (through other links) that leads outside the destination")
                here.pop()
                continue
            try:
                st = os.lstat(os.path.join(*here, p), dir_fd=self.root_fd)
            except FileNotFoundError:
                here.append(p)  # dangling from here on: the rest is read as names
                continue
            except NotADirectoryError:
                return  # through a file: the kernel stops here too
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_HOPS:
                    raise ArchiveError(name, "a loop of links")
                target = os.readlink(os.path.join(*here, p), dir_fd=self.root_fd)
                if target.startswith("/"):
                    raise ArchiveError(name, "a link (through other links) to an absolute path")
                todo.extend(target.split("/")[::-1])
            else:
                here.append(p)


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s filesystem."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def extract_all(tar: tarfile.TarFile, root: Path, *, symlinks: bool = True, budget: int | None = None) -> None:
    """Every member of ``tar`` (stream mode is fine) into ``root``, by the rules above."""
    with Extractor(root, symlinks=symlinks, budget=budget) as out:
        for member in tar:
            out.add(tar, member)
        out.finish()


def create_exclusive(path: Path, mode: int = 0o600) -> IO[bytes]:
    """``path`` opened for writing only if nothing (not even a dangling link) is there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    return os.fdopen(fd, "wb")

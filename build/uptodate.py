"""Skip a go build whose inputs have not changed since the binaries were made.

Kubernetes' `make WHAT=` relinks every time (a new buildDate each run). With
reproducible stamps the same inputs give the same bytes, so a build whose key
— go version, command line, build environment and a fingerprint of every file
in the tree — matches the one recorded beside the binaries can be skipped.
The fingerprint is (path, size, mtime, inode, ctime) of every file outside
`_output*` and `.git`: over-inclusive (any change anywhere rebuilds), never
stale. ctime can't be set back by `touch -r` or a restore, so a file rewritten
with its size and mtime kept still counts as changed.

A binary counts as the one recorded when its size, mtime, inode and ctime are
the recorded ones; when only inode or ctime differ (a copy, a restore, a
`touch -r`) its sha256 decides. A stamps file of any other shape than ours is
treated as absent: the build runs and rewrites it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NotRequired, TypedDict, TypeGuard

from common.system import sha256_of
from common.treefiles import not_regular

_ENV_KEYS = re.compile(r"^(GO\w*|CGO_\w+|CC|CXX|AR|PKG_CONFIG\w*|PATH|KUBE_\w+|SOURCE_DATE_EPOCH|DBG)$")


def tree_fingerprint(root: Path) -> str:
    """A digest of every file's path, size and mtime in the tree (build outputs and .git excluded).

    Names are hashed as the bytes they are on disk (a committed name that is not UTF-8 is fine).
    A FIFO or a device in the tree is refused, naming it: go or make reading it would block.
    """
    h = hashlib.blake2b(digest_size=20)

    def walk(directory: bytes, top: bool) -> None:
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if top and (entry.name.startswith(b"_output") or entry.name == b".git"):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, False)
                else:
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                        raise not_regular(Path(os.fsdecode(entry.path)), root, st.st_mode)
                    h.update(entry.path + f"\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_ctime_ns}\n"
                             .encode())

    walk(os.fsencode(root), True)
    return h.hexdigest()


def build_key(go_version: str, argv: list[str], env: Mapping[str, str], fingerprint: str) -> str:
    relevant = {k: v for k, v in env.items() if _ENV_KEYS.match(k)}
    material = json.dumps({"go": go_version, "argv": argv, "env": relevant, "tree": fingerprint}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def stamp_file(output: Path, platform: str) -> Path:
    """Where the keys of one platform's binaries are kept (outside the bin dir, which holds binaries only)."""
    return output / ".kbuild" / f"stamps-{platform.replace('/', '-')}.json"


class StampEntry(TypedDict):
    """What is recorded of one binary: the build key and the file as it was placed."""

    key: str
    sha256: str
    size: int
    mtime_ns: int
    ino: NotRequired[int]
    ctime_ns: NotRequired[int]


_FIELDS: dict[str, type] = {"key": str, "sha256": str, "size": int, "mtime_ns": int}
_OPTIONAL: dict[str, type] = {"ino": int, "ctime_ns": int}


def _valid(entry: object) -> TypeGuard[StampEntry]:
    if not isinstance(entry, dict):
        return False
    for name, kind in _FIELDS.items():
        if not isinstance(entry.get(name), kind) or isinstance(entry.get(name), bool):
            return False
    return all(name not in entry or (isinstance(entry[name], kind) and not isinstance(entry[name], bool))
               for name, kind in _OPTIONAL.items())


def _load(stamps_path: Path) -> dict[str, StampEntry]:
    """The well-formed entries of a stamps file; anything else in it (or an unreadable file) counts as absent."""
    try:
        data = json.loads(stamps_path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: entry for name, entry in data.items() if isinstance(name, str) and _valid(entry)}


@contextlib.contextmanager
def locked(stamps_path: Path) -> Iterator[None]:
    """Hold the platform's stamps lock: placing binaries and recording them is one step for concurrent builds."""
    stamps_path.parent.mkdir(parents=True, exist_ok=True)
    with open(stamps_path.with_name(f".{stamps_path.name}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _matches(entry: StampEntry, path: Path, st: os.stat_result) -> bool:
    if entry["size"] != st.st_size or entry["mtime_ns"] != st.st_mtime_ns:
        return False
    if entry.get("ino") == st.st_ino and entry.get("ctime_ns") == st.st_ctime_ns:
        return True  # the no-op path: one stat, nothing read
    # Same size and mtime but another inode or ctime: a copy, a restore or a `touch -r`. The bytes decide.
    try:
        return bool(sha256_of(path) == entry["sha256"])
    except OSError:
        return False


def fresh(stamps_path: Path, outdir: Path, names: list[str], key: str) -> dict[str, StampEntry] | None:
    """The recorded entries if every binary exists, untouched since recorded, with this key; else None."""
    stamps = _load(stamps_path)
    found = {}
    rehashed = []
    for name in names:
        entry = stamps.get(name)
        path = outdir / name
        try:
            st = path.stat()
        except OSError:
            return None
        if entry is None or entry["key"] != key or not _matches(entry, path, st):
            return None
        if (entry.get("ino"), entry.get("ctime_ns")) != (st.st_ino, st.st_ctime_ns):
            rehashed.append(name)
        found[name] = entry
    if rehashed:  # the bytes are the recorded ones: note the new inode/ctime so the next check is cheap again
        with contextlib.suppress(OSError), locked(stamps_path):
            record(stamps_path, outdir, {n: (found[n]["key"], found[n]["sha256"]) for n in rehashed})
    return found


def record(stamps_path: Path, outdir: Path, entries: dict[str, tuple[str, str]]) -> None:
    """Remember {name: (key, sha256)} for binaries just placed in ``outdir`` (call it under ``locked``)."""
    stamps = _load(stamps_path)
    for name, (key, sha) in entries.items():
        st = (outdir / name).stat()
        stamps[name] = {"key": key, "sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                        "ino": st.st_ino, "ctime_ns": st.st_ctime_ns}
    stamps_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamps_path.with_name(f".{stamps_path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(stamps, indent=1, sort_keys=True))
    os.replace(tmp, stamps_path)

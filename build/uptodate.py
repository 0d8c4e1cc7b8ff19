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

# What go itself reads. Kubernetes' own variables (KUBE_VERBOSE, KUBE_BUILD_PLATFORMS, the overrides, …)
# change a binary only through the go command line and environment kbuild derives from them, which the
# key holds already: KUBE_VERBOSE=5 alone never rebuilds.
_ENV_KEYS = re.compile(r"^(GO\w*|CGO_\w+|CC|CXX|AR|PKG_CONFIG\w*|PATH|SOURCE_DATE_EPOCH)$")


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


def key_parts(go_version: str, argv: list[str], env: Mapping[str, str], fingerprint: str) -> dict[str, object]:
    """What a binary's build key is made of: go's version, the command line, what go reads of the
    environment, the tree's fingerprint. Recorded beside the key, so a rebuild can say which one changed."""
    relevant = {k: v for k, v in env.items() if _ENV_KEYS.match(k)}
    return {"go": go_version, "argv": argv, "env": relevant, "tree": fingerprint}


def key_of(parts: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def build_key(go_version: str, argv: list[str], env: Mapping[str, str], fingerprint: str) -> str:
    return key_of(key_parts(go_version, argv, env, fingerprint))


# go build's flags that take a value as the next argument (`-ldflags '-s -w'`).
_VALUE_FLAGS = frozenset({"-ldflags", "-gcflags", "-asmflags", "-gccgoflags", "-tags", "-installsuffix", "-o",
                          "-mod", "-modfile", "-buildmode", "-compiler", "-p", "-pkgdir", "-toolexec", "-overlay",
                          "-pgo", "-buildvcs", "-exec", "-coverpkg", "-covermode"})


def _go_flags(args: list[str]) -> tuple[dict[str, str], list[str]]:
    """({flag: value}, the packages) of a go command line (argv[0] and the subcommand skipped)."""
    flags: dict[str, str] = {}
    packages: list[str] = []
    i = 2
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if arg.startswith("-") and not eq and name in _VALUE_FLAGS and i + 1 < len(args):
            flags[name], i = args[i + 1], i + 2
            continue
        if arg.startswith("-"):
            flags[name] = value
        else:
            packages.append(arg)
        i += 1
    return flags, packages


def _argv_change(old: list[str], new: list[str]) -> str:
    """``go flags changed (-ldflags, -tags)`` and/or ``the packages built with it changed``."""
    (a, a_pkgs), (b, b_pkgs) = _go_flags(old), _go_flags(new)
    said = []
    names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if names:
        said.append(f"go flags changed ({', '.join(names)})")
    if sorted(a_pkgs) != sorted(b_pkgs):
        said.append("the packages built in the same go command changed")
    return "; ".join(said) or "the go command changed"


def why_rebuilt(old: Mapping[str, object] | None, new: Mapping[str, object]) -> str:
    """One phrase: which part of the key changed (``GOLDFLAGS changed``, ``tree files changed``…)."""
    if old is None:
        return "first build"
    said = []
    if old.get("go") != new.get("go"):
        said.append(f"Go changed ({old.get('go')} → {new.get('go')})")
    old_env, new_env = old.get("env"), new.get("env")
    if isinstance(old_env, dict) and isinstance(new_env, dict):
        changed = sorted(k for k in set(old_env) | set(new_env) if old_env.get(k) != new_env.get(k))
        if changed:
            said.append(f"{', '.join(changed)} changed")
    old_argv, new_argv = old.get("argv"), new.get("argv")
    if isinstance(old_argv, list) and isinstance(new_argv, list) and old_argv != new_argv:
        said.append(_argv_change([str(a) for a in old_argv], [str(a) for a in new_argv]))
    if old.get("tree") != new.get("tree"):
        said.append("tree files changed")
    return "; ".join(said) or "its build key changed"


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
    parts: NotRequired[dict[str, object]]


_FIELDS: dict[str, type] = {"key": str, "sha256": str, "size": int, "mtime_ns": int}
_OPTIONAL: dict[str, type] = {"ino": int, "ctime_ns": int}


def _valid(entry: object) -> TypeGuard[StampEntry]:
    if not isinstance(entry, dict):
        return False
    for name, kind in _FIELDS.items():
        if not isinstance(entry.get(name), kind) or isinstance(entry.get(name), bool):
            return False
    if "parts" in entry and not isinstance(entry["parts"], dict):
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


def reasons(stamps_path: Path, outdir: Path, names: list[str], parts: Mapping[str, object]) -> dict[str, str]:
    """Why each of ``names`` must be built again: the first build, a missing or changed binary, or the
    part of its key that changed."""
    stamps = _load(stamps_path)
    out = {}
    key = key_of(parts)
    for name in names:
        entry = stamps.get(name)
        path = outdir / name
        if entry is None:
            out[name] = "first build"
        elif not path.exists():
            out[name] = "the binary is missing"
        elif entry["key"] == key:
            out[name] = "the binary changed since it was built"
        else:
            out[name] = why_rebuilt(entry.get("parts"), parts) if "parts" in entry else "its build key changed"
    return out


def record(stamps_path: Path, outdir: Path, entries: dict[str, tuple[str, str]],
           parts: Mapping[str, object] | None = None) -> None:
    """Remember {name: (key, sha256)} for binaries just placed in ``outdir`` (call it under ``locked``),
    with what the key was made of when given."""
    stamps = _load(stamps_path)
    for name, (key, sha) in entries.items():
        st = (outdir / name).stat()
        previous = stamps.get(name)
        stamps[name] = {"key": key, "sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                        "ino": st.st_ino, "ctime_ns": st.st_ctime_ns}
        if parts is not None:
            stamps[name]["parts"] = dict(parts)
        elif previous is not None and "parts" in previous and previous["key"] == key:
            stamps[name]["parts"] = previous["parts"]  # a re-record (new inode) keeps what the key is made of
    stamps_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamps_path.with_name(f".{stamps_path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(stamps, indent=1, sort_keys=True))
    os.replace(tmp, stamps_path)

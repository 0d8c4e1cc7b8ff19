"""Skip a go build whose inputs have not changed since the binaries were made.

Kubernetes' `make WHAT=` relinks every time (a new buildDate each run). With
reproducible stamps the same inputs give the same bytes, so a build whose key
— go version, command line, build environment and a fingerprint of every file
in the tree — matches the one recorded beside the binaries can be skipped.
The fingerprint is (path, size, mtime) of every file outside `_output*` and
`.git`: over-inclusive (any change anywhere rebuilds), never stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_ENV_KEYS = re.compile(r"^(GO\w*|CGO_\w+|CC|CXX|AR|PKG_CONFIG\w*|PATH|KUBE_\w+|SOURCE_DATE_EPOCH|DBG)$")


def tree_fingerprint(root: Path) -> str:
    """A digest of every file's path, size and mtime in the tree (build outputs and .git excluded)."""
    h = hashlib.blake2b(digest_size=20)

    def walk(directory: str, top: bool) -> None:
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if top and (entry.name.startswith("_output") or entry.name == ".git"):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, False)
                else:
                    st = entry.stat(follow_symlinks=False)
                    h.update(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())

    walk(str(root), True)
    return h.hexdigest()


def build_key(go_version: str, argv: list[str], env: Mapping[str, str], fingerprint: str) -> str:
    relevant = {k: v for k, v in env.items() if _ENV_KEYS.match(k)}
    material = json.dumps({"go": go_version, "argv": argv, "env": relevant, "tree": fingerprint}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def stamp_file(output: Path, platform: str) -> Path:
    """Where the keys of one platform's binaries are kept (outside the bin dir, which holds binaries only)."""
    return output / ".kbuild" / f"stamps-{platform.replace('/', '-')}.json"


def _load(stamps_path: Path) -> dict[str, dict[str, Any]]:
    try:
        stamps: dict[str, dict[str, Any]] = json.loads(stamps_path.read_text())
        return stamps
    except (OSError, ValueError):
        return {}


def fresh(stamps_path: Path, outdir: Path, names: list[str], key: str) -> dict[str, dict[str, Any]] | None:
    """The recorded entries if every binary exists, untouched since recorded, with this key; else None."""
    stamps = _load(stamps_path)
    found = {}
    for name in names:
        entry = stamps.get(name)
        path = outdir / name
        try:
            st = path.stat()
        except OSError:
            return None
        if not entry or entry.get("key") != key or entry.get("size") != st.st_size or \
                entry.get("mtime_ns") != st.st_mtime_ns:
            return None
        found[name] = entry
    return found


def record(stamps_path: Path, outdir: Path, entries: dict[str, tuple[str, str]]) -> None:
    """Remember {name: (key, sha256)} for binaries just placed in ``outdir``."""
    stamps = _load(stamps_path)
    for name, (key, sha) in entries.items():
        st = (outdir / name).stat()
        stamps[name] = {"key": key, "sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    stamps_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamps_path.with_name(f".{stamps_path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(stamps, indent=1, sort_keys=True))
    os.replace(tmp, stamps_path)

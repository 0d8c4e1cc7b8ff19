"""Tiny kits built directly (no Go toolchain, no pip, no engine), and hostile pieces to put in them.

A kit here is what `inv kit --save --no-images` writes, in small: the real install.sh, the sample
tree's files as the source-tree part, a toy Go and kbuild part, the manifest and its sha256. A test
then swaps a part (its sha256 and size written into the manifest, so the manifest stays
self-consistent: what an attacker would do), edits the manifest, or adds members of any type.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One tar member: ``kind`` is file, dir, symlink, hardlink, fifo, chr or blk."""

    name: str
    kind: str = "file"
    data: bytes = b""
    target: str = ""
    mode: int = 0o644
    size: int | None = None  # the header's size, when it should lie about ``data``


_TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
          "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE}


def tar_bytes(entries: Iterable[Entry], *, gz: bool = False) -> bytes:
    """A tar (GNU format: any name length) of ``entries``, in order, duplicates and all."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _TYPES[e.kind]
            info.mode = e.mode if e.kind != "dir" or e.mode != 0o644 else 0o755
            info.mtime = 1_600_000_000
            if e.kind in ("symlink", "hardlink"):
                info.linkname = e.target
            if e.kind == "file":
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
                if e.size is not None:  # patch the header's size field after the fact
                    _patch_size(buf, tf.offset - _padded(len(e.data)) - tarfile.BLOCKSIZE, e.size)
            else:
                tf.addfile(info)
    data = buf.getvalue()
    return gzip.compress(data, mtime=0) if gz else data


def _padded(n: int) -> int:
    return -(-n // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def _patch_size(buf: io.BytesIO, header_at: int, size: int) -> None:
    """Rewrite a header's size field (and its checksum): a header that lies about its data."""
    raw = bytearray(buf.getbuffer()[header_at:header_at + tarfile.BLOCKSIZE])
    if size < 8 ** 11:
        raw[124:136] = b"%011o\0" % size
    else:  # GNU base-256 for sizes an octal field cannot hold
        raw[124:136] = bytes([0x80]) + size.to_bytes(11, "big")
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw)
    buf.getbuffer()[header_at:header_at + tarfile.BLOCKSIZE] = bytes(raw)


def tree_tar(root: Path, *, gz: bool = True) -> bytes:
    """The files of ``root`` as save writes them (tarfile.add of each child)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for child in sorted(root.iterdir()):
            tf.add(str(child), arcname=child.name)
    return gzip.compress(buf.getvalue(), mtime=0) if gz else buf.getvalue()


def base_parts(sample_tree: Path) -> dict[str, bytes]:
    """installer, source-tree (the sample tree's files), go and kbuild (toys): a kit that loads."""
    from kit.save import installer_script

    go = tar_bytes([Entry("bin", "dir"), Entry("bin/gofmt", data=b"#!/bin/sh\n", mode=0o755),
                    Entry("VERSION", data=b"go1.15.5\n")], gz=True)
    tool = tar_bytes([Entry("requirements.txt", data=b"invoke\n"), Entry("kit", "dir"),
                      Entry("kit/__init__.py", data=b"")], gz=True)
    return {"installer": installer_script(), "source-tree": tree_tar(sample_tree), "go": go, "kbuild": tool}


def manifest_dict(parts: dict[str, bytes], **sizes: int) -> dict[str, Any]:
    """The manifest save would write for ``parts``; ``sizes`` overrides a part's declared size."""
    from kit.plan import Manifest, part_for, platform_tag, python_tag

    m = Manifest(parts=tuple(part_for(n, hashlib.sha256(d).hexdigest(), sizes.get(n, len(d)))
                             for n, d in parts.items()),
                 tool_version="test", stamp={"gitVersion": "", "gitTreeState": ""}, tree="files", mode="",
                 images=(), go_version="go1.15.5", go_minimum="", python=python_tag(), platform=platform_tag(),
                 created="2026-01-01T00:00:00Z")
    return json.loads(m.to_json())


def write_kit(path: Path, parts: dict[str, bytes], *, manifest: dict[str, Any] | None = None,
              edit: Callable[[dict[str, Any]], None] | None = None, body: bytes | None = None,
              extra: Iterable[Entry] = (), replace: dict[str, Entry] | None = None) -> Path:
    """A kit of ``parts`` (real sha256 and sizes in the manifest, unless ``manifest``/``edit``/``body``
    say otherwise); ``extra`` members go before the manifest; ``replace`` swaps a member for another
    entry (a symlink in place of a part, say). manifest.sha256 always matches the manifest's bytes."""
    from kit.plan import KINDS, MANIFEST, MANIFEST_SUM

    data = manifest if manifest is not None else manifest_dict(parts)
    if edit is not None:
        edit(data)
    if body is None:
        body = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
    checksum = f"{hashlib.sha256(body).hexdigest()}  {MANIFEST}\n".encode()
    entries = [Entry(KINDS[n][1], data=d, mode=0o755 if n == "installer" else 0o644) for n, d in parts.items()]
    entries += list(extra)
    entries += [Entry(MANIFEST, data=body), Entry(MANIFEST_SUM, data=checksum)]
    swap = replace or {}
    path.write_bytes(tar_bytes(swap.get(e.name, e) for e in entries))
    return path


def sparse_kit(path: Path, parts: dict[str, bytes], name: str, size: int) -> Path:
    """A kit whose member ``name`` (a part's name, or "manifest") is ``size`` bytes of zeros that take no
    disk (a hole): its header says ``size``, and for a part the manifest does too (a self-consistent
    kit; the sha256 is whatever: hashing a TB of zeros is the attack). The hole is seeked over."""
    from kit.plan import KINDS, MANIFEST, MANIFEST_SUM

    if name == "manifest":
        data = manifest_dict(parts)
        before = [Entry(KINDS[n][1], data=d) for n, d in parts.items()]
        hole_at, after = MANIFEST, [Entry(MANIFEST_SUM, data=b"0" * 64 + b"  manifest.json\n")]
    else:
        data = manifest_dict({**parts, name: b""}, **{name: size})
        for p in data["parts"]:
            if p["name"] == name:
                p["sha256"] = "0" * 64
        body = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
        before = [Entry(KINDS[n][1], data=d) for n, d in parts.items() if n != name]
        hole_at = KINDS[name][1]
        after = [Entry(MANIFEST, data=body),
                 Entry(MANIFEST_SUM, data=f"{hashlib.sha256(body).hexdigest()}  {MANIFEST}\n".encode())]
    head = io.BytesIO(tar_bytes([Entry(hole_at, data=b"")])[:tarfile.BLOCKSIZE])
    _patch_size(head, 0, size)
    with path.open("wb") as fh:
        fh.write(_members_only(tar_bytes(before)))
        fh.write(head.getvalue())
        fh.seek(_padded(size), os.SEEK_CUR)
        fh.write(tar_bytes(after))
    return path


def _members_only(tar: bytes) -> bytes:
    """A tar without its end-of-archive blocks (to append more members)."""
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        last = tf.getmembers()[-1]
        return tar[:last.offset_data + _padded(last.size)]


def realpath_overflow_payload(root_len: int, *, up: int = 2, victim: str = "victim") -> list[Entry]:
    """CVE-2025-4517 (tarfile's filters before 3.11.13/3.12.11/3.13.4), after CPython's own test
    (test_realpath_limit_attack): sixteen nested directories with names so long that, expanded through
    a chain of one-letter symlinks, the path overflows PATH_MAX, where os.path.realpath stops resolving
    and the filter's check becomes lexical. A last link there points 16 levels up (the destination),
    ``escape`` points ``up`` levels above that, and a hardlink to ``escape/VICTIM`` then a file of the
    same name overwrite that file outside; ``escape/newfile`` creates one.

    ``root_len``: the length of the directory the tar is extracted into (the components are sized so
    the unexpanded paths fit in PATH_MAX and the expanded ones do not)."""
    steps = "abcdefghijklmnop"
    max_path = os.pathconf("/", "PC_PATH_MAX")
    component = "d" * ((max_path - root_len - 1) // (len(steps) + 1))
    out: list[Entry] = []
    path = ""
    for step in steps:
        out.append(Entry(os.path.join(path, component), "dir", mode=0o777))
        out.append(Entry(os.path.join(path, step), "symlink", target=component))
        path = os.path.join(path, component)
    link = os.path.join(*steps, "l" * 254)
    out.append(Entry(link, "symlink", target=os.path.join(*[".."] * len(steps))))
    out.append(Entry("escape", "symlink", target=os.path.join(link, *[".."] * up)))
    out.append(Entry("flaglink", "hardlink", target=os.path.join("escape", victim)))
    out.append(Entry("flaglink", data=b"overwritten by the kit\n"))
    out.append(Entry("escape/newfile", data=b"created by the kit\n"))
    return out

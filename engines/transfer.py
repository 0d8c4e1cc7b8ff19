"""A tree onto an engine and outputs back, through the engine's API only.

A remote engine cannot see this machine's files, so nothing is bind-mounted: the tree goes into a
named volume as a tar stream (``put_archive`` into a helper container that mounts the volume and is
created, never started), and a directory of outputs comes back as a tar stream (``get_archive``),
written to a staging directory inside ``_output`` and moved into place only when all of it passed
common.archive's rules (no member outside the target, no device, no link leading out, sizes checked
against what really arrived and against the free disk). Bytes are counted both ways.

The helper's image is a one-directory image imported on the engine itself (a few hundred bytes), so
the helper costs nothing on vfs engines, where a container from kube-cross would copy all of it.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import KBError

if TYPE_CHECKING:
    from images.engine import Engine

HELPER_IMAGE = "kbuild/volume-helper:1"
SKIP_TOP = ("_output", ".git")    # never sent: outputs (the build writes its own) and history (the version
                                  # file kbuild writes carries what the build would read from git)
CHUNK = 1 << 20


@dataclass
class Moved:
    """What a transfer moved: bytes on the wire and the seconds it took."""

    nbytes: int = 0
    seconds: float = 0.0


class TransferError(KBError):
    """An archive from an engine broke the rules, or a file could not be sent."""


# --- the helper container ------------------------------------------------------------------------


def ensure_helper_image(engine: Engine) -> None:
    """Import the tiny helper image on ``engine`` when it is not there yet."""
    if engine.image(HELPER_IMAGE) is not None:
        return
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("w")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    repo, tag = HELPER_IMAGE.rsplit(":", 1)
    from docker.errors import APIError

    try:
        engine.api.import_image_from_data(buf.getvalue(), repository=repo, tag=tag, changes=['CMD ["/none"]'])
    except APIError as exc:
        raise KBError(f"cannot import the volume helper image on the engine at {_shown(engine)}: "
                      f"{exc.explanation or exc}") from None
    if engine.image(HELPER_IMAGE) is None:
        raise KBError(f"the engine at {_shown(engine)} did not keep the volume helper image {HELPER_IMAGE}")


def create_helper(engine: Engine, name: str, volumes: dict[str, str], labels: dict[str, str]) -> str:
    """A container (created, never started) mounting ``volumes`` ({volume name: path in it}); returns its id."""
    from docker.errors import APIError, NotFound

    ensure_helper_image(engine)
    api = engine.api
    try:
        api.remove_container(name, force=True)  # a leftover of a killed run
    except NotFound:
        pass
    binds = {vol: {"bind": path, "mode": "rw"} for vol, path in volumes.items()}
    try:
        created = api.create_container(HELPER_IMAGE, command=["/none"], name=name, labels=labels,
                                       host_config=api.create_host_config(binds=binds, network_mode="none"))
    except APIError as exc:
        raise KBError(f"cannot create the volume helper on the engine at {_shown(engine)}: "
                      f"{exc.explanation or exc}") from None
    return str(created["Id"])


def remove_quietly(engine: Engine, container: str | None = None, volume: str | None = None,
                   wait: float = 10.0) -> None:
    """Best effort, each part on its own (the engine may be gone, and then so is what it held): the
    container (waiting up to ``wait`` seconds while another removal of it finishes), then the volume."""
    from docker.errors import NotFound

    if container:
        deadline = time.monotonic() + wait
        while True:
            try:
                engine.api.remove_container(container, force=True)
                break
            except NotFound:
                break
            except Exception:  # noqa: BLE001 - "removal already in progress", or the engine is gone
                if time.monotonic() > deadline or not engine.alive():
                    break
                time.sleep(0.5)
    if volume:
        try:
            engine.api.remove_volume(volume, force=True)
        except Exception:  # noqa: BLE001 - cleanup must not hide the error that ended the work
            pass


# --- up: a tree as a tar stream --------------------------------------------------------------------


def tree_members(root: Path) -> Iterator[tuple[str, Path]]:
    """(name in the archive, path) for every entry of the tree, sorted, without the top-level
    ``SKIP_TOP``. Links are kept as links (never followed)."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        rel = here.relative_to(root)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in SKIP_TOP]
            filenames = [f for f in filenames if f not in SKIP_TOP]
        else:
            yield rel.as_posix(), here
        links = [d for d in dirnames if (here / d).is_symlink()]
        dirnames[:] = sorted(d for d in dirnames if d not in links)
        for name in sorted([*filenames, *links]):
            yield (rel / name).as_posix(), here / name


def tree_stream(root: Path, moved: Moved) -> Iterator[bytes]:
    """The tree as a tar stream, produced as it is read (at most ``CHUNK`` bytes of a file held at a time),
    counted in ``moved``. Sockets, FIFOs and devices are left out (a build has no use for them)."""
    for name, path in tree_members(root):
        info = _info(name, path)
        if info is None:
            continue
        for chunk in _entry(info, path):
            moved.nbytes += len(chunk)
            yield chunk
    end = bytes(2 * tarfile.BLOCKSIZE)
    moved.nbytes += len(end)
    yield end


def _info(name: str, path: Path) -> tarfile.TarInfo | None:
    """The header of a file, a directory or a link as it is; None for anything else."""
    try:
        st = path.lstat()
    except OSError as exc:
        raise TransferError(f"cannot send {path}: {exc.strerror or exc}", hint="check the file's permissions") from None
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.uid, info.gid = st.st_mode & 0o7777, int(st.st_mtime), st.st_uid, st.st_gid
    if stat.S_ISREG(st.st_mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    else:
        return None
    return info


def _entry(info: tarfile.TarInfo, path: Path) -> Iterator[bytes]:
    """One member: its header, then (a file) exactly the size its header says, read in chunks, padded."""
    yield info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if not info.isreg():
        return
    left = info.size
    try:
        with path.open("rb") as fh:
            while left > 0:
                chunk = fh.read(min(CHUNK, left))
                if not chunk:
                    raise TransferError(f"{path} shrank while it was being sent", hint="run the release again "
                                        "when nothing writes into the tree")
                left -= len(chunk)
                yield chunk
    except OSError as exc:
        raise TransferError(f"cannot send {path}: {exc.strerror or exc}", hint="check the file's permissions") from None
    pad = -info.size % tarfile.BLOCKSIZE
    if pad:
        yield bytes(pad)


def upload_tree(engine: Engine, helper: str, root: Path, dest: str) -> Moved:
    """The tree (without _output and .git) into ``dest`` inside the helper (a volume's mount point)."""
    from docker.errors import APIError

    moved = Moved()
    began = time.monotonic()
    try:
        ok = engine.api.put_archive(helper, dest, tree_stream(root, moved))
    except APIError as exc:
        raise KBError(f"the engine at {_shown(engine)} refused the tree {root}: {exc.explanation or exc}") from None
    if not ok:
        raise KBError(f"the engine at {_shown(engine)} did not take the tree {root}")
    moved.seconds = time.monotonic() - began
    return moved


# --- down: a directory back into the tree ----------------------------------------------------------


def download_dir(engine: Engine, helper: str, remote: str, dest: Path, staging_parent: Path, *,
                 on_bytes: Callable[[int], None] | None = None) -> Moved:
    """The directory ``remote`` in the helper replaces ``dest`` (a directory under ``staging_parent``,
    the tree's ``_output``); on any failure ``dest`` is as it was and the staging is gone."""
    from docker.errors import APIError, NotFound

    from common import archive

    moved = Moved()
    began = time.monotonic()
    staging_parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".kbuild-engine-", dir=staging_parent))
    try:
        tar_path = staging / "outputs.tar"
        try:
            stream, _ = engine.api.get_archive(helper, remote)
        except NotFound:
            raise KBError(f"{remote} is not on the engine at {_shown(engine)}: the build wrote nothing there",
                          hint="see the build's log") from None
        except APIError as exc:
            raise KBError(f"cannot read {remote} on the engine at {_shown(engine)}: {exc.explanation or exc}") from None
        budget = archive.free_bytes(staging)
        with archive.create_exclusive(tar_path) as fh:
            for chunk in _guarded(engine, stream, f"the download of {remote}"):
                moved.nbytes += len(chunk)
                if moved.nbytes > budget:
                    raise TransferError(f"{remote} on the engine at {_shown(engine)} is larger than the free disk "
                                        f"under {staging_parent}", hint="free some disk space")
                fh.write(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
        out = staging / "out"
        out.mkdir()
        _extract(tar_path, Path(remote).name, out, f"{remote} on the engine at {_shown(engine)}")
        tar_path.unlink()
        if dest.exists() or dest.is_symlink():
            old = staging / "old"
            dest.rename(old)
        dest.parent.mkdir(parents=True, exist_ok=True)
        out.rename(dest)
    except OSError as exc:
        raise KBError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    moved.seconds = time.monotonic() - began
    return moved


def _extract(tar_path: Path, top: str, out: Path, what: str) -> None:
    """The archive's ``top/...`` members into ``out`` (``top`` itself is ``out``), by common.archive's rules."""
    from common import archive

    try:
        with tarfile.open(tar_path, mode="r:") as tar, archive.Extractor(out) as ex:
            for member in tar:
                parts = archive.member_parts(member.name)
                if not parts or parts[0] != top:
                    raise archive.ArchiveError(member.name, f"outside {top}/ (the directory asked for)")
                member.name = "/".join(parts[1:]) or "."
                ex.add(tar, member)
            ex.finish()
    except archive.ArchiveError as exc:
        raise TransferError(f"refused the outputs {what}: {exc}",
                            hint="the engine sent an archive kbuild will not unpack; check that engine") from None
    except tarfile.TarError as exc:
        raise TransferError(f"the outputs {what} are not a readable tar: {exc}") from None


def _guarded(engine: Engine, chunks: Iterator[bytes], step: str) -> Iterator[bytes]:
    """A streamed response's chunks; a broken connection is said as the engine gone or the stream cut."""
    from images.engine import EngineError, EngineGone

    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except KBError:
            raise
        except Exception as exc:  # noqa: BLE001 - requests/urllib3 raise many kinds for one broken socket
            if not engine.alive():
                raise EngineGone(f"the engine at {_shown(engine)} went away during {step}") from None
            raise EngineError(f"the connection to the engine at {_shown(engine)} broke during {step}: "
                              f"{type(exc).__name__}") from None
        yield chunk


def _shown(engine: Engine) -> str:
    from common.redact import redact

    return redact(engine.host)

"""Loading a kit: verify every part, unpack beside DIR, rename into place, make the venv.

Standard library only (plus ``kit.plan``, ``common.archive`` and ``common.progress``): ``install.sh``
runs this on a machine where only Python, pip and git are present. ``inv kit --load`` runs the same
code, with the images loaded in-process. Every failure is a ``KitError``; after one, DIR is as it was before.

Nothing here trusts the kit: its members must be the regular files a kit has, each once; the
manifest is capped in size and checked against a schema (kit.plan) before any field is used; every
part's tar header must say the size the manifest declares, and the parts must fit on the disk, before
a byte of a part is read; the tars inside are extracted by ``common.archive``'s own member check
(never tarfile's filters, which 3.11.7 lets a crafted tar bypass: CVE-2025-4517).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from common.archive import ArchiveError, Extractor, check_member, create_exclusive, free_bytes, printable
from common.progress import HEARTBEAT_SECONDS, Lines, mb
from kit.plan import (
    CHUNK,
    ENV_FILE,
    GO_DIR,
    IMAGES_DIR,
    KEPT_MANIFEST,
    KINDS,
    MANIFEST,
    MANIFEST_SUM,
    MAX_MANIFEST,
    MAX_MANIFEST_SUM,
    TOOL_DIR,
    TREE_DIR,
    VENV_DIR,
    WHEELS_DIR,
    KitError,
    Manifest,
    Seen,
    check_dest,
    check_interpreter,
    env_script,
    hash_stream,
    problems,
    refusal,
    staging_dir,
)


class Reporter(Protocol):
    """Progress for the big parts: a bar on a terminal, lines and a heartbeat elsewhere."""

    def start(self, name: str, total: int) -> None: ...

    def advance(self, name: str, nbytes: int) -> None: ...

    def finish(self, name: str) -> None: ...

    def say(self, line: str) -> None: ...

    def close(self) -> None: ...


class PlainReporter:
    """One line when a part starts and ends, and "still working" after 30 s without a line."""

    def __init__(self, stream: IO[str] | None = None, every: float = HEARTBEAT_SECONDS) -> None:
        self.current: dict[str, list[int]] = {}  # name: [done, total]
        self.lines = Lines(stream, every=every, beat=self._busy)
        self.lines.start()

    def start(self, name: str, total: int) -> None:
        with self.lines.lock:
            self.current[name] = [0, total]
            self.lines.say(f"{name}: {mb(total)}" if total else f"{name}: started")

    def advance(self, name: str, nbytes: int) -> None:
        with self.lines.lock:
            if name in self.current:
                self.current[name][0] += nbytes

    def finish(self, name: str) -> None:
        with self.lines.lock:
            done = self.current.pop(name, [0, 0])[0]
            self.lines.say(f"{name}: done ({mb(done)})")

    def say(self, line: str) -> None:
        self.lines.say(line)

    def close(self) -> None:
        self.lines.stop()

    def _busy(self) -> str:
        busy = [f"{n} {mb(d)}" + (f" of {mb(t)}" if t else "") for n, (d, t) in self.current.items()]
        return "... still working: " + ("; ".join(busy) or "waiting")


# ---------------------------------------------------------------------------------------------
# reading the kit


def _open_kit(kit: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(kit, mode="r:")
    except FileNotFoundError:
        raise KitError(f"{kit}: no such file") from None
    except IsADirectoryError:
        raise KitError(f"{kit}: is a directory", hint="give the kit file") from None
    except tarfile.TarError as exc:
        raise KitError(f"{kit}: not a kit (not a tar file: {exc})") from None


def _members(tar: tarfile.TarFile, kit: Path) -> Iterator[tarfile.TarInfo]:
    """The kit's members in order; a damaged header or a cut-off end is reported as such, and a member
    that is not one of a kit's regular files (a link, a directory, an unknown name, a second copy) is
    refused, naming it, before anything reads it."""
    seen: set[str] = set()
    while True:
        try:
            member = tar.next()
        except tarfile.TarError as exc:
            raise _damaged(tar, kit, exc) from None
        if member is None:
            return
        name = _name_of(member.name)
        if name is None:
            raise _bad_member(member, "not a member a kit has", None)
        if not member.isreg():
            what = ("a symbolic link" if member.issym() else "a hard link" if member.islnk() else
                    "a directory" if member.isdir() else "not a regular file")
            raise _bad_member(member, f"{what} (a kit's members are regular files)", name)
        if member.name in seen:
            raise _bad_member(member, "appears twice in the kit", name)
        seen.add(member.name)
        yield member


def _bad_member(member: tarfile.TarInfo, rule: str, part: str | None) -> KitError:
    return KitError(f"corrupt kit: member {printable(member.name)!r}: {rule}; nothing was unpacked", part=part,
                    hint="this is not a kit kbuild wrote: get the kit again from its source")


def _damaged(tar: tarfile.TarFile, kit: Path, exc: Exception) -> KitError:
    """A header that does not read: the kit was cut inside the part before it, or a header is damaged."""
    members: list[tarfile.TarInfo] = getattr(tar, "members", [])  # read so far (getmembers() would read on)
    last = members[-1] if members else None
    size = kit.stat().st_size
    if last is not None and last.offset_data + last.size > size:
        name = _name_of(last.name) or last.name
        return KitError(f"corrupt kit: part {name}: cut off after {size - last.offset_data} of its {last.size} "
                        "bytes (the kit is truncated); nothing was unpacked", part=name, hint="copy the kit again")
    after = f", after part {_name_of(last.name) or last.name}" if last is not None else ""
    return KitError(f"corrupt kit: a damaged tar header at byte {tar.offset}{after} ({exc}); nothing was unpacked",
                    hint="copy the kit again")


def _name_of(path: str) -> str | None:
    if path in (MANIFEST, MANIFEST_SUM):
        return "manifest"
    return next((n for n, (_, p) in KINDS.items() if p == path), None)


def read_manifest(kit: Path) -> Manifest:
    """The manifest, checked against manifest.sha256 and its schema, and every part's tar header
    against the size it declares (seeking over the parts: nothing is hashed)."""
    headers: dict[str, tarfile.TarInfo] = {}
    with _open_kit(kit) as tar:
        body = checksum = None
        for member in _members(tar, kit):
            headers[member.name] = member
            if member.name in (MANIFEST, MANIFEST_SUM):
                cap = MAX_MANIFEST if member.name == MANIFEST else MAX_MANIFEST_SUM
                if member.size > cap:
                    raise KitError(f"corrupt kit: member {member.name}: its header says {member.size} bytes, "
                                   f"more than the {cap} a kit's {member.name} may have; nothing was unpacked",
                                   part="manifest", hint="this is not a kit kbuild wrote")
                data = _read_member(tar, member, kit)
                if member.name == MANIFEST:
                    body = data
                else:
                    checksum = data.decode(errors="replace")
    if body is None or checksum is None:
        raise KitError(f"corrupt kit: part manifest: no {MANIFEST if body is None else MANIFEST_SUM} in {kit} "
                       "(truncated, or not a kit: the manifest is the last member)", part="manifest",
                       hint="copy the kit again")

    if f"{hashlib.sha256(body).hexdigest()}  {MANIFEST}\n" != checksum:  # every byte of it counts
        raise KitError(f"corrupt kit: part manifest: {MANIFEST} does not match {MANIFEST_SUM}; nothing was unpacked",
                       part="manifest", hint="copy the kit again")
    manifest = Manifest.from_json(body)
    check_headers(manifest, headers)
    return manifest


def check_headers(manifest: Manifest, headers: dict[str, tarfile.TarInfo]) -> None:
    """Every part the manifest lists is in the kit with the size it declares (from the tar header:
    nothing read), before anything trusts either."""
    found = problems(manifest, [Seen(p.path, p.sha256, headers[p.path].size) for p in manifest.parts
                                if p.path in headers])
    if found:
        raise refusal(found)


def check_space(manifest: Manifest, dest: Path) -> None:
    """The parts (a lower bound of what they unpack to) fit on DIR's filesystem."""
    need = sum(p.size for p in manifest.parts if p.name != "installer")
    free = free_bytes(dest.parent)
    if need > free:
        raise KitError(f"--dest {dest}: the kit's parts need at least {mb(need)} and {dest.parent} has "
                       f"{mb(free)} free; nothing was unpacked", hint="free some disk space, or choose another --dest")


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, kit: Path) -> bytes:
    fh = tar.extractfile(member)
    if fh is None:
        raise KitError(f"{kit}: {member.name} is not a file", part=_name_of(member.name))
    try:
        return fh.read(member.size)
    except (tarfile.TarError, OSError) as exc:
        raise KitError(f"{kit}: {member.name} is cut off ({exc})", part=_name_of(member.name),
                       hint="copy the kit again") from None


def verify(kit: Path, manifest: Manifest, report: Reporter) -> None:
    """Hash every part (one pass over the kit) and refuse, naming the part, on any difference."""
    want = {p.path: p for p in manifest.parts}
    seen: list[Seen] = []
    with _open_kit(kit) as tar:
        for member in _members(tar, kit):
            part = want.get(member.name)
            if part is None:
                continue
            if member.size != part.size:  # checked before a byte is hashed (a TB of zeros takes hours)
                raise refusal([(part.name, f"{member.name} has {member.size} bytes, the manifest says {part.size}")])
            fh = tar.extractfile(member)
            if fh is None:
                raise KitError(f"corrupt kit: part {part.name}: {member.name} is not a file", part=part.name)
            label = f"verify {part.name}"
            report.start(label, part.size)
            try:
                digest, size = hash_stream(fh.read, functools.partial(report.advance, label))
            except (tarfile.TarError, OSError) as exc:
                raise KitError(f"corrupt kit: part {part.name}: {member.name} is cut off ({exc}); "
                               "nothing was unpacked", part=part.name, hint="copy the kit again") from None
            report.finish(label)
            seen.append(Seen(member.name, digest, size))
    found = problems(manifest, seen)
    if found:
        raise refusal(found)


# ---------------------------------------------------------------------------------------------
# unpacking


def _keep_modes(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's "data" filter with the permission bits as saved. No longer what guards extraction
    (3.11.7's filter can be bypassed: CVE-2025-4517); kept as a second opinion for callers of tarfile."""
    checked = tarfile.data_filter(member, dest)
    if member.isreg() or member.isdir():
        return checked.replace(mode=member.mode & 0o777, deep=False)
    return checked


def _checked_by_hand(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """common.archive's rules for one member (names, types, link targets); raises ArchiveError."""
    check_member(member)
    return member


def _extract_all(inner: tarfile.TarFile, into: Path, *, symlinks: bool = True, budget: int | None = None) -> None:
    """Every member through kbuild's own check (common.archive), on every Python."""
    with Extractor(into, symlinks=symlinks, budget=budget) as out:
        for member in inner:  # stream mode: one member at a time, checked before it is written
            out.add(inner, member)
        out.finish()


def _extract_tar(tar: tarfile.TarFile, member: tarfile.TarInfo, into: Path, mode: str,
                 report: Reporter, label: str) -> str:
    """Unpack a part that is itself a tar; returns the sha256 of every byte of the part read."""
    counted = _Counting(_open_member(tar, member), functools.partial(report.advance, label))
    name = _name_of(member.name)
    into.mkdir()  # ours, in the staging directory we made: the extraction's root
    try:
        with tarfile.open(fileobj=counted, mode=mode) as inner:  # type: ignore[call-overload]
            _extract_all(inner, into, symlinks=name != "wheels")
        while counted.read(CHUNK):  # the end-of-archive blocks tarfile stops short of: hashed too
            pass
    except ArchiveError as exc:
        raise KitError(f"corrupt kit: part {name}: {exc}; nothing was unpacked", part=name,
                       hint="this kit was not written by kbuild, or was tampered with: do not use it") from None
    except OSError as exc:
        raise KitError(f"unpacking part {name} failed: cannot write {exc.filename or into}: "
                       f"{exc.strerror or exc}", part=name) from None
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise KitError(f"unpacking part {name} failed: {printable(str(exc))}", part=name) from None
    return counted.digest.hexdigest()


def _open_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    fh = tar.extractfile(member)
    if fh is None:
        raise KitError(f"{member.name} is not a file", part=_name_of(member.name))
    return fh


class _Counting:
    """A read-only file object that hashes and reports the bytes read through it."""

    def __init__(self, fh: IO[bytes], on_bytes: Callable[[int], None]) -> None:
        self.fh, self.on_bytes = fh, on_bytes
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.digest.update(data)
        self.on_bytes(len(data))
        return data


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, path: Path, report: Reporter, label: str) -> str:
    """Copy a part out as a file; returns its sha256."""
    fh = _Counting(_open_member(tar, member), functools.partial(report.advance, label))
    path.parent.mkdir(exist_ok=True)
    left = member.size  # never more than the header says (checked against the manifest already)
    with create_exclusive(path) as out:
        while left > 0 and (chunk := fh.read(min(CHUNK, left))):
            out.write(chunk)
            left -= len(chunk)
    return fh.digest.hexdigest()


def _run(argv: list[str], what: str, part: str | None, cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except OSError as exc:
        raise KitError(f"{what}: cannot run {argv[0]}: {exc.strerror}", part=part,
                       hint=f"install {Path(argv[0]).name}") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        said = [line for line in lines if line.startswith(("ERROR", "fatal:", "error:"))] or lines[-1:] or [""]
        raise KitError(f"{what} failed (exit {proc.returncode}): {said[-1][:300]}", part=part)


def _unpack_source_bundle(tar: tarfile.TarFile, member: tarfile.TarInfo, stage: Path, report: Reporter) -> str:
    """A clone of the bundle with its HEAD checked out, and no remote pointing at the kit's temp file."""
    bundle = stage / ".source.bundle"
    digest = _copy_member(tar, member, bundle, report, "unpack source-bundle")
    tree = stage / TREE_DIR
    git = shutil.which("git")
    if git is None:
        raise KitError("the kit's source is a git bundle and git is not installed", part="source-bundle",
                       hint="apt-get install git (or your system's git package)")
    _run([git, "-c", "advice.detachedHead=false", "clone", "--quiet", "--", str(bundle), str(tree)],
         "git clone of the source bundle", "source-bundle")
    _run([git, "-C", str(tree), "remote", "remove", "origin"], "git remote remove origin", "source-bundle")
    bundle.unlink()
    return digest


def unpack(kit: Path, manifest: Manifest, stage: Path, report: Reporter) -> None:
    """Every part into ``stage`` (DIR's layout); the images tar stays a file for the engine to load."""
    want = {p.path: p for p in manifest.parts}
    with _open_kit(kit) as tar:
        for member in _members(tar, kit):
            part = want.get(member.name)
            if part is None or part.name == "installer":
                continue
            label = f"unpack {part.name}"
            report.start(label, part.size)
            if part.name == "source-bundle":
                digest = _unpack_source_bundle(tar, member, stage, report)
            elif part.name == "images":
                digest = _copy_member(tar, member, stage / IMAGES_DIR / "images.tar", report, label)
            else:
                into, mode = {"source-tree": (TREE_DIR, "r|gz"), "go": (GO_DIR, "r|gz"),
                              "kbuild": (TOOL_DIR, "r|gz"), "wheels": (WHEELS_DIR, "r|")}[part.name]
                digest = _extract_tar(tar, member, stage / into, mode, report, label)
            if digest != part.sha256:  # the kit changed since it was verified (another writer?)
                raise KitError(f"corrupt kit: part {part.name} changed while it was unpacked; nothing was left "
                               "under the destination", part=part.name, hint="copy the kit again")
            report.finish(label)
    (stage / KEPT_MANIFEST).write_text(manifest.to_json())


def make_venv(dest: Path, report: Reporter, python: str | None = None) -> Path:
    """DIR/venv with this tool's requirements from DIR/wheels, no index (nothing from the network)."""
    venv = dest / VENV_DIR
    report.say(f"venv: {venv}")
    try:
        _run([python or sys.executable, "-m", "venv", str(venv)], "python3 -m venv", "wheels")
    except KitError as exc:
        raise KitError(exc.message, part=exc.part,
                       hint="install Python's venv module (Debian: apt-get install python3-venv)") from None
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index",
          "--find-links", str(dest / WHEELS_DIR), "-r", str(dest / TOOL_DIR / "requirements.txt")],
         "pip install --no-index of the kit's wheels", "wheels")
    return py


@contextmanager
def _into_place(dest: Path) -> Iterator[Path]:
    """A staging directory beside DIR; on success it becomes DIR, on any failure DIR is as it was."""
    stage = staging_dir(dest, os.getpid())
    shutil.rmtree(stage, ignore_errors=True)
    try:
        stage.mkdir()
    except OSError as exc:
        raise KitError(f"--dest {dest}: cannot create {stage.name} in {dest.parent}: {exc.strerror}") from None
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)


@dataclass(frozen=True)
class Loaded:
    dest: Path
    manifest: Manifest
    images_loaded: bool


ImagesLoader = Callable[[Path, Manifest], None]


def install(kit: Path, dest: Path, report: Reporter, load_images: ImagesLoader | None,
            python: str | None = None) -> Loaded:
    """The whole load. ``load_images(images_tar, manifest)`` runs after the venv exists; None keeps
    the images tar under DIR/images for a later `inv images --load`."""
    dest = dest.absolute()
    existed = check_dest(dest)
    mode = dest.stat().st_mode & 0o7777 if existed else 0o755
    manifest = read_manifest(kit)
    if manifest.part("wheels"):
        check_interpreter(manifest)
    check_space(manifest, dest)
    verify(kit, manifest, report)
    with _into_place(dest) as stage:
        unpack(kit, manifest, stage, report)
        if existed:
            dest.rmdir()
        os.rename(stage, dest)
        try:
            (dest / ENV_FILE).write_text(env_script(dest))
            if manifest.part("wheels"):
                make_venv(dest, report, python)
            images_tar = dest / IMAGES_DIR / "images.tar"
            loaded = False
            if manifest.part("images") and load_images is not None:
                report.start("load images", images_tar.stat().st_size)
                load_images(images_tar, manifest)
                report.finish("load images")
                shutil.rmtree(dest / IMAGES_DIR)
                loaded = True
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            if existed:
                dest.mkdir()
                dest.chmod(mode)
            raise
    return Loaded(dest, manifest, loaded)


# ---------------------------------------------------------------------------------------------
# install.sh's entry point


def _standalone_images(dest: Path) -> ImagesLoader:
    """With no docker SDK here, the images go in through the venv just made (kit.images)."""

    def load(images_tar: Path, manifest: Manifest) -> None:
        _run([str(dest / VENV_DIR / "bin" / "python"), "-m", "kit.images", str(images_tar),
              str(dest / KEPT_MANIFEST)], "loading the images (kit.images)", "images", cwd=dest / TOOL_DIR)

    return load


def main(argv: list[str]) -> int:
    """`sh install.sh KIT DIR [--no-images]`."""
    from kit.plan import next_steps

    args = [a for a in argv if a != "--no-images"]
    if len(args) != 2:
        print("usage: sh install.sh KIT DIR [--no-images]", file=sys.stderr)
        return 2
    kit, dest = Path(args[0]), Path(args[1]).absolute()
    report = PlainReporter()
    try:
        loader = None if "--no-images" in argv else _standalone_images(dest)
        done = install(kit, dest, report, loader)
    except KitError as exc:
        print(f"ERROR {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"TIP {exc.hint}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ERROR {exc.filename or dest}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ERROR interrupted (nothing was left under the destination)", file=sys.stderr)
        return 130
    finally:
        report.close()
    print(f"unpacked into {done.dest}" + ("" if done.images_loaded or not done.manifest.images else
                                         f"; images not loaded: {done.dest / IMAGES_DIR / 'images.tar'}"))
    print("next:")
    for line in next_steps(done.dest, done.manifest.mode):
        print(f"  {line}")
    return 0

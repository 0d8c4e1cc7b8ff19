"""`inv kit --save FILE`: gather the parts and write them, hashed on the way, into one tar.

Each part is streamed straight into the kit: a placeholder header is written, the data follows, and
the header is rewritten with the real size once the part is done (GNU tar headers: one 512-byte
block for any size), so a part of several GB is written once and never spooled beside the kit.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from common.errors import KBError, UsageError
from kit import plan
from kit.plan import ImageRecord, Manifest, Part, part_for
from kit.unpack import Reporter
from workspace.tree import KubeTree

if TYPE_CHECKING:
    from _typeshed import StrOrBytesPath

    from build.version import VersionInfo

MODES = ("script", "direct", "native")
# Never carried: build outputs and caches of this tool's own checkout.
TOOL_SKIP = {".git", "_output", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".venv", "venv"}
TOOL_ROOT = Path(__file__).resolve().parent.parent
BLOCK = tarfile.BLOCKSIZE


class _Sink:
    """Where one part's bytes go: the kit file, through a sha256 and a byte count."""

    def __init__(self, fh: IO[bytes], on_bytes: Callable[[int], None], count_output: bool = True) -> None:
        self.fh, self.progress = fh, on_bytes
        self.count_output = count_output
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        self.digest.update(data)
        self.size += len(data)
        if self.count_output:
            self.progress(len(data))
        return len(data)

    def flush(self) -> None:  # gzip and tarfile call it; the kit file is flushed at the end
        pass


class KitWriter:
    """An uncompressed tar written member by member; ``parts`` lists what went in."""

    def __init__(self, fh: IO[bytes], report: Reporter) -> None:
        self.fh, self.report = fh, report
        self.parts: list[Part] = []
        self.mtime = int(time.time())
        self.step = "starting the kit"  # what was being written, for a disk-full message

    def _header(self, path: str, size: int, mode: int) -> bytes:
        info = tarfile.TarInfo(path)
        info.size, info.mode, info.mtime = size, mode, self.mtime
        header = info.tobuf(format=tarfile.GNU_FORMAT, encoding="utf-8", errors="strict")
        if len(header) != BLOCK:  # only short ASCII names are used: never a long-name extension
            raise AssertionError(f"{path}: header of {len(header)} bytes")
        return header

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self.fh.write(b"\0" * (BLOCK - size % BLOCK))

    @contextmanager
    def part(self, name: str, mode: int = 0o644, total: int = 0, count_output: bool = True) -> Iterator[_Sink]:
        """Stream a part: write to the sink; its size and sha256 are recorded when the block ends.
        Progress counts the bytes written, or (``count_output=False``) what the writer reports through
        ``sink.progress``: the files' bytes going into a compressed tar, against ``total``."""
        path = part_for(name, "", 0).path
        self.step = f"saving part {name}"
        start = self.fh.tell()
        self.fh.write(b"\0" * BLOCK)
        label = f"save {name}"
        self.report.start(label, total)
        sink = _Sink(self.fh, lambda n: self.report.advance(label, n), count_output)
        yield sink
        self._pad(sink.size)
        end = self.fh.tell()
        self.fh.seek(start)
        self.fh.write(self._header(path, sink.size, mode))
        self.fh.seek(end)
        self.report.finish(label)
        self.parts.append(part_for(name, sink.digest.hexdigest(), sink.size))

    def member(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """A small member that is not a part (the manifest and its checksum)."""
        self.step = f"writing {path}"
        self.fh.write(self._header(path, len(data), mode))
        self.fh.write(data)
        self._pad(len(data))

    def close(self) -> None:
        self.step = "closing the kit"
        self.fh.write(b"\0" * (2 * BLOCK))


# ---------------------------------------------------------------------------------------------
# the parts


def installer_script() -> bytes:
    """install.sh: a POSIX sh front for kit.plan + kit.unpack, carried inside it as source text."""
    names = ("common.archive", "common.units", "common.progress", "kit.plan", "kit.unpack")  # in import order
    sources = {name: (TOOL_ROOT / f"{name.replace('.', '/')}.py").read_text() for name in names}
    program = "\n".join([
        "import sys, types",
        f"SOURCES = {sources!r}",
        "for top in ('common', 'kit'):",
        "    pkg = types.ModuleType(top)",
        "    pkg.__path__ = []",
        "    sys.modules[top] = pkg",
        f"for name in {names!r}:",
        "    mod = types.ModuleType(name)",
        "    sys.modules[name] = mod",
        "    exec(compile(SOURCES[name], 'install.sh:' + name, 'exec'), mod.__dict__)",
        "    setattr(sys.modules[name.split('.')[0]], name.split('.')[1], mod)",
        "sys.exit(sys.modules['kit.unpack'].main(sys.argv[1:]))",
    ])
    return "\n".join([
        "#!/bin/sh",
        "# kbuild offline kit installer. Needs python3 (with venv and pip) and, for a git tree, git.",
        "#   tar -xf KIT install.sh && sh install.sh KIT DIR [--no-images]",
        "# Verifies every part's sha256 before unpacking anything; unpacks beside DIR and renames into",
        "# place; makes DIR/venv from the kit's wheels (pip --no-index); loads the images (DOCKER_HOST).",
        "set -eu",
        'if [ $# -lt 2 ]; then echo "usage: sh install.sh KIT DIR [--no-images]" >&2; exit 2; fi',
        "exec python3 - \"$@\" <<'KBUILD_KIT_PROGRAM'",
        program,
        "KBUILD_KIT_PROGRAM",
        "",
    ]).encode()


def _tarinfo_reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tar(sink: _Sink, entries: list[tuple[Path, str]], compress: bool,
              skip: Callable[[tarfile.TarInfo], bool] = lambda i: False, exclude: frozenset[str] = frozenset()) -> None:
    """A tar (gzip'd when ``compress``) of ``entries`` (path, name in the tar) into the sink. Modes and
    mtimes are kept (the far side's version stamp of a tree without git is its files' mtime).
    ``exclude``: names in the tar never to add (the kit being written, when it is saved inside)."""
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if skip(info) or info.name in exclude:
            return None
        if info.islnk():  # a second name of a file already added: written again as a file, since the
            info.type, info.linkname = tarfile.REGTYPE, ""  # loader refuses hard links (common.archive)
            info.size = os.stat(paths[info.name]).st_size
        if not sink.count_output:
            sink.progress(info.size)
        return _tarinfo_reset(info)

    paths: dict[str, str] = {}  # name in the tar -> path on disk, for the hard links above

    class _Tar(tarfile.TarFile):
        def gettarinfo(self, name: StrOrBytesPath | None = None, arcname: str | None = None,
                       fileobj: IO[bytes] | None = None) -> tarfile.TarInfo:
            info = super().gettarinfo(name, arcname, fileobj)
            paths[info.name] = str(name)
            return info

    gz = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=0) if compress else None
    with _Tar.open(fileobj=gz or sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for path, name in entries:
            tar.add(str(path), arcname=name, recursive=True, filter=keep)
    if gz is not None:
        gz.close()


def ours_under(root: Path, paths: list[Path]) -> frozenset[str]:
    """The names, relative to ``root``, of the files this save writes that lie inside it."""
    base = root.resolve()
    out = set()
    for p in paths:
        try:
            out.add(str(p.resolve().relative_to(base)))
        except ValueError:
            continue
    return frozenset(out)


def _children(root: Path, skip: set[str]) -> list[tuple[Path, str]]:
    return [(p, p.name) for p in sorted(root.iterdir()) if p.name not in skip]


def files_size(entries: list[tuple[Path, str]]) -> int:
    """The bytes of the regular files under ``entries`` (the progress total of a tar part)."""
    total = 0
    for path, _ in entries:
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
            continue
        for dirpath, _dirs, files in os.walk(path):
            for f in files:
                try:
                    st = os.lstat(os.path.join(dirpath, f))
                except OSError:
                    continue
                total += st.st_size if not os.path.islink(os.path.join(dirpath, f)) else 0
    return total


def _skip_tool(info: tarfile.TarInfo) -> bool:
    return any(part in TOOL_SKIP for part in Path(info.name).parts) or info.name.endswith(".pyc")


def _git_bundle(root: Path, into: Path) -> None:
    """HEAD and the tags it contains (what `git describe` reads), with GitPython."""
    import git  # lazy: GitPython runs `git version` on import

    try:
        repo = git.Repo(root)
        tags = [t for t in repo.git.tag("--merged", "HEAD").split("\n") if t]
        repo.git.bundle("create", str(into), "HEAD", *tags)
    except git.GitCommandError as exc:
        said = [line for line in str(exc.stderr).splitlines() if "fatal:" in line or "error:" in line]
        raise KBError(f"git bundle of {root} failed: {(said or [str(exc)])[0].strip()}") from None


def tool_version() -> str:
    """This checkout's `git describe --always --dirty` (or "unknown" outside git)."""
    try:
        import git

        return str(git.Repo(TOOL_ROOT).git.describe("--always", "--dirty", "--tags"))
    except Exception:  # noqa: BLE001 - no .git here: a kbuild unpacked from a kit says which it was
        kept = TOOL_ROOT.parent / plan.KEPT_MANIFEST
        try:
            return f"{Manifest.from_json(kept.read_bytes()).tool_version} (from a kit)"
        except (OSError, plan.KitError):
            return "unknown"


def download_wheels(into: Path, requirements: Path) -> list[Path]:
    """`pip download` of requirements.txt: wheels only (nothing to compile on the far side)."""
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "-r", str(requirements), "-d", str(into)]
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("ERROR")] or \
            proc.stderr.strip().splitlines()[-1:] or [""]
        raise KBError(f"pip download of {requirements.name} failed (exit {proc.returncode}): {lines[-1][:300]}",
                      hint="saving a kit needs PyPI (or PIP_INDEX_URL / PIP_FIND_LINKS pointing at the wheels)")
    return sorted(into.glob("*.whl"))


# ---------------------------------------------------------------------------------------------
# the whole save


def check_output(path: Path) -> None:
    from common.system import output_target

    if output_target(path, "--save", "kit.tar"):
        raise UsageError(f"--save {path}: not a regular file (the kit is written with seeks)",
                         hint="save to a file, then copy it where it has to go")


def save_kit(tree: KubeTree, environ: Mapping[str, str], out: Path, report: Reporter, *, mode: str,
             with_images: bool, docker_host: str | None = None) -> Manifest:
    """Check everything first (tree state, Go, the images present), then write the kit."""
    from build.golang import check_minimum, find_go
    from build.version import compute

    if mode not in MODES:
        raise UsageError(f"--mode {mode!r}: choose script, direct or native")
    check_output(out)
    stamp = compute(tree.root, environ)
    is_git = (tree.root / ".git").exists()
    if is_git and stamp.tree_state == "dirty":
        raise KBError(f"{tree.root} has local changes: a kit carries commits (a git bundle), so the far side "
                      "would build another tree", hint="commit them (or stash them) and save again")
    go = find_go(environ)
    check_minimum(go, tree.minimum_go)
    images: tuple[ImageRecord, ...] = ()
    engine = None
    if with_images:
        from build.release.preflight import images_for_mode
        from images.engine import Engine
        from images.resolve import resolve
        from kit.images import records

        specs = images_for_mode(resolve(tree, environ), mode)
        engine = Engine.connect(environ, docker_host)
        images = records(engine, specs)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    writer: KitWriter | None = None
    try:
        with tmp.open("w+b") as fh, tempfile.TemporaryDirectory(prefix=".kit-", dir=out.parent) as scratch:
            writer = KitWriter(fh, report)
            ours = [out, tmp, Path(scratch)]  # never carried, when the kit is saved inside the tree or kbuild
            with writer.part("installer", 0o755) as sink:
                sink.write(installer_script())
            if is_git:
                bundle = Path(scratch) / "source.bundle"
                report.say(f"source: git bundle of {tree.root} at {stamp.version or stamp.commit}")
                _git_bundle(tree.root, bundle)
                with writer.part("source-bundle") as sink, bundle.open("rb") as src:
                    while chunk := src.read(plan.CHUNK):
                        sink.write(chunk)
                bundle.unlink()
            else:
                report.say(f"source: the files of {tree.root} (no git), without _output")
                entries = _children(tree.root, {"_output"})
                with writer.part("source-tree", total=files_size(entries), count_output=False) as sink:
                    write_tar(sink, entries, compress=True, exclude=ours_under(tree.root, ours))
            if engine is not None:
                sizes = sum(int((engine.image(i.name) or {}).get("Size") or 0) for i in images)
                with writer.part("images", total=sizes) as sink:
                    engine.save([i.name for i in images], sink.write)
            report.say(f"go: {go.version} from {go.goroot}")
            entries = _children(go.goroot, set())
            with writer.part("go", total=files_size(entries), count_output=False) as sink:
                write_tar(sink, entries, compress=True)
            with writer.part("kbuild", count_output=False) as sink:
                write_tar(sink, _children(TOOL_ROOT, TOOL_SKIP), compress=True, skip=_skip_tool,
                          exclude=ours_under(TOOL_ROOT, ours))
            wheels = Path(scratch) / "wheels"
            wheels.mkdir()
            report.say("wheels: pip download -r requirements.txt")
            found = download_wheels(wheels, TOOL_ROOT / "requirements.txt")
            with writer.part("wheels") as sink:
                write_tar(sink, [(w, w.name) for w in found], compress=False)
            manifest = Manifest(
                parts=tuple(writer.parts), tool_version=tool_version(), stamp=stamp_dict(stamp),
                tree="git" if is_git else "files", mode=mode if with_images else "", images=images,
                go_version=go.version, go_minimum=tree.minimum_go or "", python=plan.python_tag(),
                platform=plan.platform_tag(), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                extra={"source": str(tree.root), "release_mode": mode, "wheels": [w.name for w in found]})
            body = manifest.to_json().encode()
            writer.member(plan.MANIFEST, body)
            writer.member(plan.MANIFEST_SUM, f"{hashlib.sha256(body).hexdigest()}  {plan.MANIFEST}\n".encode())
            writer.close()
        os.replace(tmp, out)
    except OSError as exc:  # disk full, quota, I/O error: the path and the step, the partial file gone
        step = writer.step if writer is not None else "creating the kit"
        path = out if exc.filename in (None, str(tmp)) else exc.filename
        raise KBError(f"cannot write {path} while {step}: {exc.strerror or exc}; the partial kit was removed",
                      hint="free some disk space, or save the kit elsewhere" if exc.errno == errno.ENOSPC
                      else None) from None
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def stamp_dict(stamp: VersionInfo) -> dict[str, str]:
    """The stamp as `inv version --json` prints it."""
    import json

    return {str(k): str(v) for k, v in json.loads(stamp.as_json()).items()}

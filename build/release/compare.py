"""Does my release match upstream's layout? Compare two ``_output/release-tars`` directories.

A release built by kbuild should have the same tarballs as upstream's, holding the
same members with the same types, permissions and link targets; its host-platform
binaries should report the same version (the build date may differ); its image
tars should carry the same tags. Timestamps, sizes and owners are ignored: they
always differ between two builds and say nothing about the layout.

Each tarball is read once, sequentially (gzip cannot seek backwards cheaply):
member metadata is collected and the few members needed for content checks
(binaries, image tars, ``.docker_tag`` files) are streamed out in the same pass.

Also a command: ``python -m build.release.compare REFERENCE CANDIDATE [--json] [--no-run]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, NoReturn

from common.archive import create_exclusive
from common.errors import KBError, UsageError, file_op

MAX_LISTED = 10  # names listed per "only on one side" group before "... and N more"
_CHUNK = 1 << 20
_SMALL_READ = 1 << 16  # .docker_tag files are one line
_MANIFEST_READ = 16 << 20  # manifest.json / repositories are small; bound them anyway
_SHOWN = 100  # characters of an output shown in a difference line
_MISSING = object()

# Everything reading a damaged .tar.gz can raise: bad header, not gzip, truncated stream, bad CRC.
_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)
_HINT = "pass the _output/release-tars directory of a release build (inv release writes one)"


@dataclass
class Comparison:
    """The outcome of comparing a candidate release with a reference release."""

    reference: Path
    candidate: Path
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"tarballs": 0, "members": 0, "binaries": 0, "images": 0})

    @property
    def ok(self) -> bool:
        """True when nothing but expected things (the notes) differ."""
        return not self.differences

    def as_dict(self) -> dict[str, object]:
        """A JSON-able view, for ``--json`` and reports."""
        return {"reference": str(self.reference), "candidate": str(self.candidate), "ok": self.ok,
                "differences": list(self.differences), "notes": list(self.notes), "counts": dict(self.counts)}


@dataclass(frozen=True)
class _Entry:
    """What is compared about one member: its type, permission bits and link target."""

    kind: str
    mode: int
    target: str | None = None


@dataclass(frozen=True)
class _Run:
    """One ``<bin> <flag>`` invocation. ``status`` None: it did not run (timeout, ENOEXEC, ...)."""

    status: int | None
    stdout: str = ""
    reason: str = ""

    @property
    def key(self) -> tuple[int | None, str]:
        # The reason a binary did not run is shown, not compared: "did not run" equals "did not run".
        return (self.status, self.stdout)

    def describe(self) -> str:
        if self.status is None:
            return f"did not run ({self.reason})"
        return f"exit {self.status} {_show(self.stdout)}"


@dataclass(frozen=True)
class _Versions:
    version: _Run
    raw: _Run


@dataclass(frozen=True)
class _Image:
    tags: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class _Scan:
    """Everything learnt from one pass over one tarball."""

    entries: dict[str, _Entry] = field(default_factory=dict)
    binaries: dict[str, _Versions] = field(default_factory=dict)
    images: dict[str, _Image] = field(default_factory=dict)
    docker_tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None


# --- Running binaries ---------------------------------------------------------------------------


class _Runner:
    """Runs a binary's ``--version`` and ``--version=raw``, once per distinct content (sha256).

    kubectl, for one, is in the client, node and server tarballs, often byte-identical on
    both sides: its bytes are still streamed out each time, but run only once.
    """

    def __init__(self, workdir: Path, timeout: float) -> None:
        self.dir = workdir / "bin"
        self.dir.mkdir()
        self.timeout = timeout
        self.cache: dict[str, _Versions] = {}

    def versions(self, data: IO[bytes], basename: str) -> _Versions:
        # Same directory and basename for every run so argv[0] (which some binaries echo) matches.
        exe = self.dir / basename
        try:
            digest = _copy_hashing(data, exe)
            if digest not in self.cache:
                exe.chmod(0o755)
                self.cache[digest] = _Versions(_run(exe, "--version", self.timeout),
                                               _run(exe, "--version=raw", self.timeout))
            return self.cache[digest]
        finally:
            exe.unlink(missing_ok=True)  # binaries are large: keep one on disk at a time


def _copy_hashing(src: IO[bytes], dest: Path) -> str:
    """Stream ``src`` into ``dest`` in chunks; the sha256 of what was written."""
    digest = hashlib.sha256()
    # O_EXCL|O_NOFOLLOW in our own directory: a member's bytes never land through a link; closed before
    # it is executed (ETXTBSY otherwise). Nothing else of a release tar is ever written out.
    with create_exclusive(dest) as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _run(exe: Path, flag: str, timeout: float) -> _Run:
    """Run ``exe flag`` with no stdin; stdout stripped, with the extraction directory removed."""
    try:
        # Own session so a timeout kills the whole group: a script's children would otherwise
        # keep stdout open and outlive it.
        proc = subprocess.Popen([str(exe), flag], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, cwd=exe.parent, start_new_session=True)
    except OSError as exc:
        return _Run(None, reason=exc.strerror or str(exc))
    with proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            return _Run(None, reason=f"timed out after {timeout:g}s")
    text = out.decode("utf-8", "replace").replace(f"{exe.parent}{os.sep}", "").strip()
    return _Run(proc.returncode, text)


# --- Reading tarballs ---------------------------------------------------------------------------


def _member_name(name: str) -> str:
    """``./a/b/`` and ``a/b`` are the same member."""
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/") or "."


def _entry(m: tarfile.TarInfo) -> _Entry:
    if m.issym():
        return _Entry("symlink", m.mode & 0o7777, m.linkname)
    if m.islnk():
        return _Entry("hardlink", m.mode & 0o7777, _member_name(m.linkname))
    for kind, test in (("file", m.isreg), ("dir", m.isdir), ("char", m.ischr), ("block", m.isblk),
                       ("fifo", m.isfifo)):
        if test():
            return _Entry(kind, m.mode & 0o7777)
    return _Entry("other", m.mode & 0o7777)


def _is_binary(name: str, m: tarfile.TarInfo) -> bool:
    """An executable regular file under a ``bin/`` directory, not an image tar or its tag file."""
    path = PurePosixPath(name)
    return (m.isreg() and bool(m.mode & 0o111) and "bin" in path.parts[:-1]
            and path.name not in ("", ".", "..") and not name.endswith((".tar", ".docker_tag")))


def _platform_tag(host_platform: str) -> str:
    """``linux/amd64`` -> ``linux-amd64``, as release tarball names spell it."""
    parts = host_platform.split("/")
    if len(parts) < 2 or not all(parts[:2]):
        raise UsageError(f"host platform {host_platform!r}: expected os/arch", hint="e.g. linux/amd64")
    return f"{parts[0]}-{parts[1]}"


def _for_platform(tarball: str, tag: str) -> bool:
    # A whole name part: linux-arm must not match kubernetes-node-linux-arm64.tar.gz.
    return re.search(rf"(?:^|-){re.escape(tag)}(?:[.-]|$)", tarball) is not None


def _read_image(data: IO[bytes]) -> _Image:
    """The RepoTags of a docker-save archive: manifest.json, else the legacy ``repositories``."""
    manifest: bytes | None = None
    repositories: bytes | None = None
    try:
        # Stream mode: the nested tar is read forwards only, straight out of the outer gzip stream.
        with tarfile.open(fileobj=data, mode="r|") as nested:
            for m in nested:
                name = _member_name(m.name)
                if m.isreg() and name in ("manifest.json", "repositories"):
                    f = nested.extractfile(m)
                    content = f.read(_MANIFEST_READ) if f is not None else b""
                    if name == "manifest.json":
                        manifest = content
                    else:
                        repositories = content
        if manifest is not None:
            return _Image(_manifest_tags(json.loads(manifest)))
        if repositories is not None:
            return _Image(_repositories_tags(json.loads(repositories)))
        return _Image(error="no manifest.json or repositories")
    except (tarfile.TarError, ValueError, TypeError) as exc:  # ValueError: bad JSON; TypeError: wrong shape
        return _Image(error=f"{type(exc).__name__}: {exc}")


def _manifest_tags(manifest: object) -> tuple[str, ...]:
    if not isinstance(manifest, list):
        raise TypeError("manifest.json is not a list")
    tags: list[str] = []
    for image in manifest:
        if isinstance(image, dict):
            tags.extend(str(t) for t in image.get("RepoTags") or ())  # null for untagged images
    return tuple(sorted(tags))


def _repositories_tags(repositories: object) -> tuple[str, ...]:
    if not isinstance(repositories, dict):
        raise TypeError("repositories is not an object")
    return tuple(sorted(f"{repo}:{tag}" for repo, tags in repositories.items()
                        if isinstance(tags, dict) for tag in tags))


def _scan_tarball(path: Path, *, runner: _Runner | None) -> _Scan:
    """One pass over ``path``: member metadata, plus the contents the later checks need."""
    scan = _Scan()
    try:
        with tarfile.open(path, "r:gz") as tf:
            for m in tf:
                name = _member_name(m.name)
                scan.entries[name] = _entry(m)
                if not m.isreg():
                    continue
                if name.endswith(".tar"):
                    scan.images[name] = _read_image(_extract(tf, m))
                elif name.endswith(".docker_tag"):
                    text = _extract(tf, m).read(_SMALL_READ)
                    scan.docker_tags[name] = text.decode("utf-8", "replace").strip()
                elif runner is not None and _is_binary(name, m):
                    scan.binaries[name] = runner.versions(_extract(tf, m), PurePosixPath(name).name)
    except _READ_ERRORS as exc:
        scan.error = f"{type(exc).__name__}: {exc}"
    return scan


def _extract(tf: tarfile.TarFile, m: tarfile.TarInfo) -> IO[bytes]:
    f = tf.extractfile(m)
    if f is None:  # only for non-files, which callers have ruled out
        raise tarfile.ExtractError(f"{m.name}: not a regular file")
    return f


# --- Comparing ----------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value on one line, shortened: repr escapes newlines."""
    text = "<missing>" if value is _MISSING else repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 3] + "..."


def _vs(what: str, ref: str, cand: str) -> str:
    return f"{what} {ref} (reference) vs {cand} (candidate)"


def _only(names: set[str], prefix: str, what: str) -> list[str]:
    """``prefix only in <side>: name`` lines, at most MAX_LISTED per side, then a count."""
    shown = sorted(names)
    lines = [f"{prefix}{name}" for name in shown[:MAX_LISTED]]
    if len(shown) > MAX_LISTED:
        lines.append(f"{prefix}... and {len(shown) - MAX_LISTED} more {what}")
    return lines


def _compare_entries(tb: str, ref: _Scan, cand: _Scan, out: Comparison) -> None:
    for side, names in (("reference", ref.entries.keys() - cand.entries.keys()),
                        ("candidate", cand.entries.keys() - ref.entries.keys())):
        out.differences += _only(names, f"{tb}: member only in {side}: ", f"members only in {side}")
    common = sorted(ref.entries.keys() & cand.entries.keys())
    for name in common:
        r, c = ref.entries[name], cand.entries[name]
        if r.kind != c.kind:  # a type change makes the mode and target comparison noise
            out.differences.append(f"{tb}: {name}: " + _vs("type", r.kind, c.kind))
            continue
        if r.mode != c.mode:
            out.differences.append(f"{tb}: {name}: " + _vs("mode", f"{r.mode:04o}", f"{c.mode:04o}"))
        if r.target != c.target:
            out.differences.append(f"{tb}: {name}: " + _vs(f"{r.kind} target", _show(r.target), _show(c.target)))
    out.counts["members"] += len(common)


_GO_FIELD = re.compile(r'(\w+):"((?:[^"\\]|\\.)*)"')


def _raw_fields(run: _Run) -> dict[str, object] | None:
    """``--version=raw`` as a mapping, or None when it is not one.

    The brief's form is a JSON object; Kubernetes' own verflag prints Go's ``%#v`` of
    version.Info (``version.Info{Major:"1", ..., BuildDate:"..."}``), read here too so its
    build date is a note rather than a difference.
    """
    if run.status != 0:
        return None
    try:
        value = json.loads(run.stdout)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value
    text = run.stdout
    if text.endswith("}") and "{" in text:
        fields = dict(_GO_FIELD.findall(text[text.index("{"):]))
        if fields:
            return fields
    return None


def _compare_versions(label: str, ref: _Versions, cand: _Versions, out: Comparison) -> None:
    if ref.version.status is None and cand.version.status is None:
        out.notes.append(f"{label}: did not run on either side ({ref.version.reason})")
        return
    for flag, rr, cr in (("--version", ref.version, cand.version), ("--version=raw", ref.raw, cand.raw)):
        if rr.key == cr.key or (flag == "--version=raw" and None not in (_raw_fields(rr), _raw_fields(cr))):
            continue
        line = f"{label}: " + _vs(flag, rr.describe(), cr.describe())
        # A binary with no such flag fails with its usage text on both sides; that text can carry
        # values of the moment (ginkgo prints a time-based default -seed): a note, not a difference.
        failed_alike = rr.status == cr.status and rr.status not in (None, 0)
        (out.notes if failed_alike else out.differences).append(line)
    r, c = _raw_fields(ref.raw), _raw_fields(cand.raw)
    if r is None or c is None:
        return
    for key in sorted(r.keys() | c.keys()):
        rv, cv = r.get(key, _MISSING), c.get(key, _MISSING)
        if rv == cv:
            continue
        # Two builds are never made at the same moment: a build date difference is expected.
        target = out.notes if key.lower() == "builddate" else out.differences
        target.append(f"{label}: " + _vs(f"--version=raw {key}", _show(rv), _show(cv)))


def _compare_contents(tb: str, ref: _Scan, cand: _Scan, out: Comparison) -> None:
    for name in sorted(ref.binaries.keys() & cand.binaries.keys()):
        _compare_versions(f"{tb}: {name}", ref.binaries[name], cand.binaries[name], out)
        out.counts["binaries"] += 1
    for name in sorted(ref.images.keys() & cand.images.keys()):
        r, c = ref.images[name], cand.images[name]
        out.counts["images"] += 1
        if r.error or c.error:
            for side, image in (("reference", r), ("candidate", c)):
                if image.error:
                    out.differences.append(f"{tb}: {name}: unreadable image in {side}: {image.error}")
        elif r.tags != c.tags:
            out.differences.append(f"{tb}: {name}: " + _vs("RepoTags", _show(list(r.tags)), _show(list(c.tags))))
    for name in sorted(ref.docker_tags.keys() & cand.docker_tags.keys()):
        r_tag, c_tag = ref.docker_tags[name], cand.docker_tags[name]
        if r_tag != c_tag:
            out.differences.append(f"{tb}: {name}: " + _vs("content", _show(r_tag), _show(c_tag)))


def _tarballs(directory: Path, side: str) -> dict[str, Path]:
    with file_op("stat"):
        is_dir = directory.is_dir()
    if not is_dir:
        raise UsageError(f"{side} {directory} is not a directory", hint=_HINT)
    found = {p.name: p for p in directory.glob("*.tar.gz") if p.is_file()}
    if not found:
        raise UsageError(f"{side} {directory} holds no *.tar.gz tarballs", hint=_HINT)
    return found


def compare_releases(reference: Path, candidate: Path, *, run_binaries: bool = True,
                     host_platform: str = "linux/amd64", timeout: float = 20.0) -> Comparison:
    """Compare the candidate release directory with the reference one.

    Checks the tarball names, each common tarball's members (type, permission bits,
    link target), the host platform's binaries (``--version`` and ``--version=raw``,
    unless ``run_binaries`` is false), image tars' RepoTags and ``.docker_tag`` contents.
    Raises UsageError when a directory is missing or holds no tarballs; a damaged
    tarball is a difference, not an error.
    """
    reference, candidate = Path(reference), Path(candidate)
    ref_tars, cand_tars = _tarballs(reference, "reference"), _tarballs(candidate, "candidate")
    tag = _platform_tag(host_platform)
    out = Comparison(reference, candidate)
    for side, names in (("reference", ref_tars.keys() - cand_tars.keys()),
                        ("candidate", cand_tars.keys() - ref_tars.keys())):
        out.differences += [f"tarball only in {side}: {name}" for name in sorted(names)]
    with tempfile.TemporaryDirectory(prefix="kbuild-compare-") as tmp:
        runner = _Runner(Path(tmp), timeout) if run_binaries else None
        for tb in sorted(ref_tars.keys() & cand_tars.keys()):
            tb_runner = runner if _for_platform(tb, tag) else None
            # One tarball pair at a time: only its metadata is held in memory.
            ref, cand = (_scan_tarball(ref_tars[tb], runner=tb_runner),
                         _scan_tarball(cand_tars[tb], runner=tb_runner))
            if ref.error or cand.error:
                for side, scan, path in (("reference", ref, ref_tars[tb]), ("candidate", cand, cand_tars[tb])):
                    if scan.error:
                        out.differences.append(f"{tb}: unreadable in {side} ({path}): {scan.error}")
                continue
            out.counts["tarballs"] += 1
            _compare_entries(tb, ref, cand, out)
            _compare_contents(tb, ref, cand, out)
    return out


# --- Report and command line --------------------------------------------------------------------


def _plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def render(comparison: Comparison) -> list[str]:
    """A short human report: DIFF and note lines, then a one-line verdict."""
    c = comparison.counts
    checked = ", ".join([_plural(c.get("tarballs", 0), "tarball"), _plural(c.get("members", 0), "member"),
                         _plural(c.get("binaries", 0), "binary", "binaries"),
                         _plural(c.get("images", 0), "image")])
    lines = [f"DIFF {d}" for d in comparison.differences] + [f"note {n}" for n in comparison.notes]
    if comparison.ok:
        lines.append(f"same: {checked}")
    else:
        lines.append(f"different: {_plural(len(comparison.differences), 'difference')} ({checked})")
    return lines


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as a UsageError (ERROR/TIP lines, exit 2)."""

    def error(self, message: str) -> NoReturn:  # argparse's own prints usage and exits
        raise UsageError(message, hint=self.format_usage().strip())


def main(argv: list[str] | None = None) -> int:
    """Command line: exit 0 when the releases match, 1 when they differ, 2 on a usage error."""
    parser = _Parser(prog="python -m build.release.compare",
                     description="Compare two release-tars directories: tarballs, members, binaries, images.")
    parser.add_argument("reference", type=Path, help="the release-tars directory to compare against")
    parser.add_argument("candidate", type=Path, help="the release-tars directory being checked")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument("--no-run", action="store_true", help="do not run binaries' --version")
    parser.add_argument("--platform", default="linux/amd64",
                        help="os/arch whose tarballs' binaries can run here (default linux/amd64)")
    try:
        args = parser.parse_args(argv)
        result = compare_releases(args.reference, args.candidate, run_binaries=not args.no_run,
                                  host_platform=args.platform)
    except KBError as exc:
        print(f"ERROR {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"TIP {exc.hint}", file=sys.stderr)
        return exc.code
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print("\n".join(render(result)))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())

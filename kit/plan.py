"""The offline kit's shape, as data: its members, the manifest, and the checks made before unpacking.

Standard library only, and no imports from the rest of kbuild but ``common.archive``: ``install.sh``
carries this module (with ``kit.unpack`` and ``common.archive``) to machines where nothing else is
installed yet.

A kit is one uncompressed tar::

    install.sh            first: `tar -xf KIT install.sh && sh install.sh KIT DIR`
    parts/source.bundle   git bundle of HEAD and the tags it contains (or parts/source.tar.gz: the tree)
    parts/images.tar      `docker save` of the release mode's images (absent with --no-images)
    parts/go.tar.gz       the Go toolchain's GOROOT
    parts/kbuild.tar.gz   this tool's source
    parts/wheels.tar      wheels of requirements.txt for the saving Python and platform
    manifest.json         last: each part's name, kind, path, sha256 and size, the stamps
    manifest.sha256       the sha256 of manifest.json's bytes

The manifest comes last because each part is streamed into the kit and only hashed on the way.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import sysconfig
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.archive import printable

FORMAT = 1
INSTALLER = "install.sh"
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.sha256"
CHUNK = 1 << 20

# name -> (kind, member path); the order is the order in the kit and of unpacking.
KINDS: dict[str, tuple[str, str]] = {
    "installer": ("install-script", INSTALLER),
    "source-bundle": ("git-bundle", "parts/source.bundle"),
    "source-tree": ("tree-tar-gz", "parts/source.tar.gz"),
    "images": ("docker-save", "parts/images.tar"),
    "go": ("goroot-tar-gz", "parts/go.tar.gz"),
    "kbuild": ("tool-tar-gz", "parts/kbuild.tar.gz"),
    "wheels": ("wheels-tar", "parts/wheels.tar"),
}
# Where each part lands under DIR.
TREE_DIR, GO_DIR, TOOL_DIR, WHEELS_DIR, VENV_DIR, IMAGES_DIR = (
    "kubernetes", "go", "kbuild", "wheels", "venv", "images")
KEPT_MANIFEST = "kit-manifest.json"
ENV_FILE = "env.sh"


class KitError(Exception):
    """A kit that cannot be used (corrupt, truncated, for another Python) or a destination refused.

    ``part`` names the part at fault, when one is; ``hint`` is the fix, when one is known.
    """

    def __init__(self, message: str, *, part: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.part, self.hint = message, part, hint

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Part:
    name: str
    kind: str
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ImageRecord:
    """One saved image: the name the build uses, its image id (kept by save/load) and registry digests."""

    name: str
    id: str
    repo_digests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    parts: tuple[Part, ...]
    tool_version: str
    stamp: Mapping[str, str]
    tree: str                      # "git" (a bundle) or "files" (a tar of the tree)
    mode: str                      # the release mode whose images were saved ("" with --no-images)
    images: tuple[ImageRecord, ...]
    go_version: str
    go_minimum: str
    python: str                    # "3.11": the wheels are for this Python
    platform: str                  # sysconfig.get_platform() of the saving machine, e.g. linux-x86_64
    created: str
    format: int = FORMAT
    extra: Mapping[str, object] = field(default_factory=dict)

    def part(self, name: str) -> Part | None:
        return next((p for p in self.parts if p.name == name), None)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    def to_json(self) -> str:
        data = asdict(self)
        data["images"] = [dict(asdict(i), repo_digests=list(i.repo_digests)) for i in self.images]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """The manifest, every field checked against the schema before any is used."""
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:  # RecursionError: a manifest nested thousands deep
            raise KitError(f"manifest: not a kit manifest ({type(exc).__name__}: {printable(str(exc))})",
                           part="manifest") from None
        return _Schema(data).manifest


# --- the manifest's schema: types, ranges and shapes, checked before any field is used -------------

MAX_PART_SIZE = 1 << 40          # 1 TiB: far above any real part (the images: a few GB)
MAX_MANIFEST = 4 << 20           # bytes of manifest.json (a real one: a few KB)
MAX_MANIFEST_SUM = 256           # bytes of manifest.sha256 (one line)
MAX_TEXT = 512                   # characters of any text field
MAX_IMAGES = 1000
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MODES = ("", "script", "direct", "native")
_TREES = ("git", "files")


class _Schema:
    """``data`` checked; ``KitError(part="manifest")`` naming the field and what is wrong otherwise."""

    def __init__(self, data: object) -> None:
        top = self.obj(data, "the manifest")
        if top.get("format") != FORMAT:
            raise KitError(f"manifest format {printable(repr(top.get('format')))}: this kbuild reads format "
                           f"{FORMAT}", part="manifest", hint="load it with the kbuild version that saved it")
        parts = self.array(top.get("parts"), "parts", len(KINDS))
        images = self.array(top.get("images", []) if top.get("images") is not None else [], "images", MAX_IMAGES)
        checked_parts = tuple(self.part(p, i) for i, p in enumerate(parts))
        checked_images = tuple(self.image(im, i) for i, im in enumerate(images))
        stamp = self.stamp(top.get("stamp"))
        tree = self.choice(top.get("tree"), "tree", _TREES)
        mode = self.choice(top.get("mode"), "mode", _MODES)
        extra = self.obj(top.get("extra") if top.get("extra") is not None else {}, "extra")
        text = {k: self.text(top.get(k), k) for k in ("tool_version", "go_version", "go_minimum", "python",
                                                       "platform", "created")}
        self.manifest = Manifest(parts=checked_parts, tool_version=text["tool_version"], stamp=stamp, tree=tree,
                                 mode=mode, images=checked_images, go_version=text["go_version"],
                                 go_minimum=text["go_minimum"], python=text["python"], platform=text["platform"],
                                 created=text["created"], extra=extra)

    @staticmethod
    def bad(field: str, what: str) -> KitError:
        return KitError(f"manifest: {printable(field)}: {what} (not a manifest this kbuild wrote)", part="manifest",
                        hint="copy the kit again, or save it again with kbuild")

    def obj(self, value: object, field: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.bad(field, f"{_kind(value)}, expected an object")
        return value

    def array(self, value: object, field: str, most: int) -> list[object]:
        if not isinstance(value, list):
            raise self.bad(field, f"{_kind(value)}, expected a list")
        if len(value) > most:
            raise self.bad(field, f"{len(value)} entries, at most {most}")
        return value

    def text(self, value: object, field: str, most: int = MAX_TEXT) -> str:
        if not isinstance(value, str):
            raise self.bad(field, f"{_kind(value)}, expected a string")
        if len(value) > most:
            raise self.bad(field, f"{len(value)} characters, at most {most}")
        if printable(value, most + 1) != value:
            raise self.bad(field, f"control characters in '{printable(value, 60)}'")
        return value

    def choice(self, value: object, field: str, allowed: tuple[str, ...]) -> str:
        if value not in allowed or not isinstance(value, str):
            raise self.bad(field, f"{printable(repr(value), 60)}, expected one of {', '.join(map(repr, allowed))}")
        return value

    def part(self, value: object, i: int) -> Part:
        p = self.obj(value, f"parts[{i}]")
        name = self.choice(p.get("name"), f"parts[{i}].name", tuple(KINDS))
        kind, path = KINDS[name]
        self.choice(p.get("kind"), f"parts[{i}].kind", (kind,))
        self.choice(p.get("path"), f"parts[{i}].path", (path,))
        sha = p.get("sha256")
        if not isinstance(sha, str) or not _HEX64.fullmatch(sha):
            raise self.bad(f"parts[{i}].sha256", f"{printable(repr(sha), 80)}, expected 64 lowercase hex digits")
        size = p.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < MAX_PART_SIZE:
            raise self.bad(f"parts[{i}].size", f"{printable(repr(size), 60)}, expected a whole number of bytes "
                                               f"from 0 to {MAX_PART_SIZE - 1}")
        unknown = sorted(printable(str(k), 40) for k in set(p) - {"name", "kind", "path", "sha256", "size"})
        if unknown:
            raise self.bad(f"parts[{i}]", f"unknown fields {', '.join(unknown)}")
        return Part(name=name, kind=kind, path=path, sha256=sha, size=size)

    def image(self, value: object, i: int) -> ImageRecord:
        im = self.obj(value, f"images[{i}]")
        digests = self.array(im.get("repo_digests") or [], f"images[{i}].repo_digests", 100)
        return ImageRecord(self.text(im.get("name"), f"images[{i}].name"), self.text(im.get("id"), f"images[{i}].id"),
                           tuple(self.text(d, f"images[{i}].repo_digests[{j}]") for j, d in enumerate(digests)))

    def stamp(self, value: object) -> dict[str, str]:
        s = self.obj(value, "stamp")
        if len(s) > 64:
            raise self.bad("stamp", f"{len(s)} fields, at most 64")
        return {self.text(k, "stamp key", 64): self.text(v, f"stamp.{k}") for k, v in s.items()}


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def part_for(name: str, sha256: str, size: int) -> Part:
    kind, path = KINDS[name]
    return Part(name=name, kind=kind, path=path, sha256=sha256, size=size)


def python_tag() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def platform_tag() -> str:
    return sysconfig.get_platform()


def check_interpreter(manifest: Manifest, python: str | None = None, platform: str | None = None) -> None:
    """The wheels only install on the Python and platform that downloaded them."""
    python, platform = python or python_tag(), platform or platform_tag()
    if manifest.part("wheels") and (manifest.python, manifest.platform) != (python, platform):
        raise KitError(f"the kit's wheels are for Python {manifest.python} on {manifest.platform}; "
                       f"this is Python {python} on {platform}", part="wheels",
                       hint=f"run it with a python{manifest.python} (on {manifest.platform}), "
                            "or save a kit on a machine like this one")


def expected_members(manifest: Manifest) -> dict[str, Part]:
    """{member path: part} for every part the manifest lists; each name and path at most once."""
    out: dict[str, Part] = {}
    for p in manifest.parts:
        if p.name not in KINDS or KINDS[p.name] != (p.kind, p.path):
            raise KitError(f"manifest: unknown part {p.name!r} ({p.kind}, {p.path})", part="manifest")
        if p.path in out:
            raise KitError(f"manifest: part {p.name!r} listed twice", part="manifest")
        out[p.path] = p
    if not any(n in out for n in (KINDS["source-bundle"][1], KINDS["source-tree"][1])):
        raise KitError("manifest: the kit has no source part", part="manifest")
    return out


@dataclass(frozen=True)
class Seen:
    """What a pass over the kit found for one member."""

    path: str
    sha256: str
    size: int


def problems(manifest: Manifest, seen: Iterable[Seen]) -> list[tuple[str, str]]:
    """(part, what is wrong) for every part that is missing, of the wrong size or the wrong sha256."""
    want = expected_members(manifest)
    found = {s.path: s for s in seen}
    out: list[tuple[str, str]] = []
    for path, part in want.items():
        got = found.get(path)
        if got is None:
            out.append((part.name, f"{path} is missing from the kit (truncated?)"))
        elif got.size != part.size:
            out.append((part.name, f"{path} has {got.size} bytes, the manifest says {part.size} (truncated?)"))
        elif got.sha256 != part.sha256:
            out.append((part.name, f"{path} has sha256 {got.sha256[:16]}…, the manifest says {part.sha256[:16]}…"))
    return out


def refusal(found: list[tuple[str, str]]) -> KitError:
    part, what = found[0]
    more = f" (and {len(found) - 1} more: {', '.join(p for p, _ in found[1:])})" if len(found) > 1 else ""
    return KitError(f"corrupt kit: part {part}: {what}{more}; nothing was unpacked", part=part,
                    hint="copy the kit again (compare its sha256 with the saving side's)")


def check_dest(dest: Path) -> bool:
    """Refuse a destination that holds anything; True when it exists (as an empty directory)."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise KitError(f"--dest {dest}: exists and is not a directory", hint="give a new directory")
    if dest.is_dir():
        if any(dest.iterdir()):
            raise KitError(f"--dest {dest}: is not empty", hint="give a new or empty directory")
        return True
    if not dest.parent.is_dir():
        raise KitError(f"--dest {dest}: its parent {dest.parent} does not exist")
    return False


def staging_dir(dest: Path, pid: int) -> Path:
    """Beside DIR, on the same filesystem, so the last step is one rename."""
    return dest.parent / f".{dest.name}.kit-partial-{pid}"


def hash_stream(read: Callable[[int], bytes], on_bytes: Callable[[int], None] | None = None) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if on_bytes:
            on_bytes(len(chunk))
    return digest.hexdigest(), size


def next_steps(dest: Path, mode: str) -> list[str]:
    """The two commands to run after a load."""
    import shlex

    release = f"inv release --mode {mode or 'native'} --quick"
    return [f". {shlex.quote(str(dest / ENV_FILE))}",
            f"cd {shlex.quote(str(dest / TOOL_DIR))} && inv build --what=cmd/kube-apiserver  # or: {release}"]


def env_script(dest: Path) -> str:
    """DIR/env.sh: the kit's Go and the venv first on PATH, KUBE_ROOT at the unpacked tree."""
    import shlex

    q = shlex.quote
    return "\n".join([
        "# written by `inv kit --load` / install.sh: source it (. env.sh)",
        f"export PATH={q(str(dest / GO_DIR / 'bin'))}:{q(str(dest / VENV_DIR / 'bin'))}:\"$PATH\"",
        f"export KUBE_ROOT={q(str(dest / TREE_DIR))}",
        "unset GOROOT  # the kit's go finds its own",
        "",
    ])

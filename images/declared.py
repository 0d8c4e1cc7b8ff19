"""The tree's own statement of its pins, build/dependencies.yaml, checked against the image set.

An entry such as ``registry.k8s.io/go-runner: dependents`` declares a version
and the files (``refPaths``, each with an optional ``match`` regular
expression for the line) that must carry it. It applies to every resolved
image with the same last path component whose name was read from one of those
files. An image whose tag differs is marked, with the reason: an override in
the environment (the variable named), or a stale script (the file and line that
carry another version than the one declared).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass

from images.resolve import ImageSpec
from workspace.tree import KubeTree

DEPENDENCIES = "build/dependencies.yaml"


@dataclass(frozen=True)
class RefPath:
    path: str
    match: str = ""


@dataclass(frozen=True)
class Declared:
    """One image entry of build/dependencies.yaml."""

    name: str                 # as written, e.g. "registry.k8s.io/go-runner: dependents"
    image: str                # its last path component, e.g. "go-runner"
    version: str
    line: int
    ref_paths: tuple[RefPath, ...]

    @property
    def where(self) -> str:
        return f"{DEPENDENCIES}:{self.line}"


def read_declared(tree: KubeTree) -> list[Declared]:
    """The image entries (names with a registry path) of the tree's build/dependencies.yaml;
    none if the file is missing or not the expected shape."""
    import yaml

    text = tree.read(DEPENDENCIES)
    if not text:
        return []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    entries = data.get("dependencies") if isinstance(data, dict) else None
    out: list[Declared] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        name, version = str(entry.get("name", "")), entry.get("version")
        image = name.split(":", 1)[0].strip()
        if "/" not in image or version is None:
            continue  # golang, etcd, cni, ...: not an image of the build
        refs = tuple(RefPath(str(r.get("path", "")), str(r.get("match") or ""))
                     for r in entry.get("refPaths") or [] if isinstance(r, dict) and r.get("path"))
        out.append(Declared(name, image.rsplit("/", 1)[-1], str(version), _line_of(text, name), refs))
    return out


def _line_of(text: str, name: str) -> int:
    m = re.search(rf"^[ \t]*-[ \t]*name:[ \t]*[\"']?{re.escape(name)}[\"']?\s*$", text, re.M)
    return text.count("\n", 0, m.start()) + 1 if m else 0


def _image_of(spec: ImageSpec) -> str:
    last = spec.ref.path.rsplit("/", 1)[-1]
    return re.sub(r"-(amd64|arm64|arm|ppc64le|s390x)$", "", last)


def applies(entry: Declared, spec: ImageSpec, files: set[str] | None = None) -> bool:
    """The entry speaks for this image: same image, read from a file the entry names (``files``:
    where the name comes from, default the spec's own)."""
    read = set(spec.files) if files is None else files
    return entry.image == _image_of(spec) and bool({r.path for r in entry.ref_paths} & read)


def _default_files(tree: KubeTree, spec: ImageSpec, defaults: list[ImageSpec]) -> set[str]:
    """The files the tree itself would read this image's name from, had the environment not
    overridden it: those of the same role serving the same binaries with no environment."""
    out = set(spec.files)
    for d in defaults:
        if d.role == spec.role and (set(d.used_by) & set(spec.used_by) or not (d.used_by or spec.used_by)):
            out |= set(d.files)
    return out


def stale_lines(tree: KubeTree, entry: Declared) -> list[str]:
    """``path:line`` of each refPath line that doesn't carry the declared version (zeitgeist's check)."""
    out = []
    for ref in entry.ref_paths:
        text = tree.read(ref.path)
        if text is None:
            continue
        if not ref.match:
            if entry.version not in text:
                out.append(f"{ref.path}:1 ({text.strip().splitlines()[0] if text.strip() else 'empty'})")
            continue
        try:
            pattern = re.compile(ref.match)
        except re.error:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if pattern.search(line) and entry.version not in line:
                out.append(f"{ref.path}:{n} ({line.strip()})")
    return out


def mismatch(tree: KubeTree, spec: ImageSpec, entries: list[Declared], environ: Mapping[str, str],
             files: set[str] | None = None) -> str:
    """Why ``spec`` disagrees with build/dependencies.yaml, or "" when it doesn't (or nothing applies)."""
    for entry in entries:
        if not applies(entry, spec, files) or spec.ref.tag == entry.version:
            continue
        head = f"tag {spec.ref.tag}, but {entry.where} ({entry.name}) declares {entry.version}"
        # The variables whose value holds the tag set it; else any that shaped the name.
        named = [v for v in spec.environment if spec.ref.tag in environ.get(v, "")] or list(spec.environment)
        if named:
            return f"{head}: overridden in the environment by {', '.join(named)}"
        stale = stale_lines(tree, entry)
        if stale:
            return f"{head}: stale script: {'; '.join(stale)}"
        return f"{head}: the tree's scripts name {spec.ref.tag} ({spec.source})"
    return ""


def mark(tree: KubeTree, specs: list[ImageSpec], environ: Mapping[str, str] | None = None) -> list[ImageSpec]:
    """``specs`` with ``mismatch`` set where build/dependencies.yaml declares another version."""
    entries = read_declared(tree)
    if not entries:
        return specs
    env = dict(environ or {})
    defaults: list[ImageSpec] = []
    if any(s.environment for s in specs):
        from common.errors import KBError
        from images.resolve import resolve

        try:
            defaults = resolve(tree, {})
        except KBError:
            defaults = []
    return [dataclasses.replace(s, mismatch=mismatch(tree, s, entries, env, _default_files(tree, s, defaults)))
            for s in specs]


__all__ = ["Declared", "RefPath", "read_declared", "applies", "stale_lines", "mismatch", "mark"]

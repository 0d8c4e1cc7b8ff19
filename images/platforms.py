"""Platforms and multi-platform indexes, as plain data (pure; tested).

A base image on a mirror is an OCI image index or a Docker manifest list: one manifest per
platform. A release for linux/arm64 must be built FROM the arm64 entry's digest, not from whatever
variant the engine pulled for its own platform (kubernetes/kubernetes#102087). Names are normalised
as containerd does (``aarch64`` is ``arm64``, ``x86_64`` is ``amd64``, arm64's variant ``v8`` is the
default one), so ``linux/arm64`` matches an entry that says ``linux/arm64/v8``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.errors import KBError, UsageError

if TYPE_CHECKING:
    from images.refs import ImageRef

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")

_ARCH_ALIASES = {"aarch64": ("arm64", ""), "x86_64": ("amd64", ""), "x86-64": ("amd64", ""),
                 "armhf": ("arm", "v7"), "armel": ("arm", "v6"), "i386": ("386", "")}
_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}
_WORD = re.compile(r"^[a-z0-9_.-]+$")


@dataclass(frozen=True)
class Platform:
    """os/arch[/variant], normalised (variant empty when it is the arch's default)."""

    os: str
    arch: str
    variant: str = ""

    def __str__(self) -> str:
        return f"{self.os}/{self.arch}" + (f"/{self.variant}" if self.variant else "")


def normalise(os_name: str, arch: str, variant: str = "") -> Platform:
    arch, variant = arch.lower(), variant.lower()
    if arch in _ARCH_ALIASES:
        arch, implied = _ARCH_ALIASES[arch]
        variant = variant or implied
    if variant == _DEFAULT_VARIANT.get(arch):
        variant = ""
    return Platform(os_name.lower(), arch, variant)


def parse_platform(text: str, where: str = "--platform") -> Platform:
    """``linux/arm64``, ``linux/arm/v7``: a Platform, or a UsageError naming the flag."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(p and _WORD.match(p.lower()) for p in parts):
        raise UsageError(f"{where} {text!r}: expected os/arch[/variant], e.g. linux/arm64")
    return normalise(*parts)


@dataclass(frozen=True)
class Entry:
    """One platform's manifest in an index."""

    platform: Platform
    digest: str
    media_type: str
    size: int


def entries(document: bytes, what: str) -> list[Entry]:
    """The platform entries of an index or manifest list; KBError naming ``what`` for anything else.

    Entries without a usable platform (buildx's attestation manifests say unknown/unknown) are left out.
    """
    try:
        doc = json.loads(document)
    except ValueError:
        raise KBError(f"{what}: the registry's answer is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
        raise KBError(f"{what} is a single-platform image, not an index of platforms",
                      hint="push it as a multi-platform index (docker buildx imagetools create, crane index)")
    out = []
    for item in doc["manifests"]:
        if not isinstance(item, dict):
            continue
        plat, digest = item.get("platform"), item.get("digest")
        if not (isinstance(plat, dict) and isinstance(digest, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest)):
            continue
        os_name, arch, variant = plat.get("os"), plat.get("architecture"), plat.get("variant") or ""
        if not (isinstance(os_name, str) and isinstance(arch, str) and isinstance(variant, str)):
            continue
        if "unknown" in (os_name, arch) or not (_WORD.match(os_name.lower()) and _WORD.match(arch.lower())):
            continue
        size = item.get("size")
        out.append(Entry(normalise(os_name, arch, variant), digest, str(item.get("mediaType") or ""),
                         size if isinstance(size, int) and size >= 0 else 0))
    return out


def pick(found: list[Entry], platform: Platform, image: str, mirror: str) -> Entry:
    """The entry for ``platform``; KBError naming the image, the platform and the mirror when it has none."""
    for entry in found:
        if entry.platform == platform:
            return entry
    have = ", ".join(sorted({str(e.platform) for e in found})) or "no platforms"
    where = image if image.startswith(f"{mirror}/") else f"{image} on {mirror}"
    raise KBError(f"{where}: the index has no {platform} variant (it lists {have})",
                  hint=f"push the {platform} variant to the mirror's index, or drop --platform {platform}")


def config_platform(config: Mapping[str, object]) -> Platform | None:
    """The platform an image's config (or `docker image inspect`) says it is for."""
    os_name, arch = config.get("os") or config.get("Os"), config.get("architecture") or config.get("Architecture")
    variant = config.get("variant") or config.get("Variant") or ""
    if isinstance(os_name, str) and isinstance(arch, str) and isinstance(variant, str) and os_name and arch:
        return normalise(os_name, arch, variant)
    return None


def _document(source: ImageRef, environ: Mapping[str, str]) -> bytes:
    """The manifest (or index) ``source`` names on its registry (plain HTTP on loopback, as docker allows)."""
    from registry.client import RegistryError, Repository, api_host, is_loopback

    host = api_host(source.registry)
    repo = Repository(host, source.path, environ, scheme="http" if is_loopback(host) else "https")
    try:
        got = repo.manifest(source.digest or source.tag, INDEX_TYPES + MANIFEST_TYPES)
    except RegistryError as exc:
        raise KBError(f"{source.name}: {exc.message}") from None
    if got is None:
        raise KBError(f"{source.name}: {source.registry} has no such image")
    return got[0]


def variant_of(source: ImageRef, platform: Platform, environ: Mapping[str, str]) -> Entry:
    """``platform``'s entry in the index ``source`` names on its registry; KBError naming the image, the
    platform and the registry when it has none."""
    return pick(entries(_document(source, environ), source.name), platform, source.name, source.registry)


def on_mirror(source: ImageRef, environ: Mapping[str, str]) -> dict[str, object]:
    """What a mirror holds under ``source`` (for `inv images.list --mirror`): the digest it serves and,
    for an index, each platform's digest; for a single-platform image, no platforms; an error as text."""
    import hashlib

    try:
        document = _document(source, environ)
    except KBError as exc:
        return {"mirror": source.registry, "name": source.name, "error": exc.message}
    found: dict[str, object] = {"mirror": source.registry, "name": source.name,
                                "digest": "sha256:" + hashlib.sha256(document).hexdigest()}
    try:
        found["platforms"] = {str(e.platform): e.digest for e in entries(document, source.name)}
    except KBError:
        found["platforms"] = {}  # a single-platform image: the engine's own platform is all it serves
    return found

"""Image references: parse and validate them, and map them onto mirrors (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.errors import UsageError

# Docker's reference grammar, simplified to what registries accept.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_REF = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
                  rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>sha256:[0-9a-f]{{64}}))?$")
_MIRROR = re.compile(rf"^(?P<domain>{_DOMAIN})(?P<path>(?:/{_COMPONENT})*)/?$")
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    """registry/path:tag, fully qualified (docker.io/library/busybox:latest for `busybox`)."""

    registry: str
    path: str
    tag: str = "latest"
    digest: str = ""

    @property
    def repository(self) -> str:
        return f"{self.registry}/{self.path}"

    @property
    def name(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def short(self) -> str:
        """The name as docker shows it (docker.io/library/ dropped)."""
        if self.registry == DOCKER_HUB:
            path = self.path.removeprefix("library/")
            return f"{path}:{self.tag}"
        return self.name

    def __str__(self) -> str:
        return self.name


def parse_ref(text: str) -> ImageRef:
    """Parse a reference; UsageError if it isn't one."""
    m = _REF.match(text.strip())
    if not m or len(text) > 255:
        raise UsageError(f"not a valid image reference: {text!r}")
    domain, path = m.group("domain"), m.group("path")
    # Docker's rule: the first component is a registry only if it has a '.' or ':' or is localhost.
    if domain and not ("." in domain or ":" in domain or domain == "localhost"):
        path, domain = f"{domain}/{path}", None
        if not re.fullmatch(rf"{_COMPONENT}(?:/{_COMPONENT})*", path):
            raise UsageError(f"not a valid image reference: {text!r}")
    if not domain:
        domain = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return ImageRef(domain, path, m.group("tag") or "latest", m.group("digest") or "")


def check_mirror(text: str) -> str:
    """A mirror is a registry host with an optional path prefix: `127.0.0.1:5000/k8s`, `registry.example/mirror`."""
    mirror = text.strip().rstrip("/")
    m = _MIRROR.match(mirror)
    if not mirror or not m or "://" in text:
        raise UsageError(f"--mirror {text!r}: expected HOST[:PORT][/PATH], without a scheme")
    host = m.group("domain")
    if not ("." in host or ":" in host or host == "localhost"):
        raise UsageError(f"--mirror {text!r}: the first part must be a registry host (with a dot or a port)")
    return mirror


LAYOUTS = ("nested", "flat")


def mirror_ref(ref: ImageRef, mirror: str, layout: str) -> ImageRef:
    """Where a mirror keeps ``ref``: nested keeps the path (build-image/kube-cross), flat only its last part."""
    if layout not in LAYOUTS:
        raise UsageError(f"--layout {layout!r}: choose nested or flat")
    host, _, prefix = mirror.partition("/")
    path = ref.path if layout == "nested" else ref.path.rsplit("/", 1)[-1]
    return ImageRef(host, f"{prefix}/{path}" if prefix else path, ref.tag)

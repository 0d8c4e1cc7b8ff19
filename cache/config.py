"""Where the shared build cache lives and how it is used: parsed and checked, as plain data.

``oci://HOST[:PORT]/REPO`` is a registry (HTTPS; plain HTTP for loopback hosts, as docker allows,
or with ``oci+http://``); ``s3://BUCKET[/PREFIX]`` is S3 or an S3-compatible store (endpoint from
``AWS_ENDPOINT_URL``). The mode is ``readwrite`` (default) or ``read``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from common.errors import UsageError
from registry.client import is_loopback


class CacheMode(StrEnum):
    """How a build uses the remote cache: pull-request jobs read, main-branch jobs read and write."""

    READ = "read"
    READWRITE = "readwrite"


MODES = tuple(m.value for m in CacheMode)
ENV_URL = "KBUILD_REMOTE_CACHE"
ENV_MODE = "KBUILD_REMOTE_CACHE_MODE"

_REPO = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_HOST = re.compile(r"^(?:\[[0-9a-fA-F:]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)(?::\d{1,5})?$")
URL_HINT = "give oci://HOST[:PORT]/REPO (a registry) or s3://BUCKET/PREFIX (S3 or an S3-compatible store)"


@dataclass(frozen=True)
class Remote:
    """A parsed remote cache: kind ``oci`` (host, repo, scheme) or ``s3`` (bucket, prefix)."""

    url: str
    kind: str
    mode: CacheMode = CacheMode.READWRITE
    host: str = ""
    repo: str = ""
    scheme: str = "https"
    bucket: str = ""
    prefix: str = ""

    @property
    def writes(self) -> bool:
        return self.mode is CacheMode.READWRITE

    @property
    def base(self) -> str:
        """The registry's API root, e.g. http://127.0.0.1:5000 (oci only)."""
        return f"{self.scheme}://{self.host}"


def parse_mode(mode: str, where: str = "--remote-cache-mode") -> CacheMode:
    try:
        return CacheMode((mode or "readwrite").strip().lower())
    except ValueError:
        raise UsageError(f"{where} {mode!r}: choose read or readwrite",
                         hint="read for pull-request jobs, readwrite for main-branch jobs") from None


def parse(url: str, mode: str = "readwrite", where: str = "--remote-cache") -> Remote:
    """The URL and mode as a Remote, or a UsageError naming what is wrong (never the credentials)."""
    checked = parse_mode(mode, f"{where}-mode" if where.startswith("--") else f"{where} mode")
    text = url.strip()
    parts = urlsplit(text)
    if parts.username or parts.password:
        raise UsageError(f"{where}: no credentials in the URL (docker's config.json or the AWS variables hold them)",
                         hint=URL_HINT)
    if parts.query or parts.fragment:
        raise UsageError(f"{where} {text!r}: no ?query or #fragment in the URL", hint=URL_HINT)
    scheme = parts.scheme.lower()
    if scheme in ("oci", "oci+http", "oci+https"):
        host, repo = parts.netloc, parts.path.strip("/")
        if not host or not _HOST.match(host):
            raise UsageError(f"{where} {text!r}: no registry host", hint=URL_HINT)
        if not repo or not _REPO.match(repo):
            raise UsageError(f"{where} {text!r}: {repo!r} is not a repository name (lower case, e.g. kbuild/gocache)",
                             hint=URL_HINT)
        http = scheme == "oci+http" or (scheme == "oci" and is_loopback(host))
        return Remote(url=text, kind="oci", mode=checked, host=host, repo=repo, scheme="http" if http else "https")
    if scheme == "s3":
        bucket, prefix = parts.netloc, parts.path.strip("/")
        if not _BUCKET.match(bucket) or ".." in bucket:
            raise UsageError(f"{where} {text!r}: {bucket!r} is not an S3 bucket name", hint=URL_HINT)
        if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
            raise UsageError(f"{where} {text!r}: the prefix {prefix!r} has an empty, . or .. part", hint=URL_HINT)
        return Remote(url=text, kind="s3", mode=checked, bucket=bucket, prefix=prefix)
    raise UsageError(f"{where} {text!r}: unknown kind of store", hint=URL_HINT)


def resolve(flag_url: str | None, flag_mode: str | None, environ: Mapping[str, str],
            config: Mapping[str, object] | None) -> Remote | None:
    """Flag, then KBUILD_REMOTE_CACHE[_MODE], then cache.remote / cache.mode in invoke.yaml; None: no remote."""
    cfg = config or {}
    url, where = flag_url, "--remote-cache"
    if not url and environ.get(ENV_URL):
        url, where = environ[ENV_URL], ENV_URL
    if not url and isinstance(cfg.get("remote"), str) and cfg.get("remote"):
        url, where = str(cfg["remote"]), "cache.remote"
    mode, mode_where = flag_mode, "--remote-cache-mode"
    if not mode and environ.get(ENV_MODE):
        mode, mode_where = environ[ENV_MODE], ENV_MODE
    if not mode and isinstance(cfg.get("mode"), str) and cfg.get("mode"):
        mode, mode_where = str(cfg["mode"]), "cache.mode"
    checked_mode = parse_mode(mode or "readwrite", mode_where)
    if not url:
        return None
    return parse(url, checked_mode, where)


def overlay(remote: Remote | None) -> dict[str, str]:
    """What a task adds to the environment it passes down, so every build below it uses the cache."""
    if remote is None:
        return {}
    return {ENV_URL: remote.url, ENV_MODE: remote.mode.value}

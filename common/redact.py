"""Credentials out of everything kbuild prints or writes: one function, ``redact``.

A password reaches kbuild in a URL or a URL-like string — ``--docker-host tcp://user:PW@host``,
``DOCKER_HOST=ssh://user:PW@host``, ``--mirror user:PW@registry:5000``, a pre-signed
``?X-Amz-Credential=…`` — and from there into error lines, progress lines, reports and JUnit files
that CI pipelines publish. ``redact`` replaces the secret by ``***`` and keeps the user name, so a
line still says which account was used. Every password it finds (and any in the environment's
URL-valued variables) is remembered and also replaced where it shows up on its own, e.g. in a
library's message that quoted only part of the URL.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import unquote

__all__ = ["MASK", "forget", "redact", "redact_data", "remember"]

MASK = "***"

# scheme://AUTHORITY: the authority ends at the first /, ?, # (RFC 3986); the user part at its last @.
_SCHEME_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<auth>[^/?#\s'\"<>]*)")
# user:pw@host with no scheme (registry and mirror forms), at the start of a word, never after a /
# (so `registry/name:tag@sha256:…` is left alone) and never before a digest (`name:tag@sha256:…`).
_BARE = re.compile(
    r"(?:^|(?<=[\s'\"=(,<\[]))"
    r"(?P<user>[^\s/@:'\"=<>()\[\],]+):(?P<pw>[^\s/'\"<>]*)@"
    r"(?![A-Za-z0-9]+:[0-9A-Fa-f]{32,})"
    r"(?P<host>\[[0-9A-Za-z:.%]+\]|[A-Za-z0-9][A-Za-z0-9.-]*)"
)
# Secrets carried in query strings (pre-signed S3 URLs, tokens in registry auth URLs).
_QUERY = re.compile(
    r"(?P<key>[?&;](?:X-Amz-Credential|X-Amz-Signature|X-Amz-Security-Token|Signature|AWSAccessKeyId|"
    r"access_token|refresh_token|id_token|token|password|passwd|pwd|secret|client_secret|api_key|apikey|"
    r"key|sig|auth)=)(?P<value>[^&#\s'\"<>]+)",
    re.IGNORECASE,
)
# Environment variables whose values are URLs that may carry a password.
_URL_VARIABLES = ("DOCKER_HOST", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY", "NO_PROXY",
                  "http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "KUBE_GIT_URL")
# A remembered secret shorter than this is not replaced on its own: "ab" would mangle every line.
_MIN_REMEMBERED = 4

_known: set[str] = set()
_env_seen: dict[str, str] = {}


def remember(secret: str) -> None:
    """Replace ``secret`` (and its percent-decoded form) wherever it appears from now on."""
    for form in {secret, unquote(secret)}:
        if len(form) >= _MIN_REMEMBERED and form != MASK:
            _known.add(form)


def forget() -> None:
    """Drop every remembered secret (for tests)."""
    _known.clear()
    _env_seen.clear()


def _scan_environment(environ: Mapping[str, str]) -> None:
    for name in _URL_VARIABLES:
        value = environ.get(name)
        if value and _env_seen.get(name) != value:
            _env_seen[name] = value
            _redact_patterns(value)  # remembers what it finds


def _mask_authority(match: re.Match[str]) -> str:
    auth = match.group("auth")
    userinfo, at, host = auth.rpartition("@")
    if not at or ":" not in userinfo:
        return match.group(0)  # no user part, or a user without a password
    user, _, secret = userinfo.partition(":")
    if secret and secret != MASK:
        remember(secret)
    return f"{match.group('scheme')}{user}:{MASK}@{host}"


def _mask_bare(match: re.Match[str]) -> str:
    secret = match.group("pw")
    if not secret or secret == MASK:
        return match.group(0)
    remember(secret)
    return f"{match.group('user')}:{MASK}@{match.group('host')}"


def _mask_query(match: re.Match[str]) -> str:
    value = match.group("value")
    if value != MASK:
        remember(value)
    return f"{match.group('key')}{MASK}"


def _redact_patterns(text: str) -> str:
    text = _SCHEME_URL.sub(_mask_authority, text)
    text = _BARE.sub(_mask_bare, text)
    return _QUERY.sub(_mask_query, text)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every credential in a URL or URL-like string replaced by ``***`` (user names kept).

    Handles ``scheme://user:pw@host[:port]`` (IPv6 hosts, percent-encoded passwords), ``user:pw@host``
    registry forms, secrets in query strings, and any password seen before (in an earlier call or in
    ``DOCKER_HOST`` and the proxy variables of ``environ``, default ``os.environ``).
    """
    if not isinstance(text, str) or not text:
        return text
    _scan_environment(os.environ if environ is None else environ)
    text = _redact_patterns(text)
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_data(value: object) -> object:
    """``redact`` applied to every string in a JSON-like value (dicts, lists, tuples); keys too."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact_data(k): redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value

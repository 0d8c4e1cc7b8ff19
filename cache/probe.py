"""`inv doctor`'s row for the remote cache: reachable, may this build read and write, how fast."""

from __future__ import annotations

import time
from collections.abc import Mapping

from cache.config import Remote
from cache.store import StoreError
from cache.stores import open_store


def probe(remote: Remote, environ: Mapping[str, str]) -> tuple[str, str, str]:
    """(status, detail, fix): ok, or WARN (the cache is an accelerator: builds run without it)."""
    try:
        store = open_store(remote, environ)
    except ImportError as exc:
        return "WARN", f"{remote.url}: {exc.name} is not installed", "pip install -r requirements.txt"
    start = time.monotonic()
    try:
        store.ping()
        store.lookup("0" * 64)
    except StoreError as err:
        return "WARN", f"{remote.url}: not usable ({err.message}); builds run without it", _fix(remote, err.kind)
    latency = (time.monotonic() - start) * 1000 / 2
    detail = f"{remote.url}: reachable, read ok, {latency:.0f} ms a request"
    if not remote.writes:
        return "ok", detail + ", read-only (--remote-cache-mode read)", ""
    try:
        store.probe_write()
    except StoreError as err:
        return "WARN", detail + f", write refused ({err.message})", _fix(remote, err.kind)
    return "ok", detail + ", write ok", ""


def _fix(remote: Remote, kind: str) -> str:
    if kind == "denied":
        return ("docker login " + remote.host if remote.kind == "oci" else "check the AWS credentials") + \
            ", or --remote-cache-mode read"
    if remote.kind == "s3":
        return "check AWS_ENDPOINT_URL, the bucket and the network"
    return "check the registry address (oci://HOST[:PORT]/REPO) and the network"

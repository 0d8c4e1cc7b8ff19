"""Which store a remote names: the registry client or the S3 client (each imported only when chosen)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from cache.config import Remote
from cache.store import Store


def open_store(remote: Remote, environ: Mapping[str, str] = os.environ) -> Store:
    """The store for a remote (imports its client library, requests or boto3, only now)."""
    if remote.kind == "s3":
        from cache.s3 import S3Store

        return S3Store(remote, environ)
    from cache.oci import OciStore

    return OciStore(remote, environ)

"""An OCI registry as the store (the distribution HTTP API, through requests).

An output is a blob whose digest *is* ``sha256:<OutputID>``; an action is a small OCI image
manifest tagged with the hex ActionID, naming that blob (and its size) as its one layer.
Credentials come from docker's config (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``,
``auths`` entries); they are sent to the registry and its token service, never printed.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cache.config import Remote
from cache.store import CORRUPT, SERVER, UNREACHABLE, StoreError

if TYPE_CHECKING:
    import requests

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.kbuild.gocache.config.v1+json"
LAYER_TYPE = "application/vnd.kbuild.gocache.output.v1"
EMPTY_CONFIG = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
ACTION_ANNOTATION = "dev.kbuild.gocache.action"


def manifest_for(action: str, output: str, size: int) -> bytes:
    """The manifest of one action: the empty config and the output blob (pure; tested)."""
    doc = {"schemaVersion": 2, "mediaType": MANIFEST,
           "config": {"mediaType": CONFIG_TYPE, "digest": EMPTY_DIGEST, "size": len(EMPTY_CONFIG)},
           "layers": [{"mediaType": LAYER_TYPE, "digest": f"sha256:{output}", "size": size}],
           "annotations": {ACTION_ANNOTATION: action}}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def output_of(manifest: bytes) -> tuple[str, int]:
    """(OutputID, size) named by a manifest; StoreError(CORRUPT) for anything else."""
    try:
        doc = json.loads(manifest)
        layer = doc["layers"][0]
        digest, size = layer["digest"], layer["size"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise StoreError(CORRUPT, f"an action's manifest is not kbuild's ({type(exc).__name__})") from None
    if not (isinstance(digest, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
            and isinstance(size, int) and size >= 0):
        raise StoreError(CORRUPT, "an action's manifest names no sha256 blob")
    return digest[7:], size


class OciStore:
    """The registry named by ``remote``; thread-safe (one requests session, a lock for the token)."""

    def __init__(self, remote: Remote, environ: Mapping[str, str] = os.environ) -> None:
        from registry.client import Repository

        self.remote = remote
        self.repository = Repository(remote.host, remote.repo, environ, scheme=remote.scheme, push=remote.writes)
        self.api = self.repository.api
        self._config_pushed = False
        # One push per digest at a time: distribution answers 500 ("invalid checksum digest format")
        # to a HEAD that reads a blob link another request of ours is writing.
        self._pushing: dict[str, threading.Lock] = {}
        self._pushing_lock = threading.Lock()

    def _request(self, method: str, url: str, *, stream: bool = False, ok: tuple[int, ...] = (200,),
                 data: bytes | BinaryIO | None = None, headers: dict[str, str] | None = None) -> requests.Response:
        """The registry's answer; its failures as the cache's StoreError of the same kind."""
        from registry.client import RegistryError

        try:
            return self.repository.request(method, url, stream=stream, ok=ok, data=data, headers=headers)
        except RegistryError as exc:
            raise StoreError(exc.kind, exc.message) from None

    # -- the store ---------------------------------------------------------------------------------
    def ping(self) -> None:
        resp = self._request("GET", f"{self.remote.base}/v2/")
        resp.close()
        if resp.status_code == 404:
            raise StoreError(SERVER, f"{self.remote.host} has no registry API at /v2/")

    def lookup(self, action: str) -> tuple[str, int] | None:
        resp = self._request("GET", f"{self.api}/manifests/{action}", headers={"Accept": MANIFEST})
        if resp.status_code == 404:
            resp.close()
            return None
        return output_of(resp.content)

    def download(self, output: str, size: int, dest: BinaryIO) -> None:
        resp = self._request("GET", f"{self.api}/blobs/sha256:{output}", stream=True)
        with resp:
            if resp.status_code == 404:
                raise StoreError(CORRUPT, f"an entry names blob sha256:{output[:12]}…, which {self.remote.host} "
                                          "does not have")
            import requests

            from registry.client import reason

            try:
                for chunk in resp.iter_content(1 << 20):
                    dest.write(chunk)
            except requests.RequestException as exc:
                raise StoreError(UNREACHABLE, f"{self.remote.host}: {reason(exc)}") from None

    def _has_blob(self, digest: str) -> bool:
        resp = self._request("HEAD", f"{self.api}/blobs/{digest}")
        resp.close()
        return resp.status_code == 200

    def _push_blob(self, digest: str, data: bytes | BinaryIO, size: int) -> int:
        with self._pushing_lock:
            lock = self._pushing.setdefault(digest, threading.Lock())
        with lock:
            return self._push_blob_once(digest, data, size)

    def _push_blob_once(self, digest: str, data: bytes | BinaryIO, size: int) -> int:
        if self._has_blob(digest):
            return 0
        start = self._request("POST", f"{self.api}/blobs/uploads/", ok=(202,))
        start.close()
        location = start.headers.get("Location")
        if start.status_code != 202 or not location:
            raise StoreError(SERVER, f"{self.remote.host} started no upload ({start.status_code})")
        if location.startswith("/"):
            location = self.remote.base + location
        sep = "&" if "?" in location else "?"
        done = self._request("PUT", f"{location}{sep}digest={digest}", data=data, ok=(201,),
                             headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
        done.close()
        if done.status_code != 201:
            raise StoreError(SERVER, f"{self.remote.host} lost an upload ({done.status_code})")
        return size

    def upload(self, action: str, output: str, size: int, body: Path) -> int:
        sent = 0
        if not self._config_pushed:
            sent += self._push_blob(EMPTY_DIGEST, EMPTY_CONFIG, len(EMPTY_CONFIG))
            self._config_pushed = True  # racing threads both reach _push_blob: its lock makes one push
        with open(body, "rb") as fh:
            # An empty file object makes requests send a chunked body the registry waits on: send bytes.
            sent += self._push_blob(f"sha256:{output}", fh if size else b"", size)
        manifest = manifest_for(action, output, size)
        resp = self._request("PUT", f"{self.api}/manifests/{action}", data=manifest, ok=(201, 200),
                             headers={"Content-Type": MANIFEST})
        resp.close()
        if resp.status_code == 404:
            raise StoreError(SERVER, f"{self.remote.host} took no manifest (404)")
        return sent + len(manifest)

    def probe_write(self) -> None:
        """Start an upload and cancel it: the registry says whether this client may push."""
        start = self._request("POST", f"{self.api}/blobs/uploads/", ok=(202,))
        start.close()
        location = start.headers.get("Location")
        if location:
            if location.startswith("/"):
                location = self.remote.base + location
            try:
                self._request("DELETE", location, ok=(204, 200, 202)).close()
            except StoreError:
                pass  # cancelling is a courtesy: an abandoned upload is purged by the registry

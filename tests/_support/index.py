"""Push a multi-platform image (a Docker manifest list or an OCI index of tiny variants) into a
registry through its HTTP API, offline: a gzip'd one-file layer per platform, a config that names the
platform, a manifest per platform, then the list naming them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

import requests

LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
TIMEOUT = (3, 10)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(marker: str) -> tuple[bytes, bytes]:
    """(tar, gzip of it): one file, etc/kbuild-marker, fixed owner and mtime."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        members = (("etc", tarfile.DIRTYPE, b""), ("etc/kbuild-marker", tarfile.REGTYPE, marker.encode()))
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.type, info.mtime, info.size = kind, 0, len(data)
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            tar.addfile(info, io.BytesIO(data) if data else None)
    raw = buf.getvalue()
    return raw, gzip.compress(raw, mtime=0)


def _put_blob(base: str, repo: str, data: bytes) -> str:
    digest = _digest(data)
    if requests.head(f"{base}/v2/{repo}/blobs/{digest}", timeout=TIMEOUT).status_code == 200:
        return digest
    start = requests.post(f"{base}/v2/{repo}/blobs/uploads/", timeout=TIMEOUT)
    start.raise_for_status()
    location = start.headers["Location"]
    location = base + location if location.startswith("/") else location
    sep = "&" if "?" in location else "?"
    done = requests.put(f"{location}{sep}digest={digest}", data=data, timeout=TIMEOUT,
                        headers={"Content-Type": "application/octet-stream"})
    done.raise_for_status()
    return digest


def _put_manifest(base: str, repo: str, ref: str, body: bytes, media: str) -> str:
    got = requests.put(f"{base}/v2/{repo}/manifests/{ref}", data=body, headers={"Content-Type": media},
                       timeout=TIMEOUT)
    got.raise_for_status()
    return _digest(body)


def push_index(address: str, repo: str, tag: str, variants: dict[str, str]) -> dict[str, str]:
    """Push ``{platform: marker}`` as ``address/repo:tag``; returns {platform: manifest digest}."""
    base = f"http://{address}"
    entries, digests = [], {}
    for platform, marker in variants.items():
        os_name, arch, *rest = platform.split("/")
        raw, gz = _layer(marker)
        layer = _put_blob(base, repo, gz)
        config_doc = {"architecture": arch, "os": os_name, "config": {},
                      "rootfs": {"type": "layers", "diff_ids": [_digest(raw)]}}
        if rest:
            config_doc["variant"] = rest[0]
        config = json.dumps(config_doc, sort_keys=True).encode()
        config_digest = _put_blob(base, repo, config)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST,
                               "config": {"mediaType": CONFIG, "size": len(config), "digest": config_digest},
                               "layers": [{"mediaType": LAYER, "size": len(gz), "digest": layer}]}).encode()
        digest = _put_manifest(base, repo, _digest(manifest), manifest, MANIFEST)
        digests[platform] = digest
        plat = {"architecture": arch, "os": os_name} | ({"variant": rest[0]} if rest else {})
        entries.append({"mediaType": MANIFEST, "size": len(manifest), "digest": digest, "platform": plat})
    listing = json.dumps({"schemaVersion": 2, "mediaType": LIST, "manifests": entries}).encode()
    _put_manifest(base, repo, tag, listing, LIST)
    return digests


def forget(client, name: str) -> None:
    """Remove an image name from the engine if it is there (absent is what a platform test starts from)."""
    try:
        client.api.remove_image(name, force=True)
    except Exception:  # noqa: BLE001 - absent is what we want
        pass


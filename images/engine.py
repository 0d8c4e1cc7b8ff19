"""The thin layer over the Docker engine (docker SDK, low-level API only).

Every engine or registry failure becomes an ``EngineError`` whose message
says what was tried and how to fix it; the SDK is imported lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import KBError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"


class EngineError(KBError):
    code = 3


class RegistryError(KBError):
    """A registry said no (missing image, unreachable, auth): per image, not fatal for the run."""

    def __init__(self, ref: str, kind: str, detail: str) -> None:
        super().__init__(f"{ref}: {kind}: {detail}")
        self.ref, self.kind, self.detail = ref, kind, detail


def classify(detail: str) -> str:
    """Name a registry failure from the daemon's message."""
    low = detail.lower()
    if any(s in low for s in ("unauthorized", "denied", "authentication required", "403 forbidden")):
        return "auth refused"
    if any(s in low for s in ("manifest unknown", "not found", "name unknown", "does not exist")):
        return "not found"
    if any(s in low for s in ("connection refused", "no such host", "i/o timeout", "dial tcp", "timeout",
                              "network is unreachable", "server gave http response", "tls")):
        return "unreachable"
    return "failed"


@dataclass
class Engine:
    """A connected engine: ``api`` is a docker.APIClient."""

    api: Any
    host: str

    @classmethod
    def connect(cls, environ: Mapping[str, str], host: str | None = None) -> Engine:
        import docker  # lazy: the SDK is slow to import and needs no engine until here
        from docker.errors import DockerException

        url = host or environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        try:
            api = docker.APIClient(base_url=url, version="auto", timeout=None)
            api.ping()
        except (DockerException, OSError) as exc:
            how = "from --docker-host" if host else ("from DOCKER_HOST" if environ.get("DOCKER_HOST") else
                                                      "the default socket; DOCKER_HOST is unset")
            raise EngineError(f"cannot reach the Docker engine at {url} ({how}): {_short(exc)}",
                              hint="start one (`dockerd &` or `systemctl start docker`), or point "
                                   "DOCKER_HOST at a running engine") from None
        return cls(api=api, host=url)

    def clone(self) -> Engine:
        """A second client for another thread (requests sessions are not shared across threads)."""
        import docker

        return Engine(api=docker.APIClient(base_url=self.host, version=self.api.api_version, timeout=None),
                      host=self.host)

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.api.info()
        return info

    def image(self, name: str) -> dict[str, Any] | None:
        """``docker image inspect``, or None when absent."""
        from docker.errors import ImageNotFound, NotFound

        try:
            image: dict[str, Any] = self.api.inspect_image(name)
            return image
        except (ImageNotFound, NotFound):
            return None

    def remote_digest(self, ref: str) -> str:
        """The manifest digest a registry serves for ``ref`` (no download)."""
        from docker.errors import APIError

        try:
            digest: str = self.api.inspect_distribution(ref)["Descriptor"]["digest"]
            return digest
        except APIError as exc:
            detail = _short(exc)
            raise RegistryError(ref, classify(detail), detail) from None

    def pull(self, repository: str, reference: str, on_event: Callable[[dict[str, Any]], None]) -> None:
        """Pull ``repository`` at a tag or ``sha256:`` digest; in-band errors raise."""
        from docker.errors import APIError

        tag_or_digest = reference
        try:
            if reference.startswith("sha256:"):
                stream = self.api.pull(f"{repository}@{reference}", stream=True, decode=True)
            else:
                stream = self.api.pull(repository, tag=tag_or_digest, stream=True, decode=True)
            for event in stream:
                if "error" in event or "errorDetail" in event:
                    detail = (event.get("errorDetail") or {}).get("message") or event.get("error", "")
                    raise RegistryError(f"{repository}:{reference}", classify(detail), detail)
                on_event(event)
        except APIError as exc:
            detail = _short(exc)
            raise RegistryError(f"{repository}:{reference}", classify(detail), detail) from None

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        if not self.api.tag(image_id, repository, tag, force=True):
            raise EngineError(f"tagging {image_id[:19]} as {repository}:{tag} failed")

    def push(self, repository: str, tag: str) -> str:
        """``docker push``; returns the manifest digest. In-band errors (inside a 200 stream) raise."""
        from docker.errors import APIError

        digest = ""
        try:
            for event in self.api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in event or "errorDetail" in event:
                    detail = (event.get("errorDetail") or {}).get("message") or event.get("error", "")
                    raise RegistryError(f"{repository}:{tag}", classify(detail), detail)
                digest = (event.get("aux") or {}).get("Digest") or digest
        except APIError as exc:
            detail = _short(exc)
            raise RegistryError(f"{repository}:{tag}", classify(detail), detail) from None
        except OSError as exc:
            raise RegistryError(f"{repository}:{tag}", "unreachable", str(exc)) from None
        if not digest:
            raise RegistryError(f"{repository}:{tag}", "failed", "the engine reported no digest")
        return str(digest)

    def save(self, names: list[str], chunks: Callable[[bytes], object]) -> None:
        """``docker save`` of several images into one tar, streamed to ``chunks`` (whose result is ignored)."""
        res = self.api._get(self.api._url("/images/get"), params={"names": names}, stream=True)
        self.api._raise_for_status(res)
        for chunk in res.iter_content(chunk_size=1 << 20):
            chunks(chunk)

    def load(self, data: Iterator[bytes] | bytes) -> list[str]:
        """``docker load``; returns the "Loaded image" lines, raising on an in-band error."""
        loaded = []
        for event in self.api.load_image(data):
            if "error" in event or "errorDetail" in event:
                raise EngineError(f"docker load failed: {event.get('error') or event.get('errorDetail')}")
            if "stream" in event and event["stream"].strip():
                loaded.append(event["stream"].strip())
        return loaded


def _short(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def repo_digests(image: Mapping[str, Any] | None) -> dict[str, str]:
    """{repository: digest} from an inspect result's RepoDigests."""
    out: dict[str, str] = {}
    for item in (image or {}).get("RepoDigests") or []:
        repo, _, digest = item.partition("@")
        out[repo] = digest
    return out

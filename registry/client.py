"""One repository of an OCI registry over its HTTP API (through requests), with docker's credentials.

Credentials come from docker's config (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``,
``auths`` entries); they go to the registry and its token service, never to a log. Every call has
a connect and a read timeout; a GET or HEAD answered 5xx is asked again twice (registries have
transient 500s), a write never is. Failures are ``RegistryError`` of one of three kinds.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import requests

UNREACHABLE = "unreachable"   # refused, reset, DNS, TLS, a timeout
SERVER = "server"             # 5xx or an answer that makes no sense
DENIED = "denied"             # 401/403 (405 on a write: read-only storage)

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
RETRY_5XX = (0.2, 0.6)  # pauses before repeating a GET/HEAD that got a 5xx

_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


def is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1: where docker (and kbuild) talk plain HTTP to a registry."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def api_host(registry: str) -> str:
    """Where a registry's API answers: Docker Hub's is registry-1.docker.io."""
    return "registry-1.docker.io" if registry in ("docker.io", "index.docker.io") else registry


class RegistryError(Exception):
    """A failure talking to the registry; ``kind`` is UNREACHABLE, SERVER or DENIED."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def docker_auth(host: str, environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(user, secret) for ``host`` from docker's config.json ``auths``, as docker finds it."""
    base = environ.get("DOCKER_CONFIG") or str(Path(environ.get("HOME", "~")).expanduser() / ".docker")
    try:
        data = json.loads((Path(base) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    auths = data.get("auths") if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        return None
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v2/", f"http://{host}/v2/"):
        item = auths.get(key)
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("auth"), str) and item["auth"]:
            try:
                user, _, secret = base64.b64decode(item["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                continue
            return user, secret
        if isinstance(item.get("username"), str) and isinstance(item.get("password"), str):
            return item["username"], item["password"]
    return None


class Repository:
    """``scheme://host/v2/repo``; thread-safe (one requests session, a lock for the token)."""

    def __init__(self, host: str, repo: str, environ: Mapping[str, str], *, scheme: str = "https",
                 push: bool = False) -> None:
        import requests

        self.host, self.repo, self.push = host, repo, push
        self.base = f"{scheme}://{host}"
        self.api = f"{self.base}/v2/{repo}"
        self.session = requests.Session()
        self.session.trust_env = False  # never via a proxy from the environment: the registry is named
        self.creds = docker_auth(host, environ)
        self.token: str | None = None
        self._lock = threading.Lock()

    def request(self, method: str, url: str, *, stream: bool = False, ok: tuple[int, ...] = (200,),
                data: bytes | BinaryIO | None = None, headers: dict[str, str] | None = None) -> requests.Response:
        """One call; a response in ``ok`` or 404 is returned, anything else raises RegistryError."""
        import requests

        authed, retries = False, 0
        for _attempt in range(2 + len(RETRY_5XX)):  # one answer to a challenge, then the 5xx retries
            sent = dict(headers or {})
            if self.token:
                sent["Authorization"] = f"Bearer {self.token}"
            elif self.creds:
                raw = base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
                sent["Authorization"] = f"Basic {raw}"
            try:
                resp = self.session.request(method, url, headers=sent, stream=stream, data=data,
                                            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=True)
            except requests.RequestException as exc:
                raise RegistryError(UNREACHABLE, f"{self.host}: {reason(exc)}") from None
            if resp.status_code == 401 and not authed and self._authenticate(resp):
                authed = True
                continue
            if resp.status_code in ok or resp.status_code == 404:
                return resp
            resp.close()
            if resp.status_code >= 500 and method in ("GET", "HEAD") and retries < len(RETRY_5XX):
                time.sleep(RETRY_5XX[retries])  # a read is safe to repeat
                retries += 1
                continue
            raise self._refusal(method, resp)
        raise AssertionError("unreachable")

    def _refusal(self, method: str, resp: requests.Response) -> RegistryError:
        if resp.status_code >= 500:
            return RegistryError(SERVER, f"{self.host} answered {resp.status_code} to {method}")
        if method in ("PUT", "POST", "PATCH") and resp.status_code in (401, 403, 405):
            return RegistryError(DENIED, f"{self.host} refused a write ({resp.status_code}: "
                                         f"{error_code(resp) or 'read-only or no push right'})")
        if resp.status_code in (401, 403):
            return RegistryError(DENIED, f"{self.host} refused a read ({resp.status_code}); "
                                         "docker login to it, or check the repository name")
        return RegistryError(SERVER, f"{self.host} answered {resp.status_code} to {method}")

    def _authenticate(self, resp: requests.Response) -> bool:
        """Follow a Bearer challenge to the token service (with docker's credentials, if any)."""
        import requests

        header = resp.headers.get("WWW-Authenticate", "")
        resp.close()
        if header.lower().startswith("basic"):
            return False  # basic auth: the credentials (if any) were already sent
        fields = dict(_CHALLENGE.findall(header))
        realm = fields.get("realm")
        if not header.lower().startswith("bearer") or not realm:
            return False
        scope = f"repository:{self.repo}:pull" + (",push" if self.push else "")
        params = {"service": fields.get("service", ""), "scope": scope}
        with self._lock:
            try:
                got = self.session.get(realm, params=params, auth=self.creds,
                                       timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
            except requests.RequestException as exc:
                raise RegistryError(UNREACHABLE, f"token service of {self.host}: {reason(exc)}") from None
            if got.status_code != 200:
                raise RegistryError(DENIED, f"token service of {self.host} answered {got.status_code}")
            try:
                body = got.json()
            except ValueError:
                raise RegistryError(SERVER, f"token service of {self.host} sent no JSON") from None
            token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise RegistryError(SERVER, f"token service of {self.host} sent no token")
            self.token = token
        return True

    def manifest(self, reference: str, accept: tuple[str, ...]) -> tuple[bytes, str] | None:
        """(bytes, media type) of the manifest at a tag or digest, None when the registry has none."""
        resp = self.request("GET", f"{self.api}/manifests/{reference}", headers={"Accept": ", ".join(accept)})
        with resp:
            if resp.status_code == 404:
                return None
            return resp.content, resp.headers.get("Content-Type", "").split(";")[0].strip()


def error_code(resp: requests.Response) -> str:
    try:
        errors = resp.json().get("errors") or []
        return str(errors[0].get("code", "")) if errors else ""
    except (ValueError, AttributeError, IndexError):
        return ""


def reason(exc: BaseException) -> str:
    """A short cause without the URL's details: 'connection refused', 'timed out', ..."""
    text = str(exc)
    for needle, say in (("Read timed out", "no answer within the read timeout"),
                        ("timed out", "timed out"), ("Connection refused", "connection refused"),
                        ("Name or service not known", "unknown host"), ("reset by peer", "connection reset"),
                        ("RemoteDisconnected", "connection closed without an answer"),
                        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted")):
        if needle in text:
            return say
    return type(exc).__name__

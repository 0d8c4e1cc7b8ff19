"""The thin layer over the Docker engine (docker SDK, low-level API only).

Every engine or registry failure becomes an ``EngineError`` (a ``RegistryError`` for one image)
whose message says what was tried and how to fix it; the SDK is imported lazily.

Every call has a deadline. What the engine answers at once (ping, inspect, tag, info) gets
``ANSWER_SECONDS``. A transfer (pull, push, load, save, a registry lookup) is abandoned when no
data came for ``KBUILD_STALL_SECONDS`` (the socket's read timeout), or when the engine reported
nothing but retries for that long. A container's log is followed without a deadline (a quiet
compile is no fault), but the engine is pinged after each quiet stretch of that length.

A connection that broke or a deadline that passed is told apart by pinging the engine: it "went
away" or "did not answer" (``EngineGone``: nothing more can be done with it in this run), or it
still answers, and then the registry it was talking to "stalled".
"""

from __future__ import annotations

import contextlib
import functools
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import GeneratorType
from typing import Any

from common.config import DEFAULT_STALL_SECONDS, stall_seconds
from common.errors import KBError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
ANSWER_SECONDS = 10.0        # ping, version, inspect, tag, info: the engine answers these at once
# Creating or removing a container copies or deletes a whole image's files on vfs, and nothing is
# sent until it is done: only a generous deadline fits.
WORK_SECONDS = 600.0

# Exception classes (by name, anywhere in a chain: the SDK, requests and urllib3 wrap each other).
_TIMEOUTS = frozenset({"TimeoutError", "Timeout", "ReadTimeoutError", "ConnectTimeoutError", "timeout"})
_BROKEN = frozenset({"ConnectionError", "ProtocolError", "ChunkedEncodingError", "IncompleteRead",
                     "RemoteDisconnected", "NewConnectionError", "MaxRetryError"})
_FROZEN_HINT = "is dockerd stopped (SIGSTOP, a debugger) or overloaded? check `docker info`, or restart it"
_GONE_HINT = "the daemon stopped or crashed: start it again (`dockerd &` or `systemctl start docker`) and rerun"


class EngineError(KBError):
    code = 3


class EngineGone(EngineError):
    """The engine went away or stopped answering: nothing more can be done with it in this run."""


class RegistryError(KBError):
    """A registry said no (missing image, unreachable, auth) or stalled: per image, not fatal for the run."""

    def __init__(self, ref: str, kind: str, detail: str, *, message: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message or f"{ref}: {kind}: {detail}", hint=hint)
        self.ref, self.kind, self.detail = ref, kind, detail


def registry_of(ref: str) -> str:
    """The registry host of an image reference (Docker's rule: a first part with '.' or ':' or localhost)."""
    first, sep, _ = ref.partition("/")
    return first if sep and ("." in first or ":" in first or first == "localhost") else "docker.io"


def shown_host(url: str) -> str:
    """An engine URL fit for a message: no user or password."""
    return re.sub(r"//[^/@]*@", "//", url)


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
    """A connected engine. ``client`` is the docker.APIClient this layer drives; code elsewhere uses
    ``api``, the same client with a deadline on every call and its failures as one-line errors."""

    client: Any
    host: str
    stall: float = DEFAULT_STALL_SECONDS
    answer: float = ANSWER_SECONDS

    @classmethod
    def connect(cls, environ: Mapping[str, str], host: str | None = None) -> Engine:
        from docker.errors import DockerException  # lazy: the SDK is slow to import

        stall = stall_seconds(environ)
        answer = min(ANSWER_SECONDS, stall)
        url = host or environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        how = "from --docker-host" if host else ("from DOCKER_HOST" if environ.get("DOCKER_HOST") else
                                                  "the default socket; DOCKER_HOST is unset")
        try:
            client = _make_client(url, "auto", answer)
            client.ping()
        except (DockerException, OSError) as exc:
            if _kinds(exc) & _TIMEOUTS:
                raise EngineGone(f"the engine at {shown_host(url)} ({how}) did not answer within {answer:g} s "
                                 "during connect", hint=_FROZEN_HINT) from None
            raise EngineError(f"cannot reach the Docker engine at {shown_host(url)} ({how}): {_why(exc)}",
                              hint="start one (`dockerd &` or `systemctl start docker`), or point "
                                   "DOCKER_HOST at a running engine") from None
        client.timeout = stall
        return cls(client=client, host=url, stall=stall, answer=answer)

    @property
    def api(self) -> Any:
        """The low-level client for calls this layer has no method for (containers, networks)."""
        return _Guarded(self)

    def clone(self) -> Engine:
        """A second client for another thread (requests sessions are not shared across threads)."""
        return Engine(client=_make_client(self.host, self.client.api_version, self.stall), host=self.host,
                      stall=self.stall, answer=self.answer)

    def alive(self) -> bool:
        """Does the engine answer a ping within the answer deadline (on a connection of its own)?"""
        try:
            probe = _make_client(self.host, self.client.api_version, self.answer)
            try:
                return bool(probe.ping())
            finally:
                probe.close()
        except Exception:  # noqa: BLE001 - any failure to answer is the answer
            return False

    def info(self) -> dict[str, Any]:
        with self._call("info", self.answer):
            info: dict[str, Any] = self.client.info()
        return info

    def image(self, name: str) -> dict[str, Any] | None:
        """``docker image inspect``, or None when absent."""
        from docker.errors import ImageNotFound, NotFound

        with self._call(f"inspect of {name}", self.answer):
            try:
                image: dict[str, Any] = self.client.inspect_image(name)
                return image
            except (ImageNotFound, NotFound):
                return None

    def remote_digest(self, ref: str) -> str:
        """The manifest digest a registry serves for ``ref`` (no download)."""
        from docker.errors import APIError

        try:
            with self._call(f"resolve of {ref}", self.stall, ("resolving", ref)):
                digest: str = self.client.inspect_distribution(ref)["Descriptor"]["digest"]
            return digest
        except APIError as exc:
            detail = _short(exc)
            raise RegistryError(ref, classify(detail), detail) from None

    def pull(self, repository: str, reference: str, on_event: Callable[[dict[str, Any]], None]) -> None:
        """Pull ``repository`` at a tag or ``sha256:`` digest; in-band errors raise."""
        from docker.errors import APIError

        by_digest = reference.startswith("sha256:")
        ref = f"{repository}@{reference}" if by_digest else f"{repository}:{reference}"
        step, registry = f"pull of {ref}", ("pulling", ref)
        response = None
        try:
            with self._call(step, self.stall, registry):
                if by_digest:
                    stream = self.client.pull(ref, stream=True, decode=True)
                else:
                    stream = self.client.pull(repository, tag=reference, stream=True, decode=True)
                response = self.client.last_response
            finished = False
            for event in self._transfer(stream, step, registry):
                if "error" in event or "errorDetail" in event:
                    detail = (event.get("errorDetail") or {}).get("message") or event.get("error", "")
                    raise RegistryError(ref, classify(detail), detail)
                finished = finished or str(event.get("status") or "").startswith("Status:")
                on_event(event)
            if not finished:  # the stream ended without the engine's last word
                raise self._cut_short(step)
        except APIError as exc:
            detail = _short(exc)
            raise RegistryError(ref, classify(detail), detail) from None
        finally:
            _close(response)  # the engine stops a transfer nobody reads any more

    def tag(self, image_id: str, repository: str, tag: str) -> None:
        with self._call(f"tag of {image_id[:19]} as {repository}:{tag}", self.answer):
            tagged = self.client.tag(image_id, repository, tag, force=True)
        if not tagged:
            raise EngineError(f"tagging {image_id[:19]} as {repository}:{tag} failed")

    def push(self, repository: str, tag: str) -> str:
        """``docker push``; returns the manifest digest. In-band errors (inside a 200 stream) raise."""
        from docker.errors import APIError

        ref = f"{repository}:{tag}"
        step, registry = f"push of {ref}", ("pushing", ref)
        digest = ""
        response = None
        try:
            with self._call(step, self.stall, registry):
                events = self.client.push(repository, tag=tag, stream=True, decode=True)
                response = self.client.last_response
            for event in self._transfer(events, step, registry):
                if "error" in event or "errorDetail" in event:
                    detail = (event.get("errorDetail") or {}).get("message") or event.get("error", "")
                    raise RegistryError(ref, classify(detail), detail)
                digest = (event.get("aux") or {}).get("Digest") or digest
        except APIError as exc:
            detail = _short(exc)
            raise RegistryError(ref, classify(detail), detail) from None
        finally:
            _close(response)
        if not digest:
            if not self.alive():
                raise self._cut_short(step)
            raise RegistryError(ref, "failed", "the engine reported no digest")
        return str(digest)

    def save(self, names: list[str], chunks: Callable[[bytes], object]) -> None:
        """``docker save`` of several images into one tar, streamed to ``chunks`` (whose result is ignored).
        A failure of ``chunks`` (the disk, the pipe) is raised as it is: it is not the engine's."""
        from docker.errors import APIError

        step = f"save of {names[0]}" + (f" and {len(names) - 1} more" if len(names) > 1 else "")
        try:
            with self._call(step, self.stall):
                res = self.client._get(self.client._url("/images/get"), params={"names": names}, stream=True)
                self.client._raise_for_status(res)
        except APIError as exc:
            raise EngineError(f"{step} failed: {_short(exc)}") from None
        try:
            for chunk in self._iterate(res.iter_content(chunk_size=1 << 20), step, self.stall):
                chunks(chunk)
        finally:
            _close(res)

    def load(self, data: Iterator[bytes] | bytes, what: str = "images") -> list[str]:
        """``docker load``; returns the "Loaded image" lines, raising on an in-band error.
        A failure reading ``data`` is raised as it is: it is not the engine's."""
        from docker.errors import APIError

        step = f"load of {what}"
        source_failed: list[BaseException] = []

        def feed() -> Iterator[bytes]:
            try:
                if isinstance(data, bytes):
                    yield data
                else:
                    yield from data
            except Exception as exc:
                source_failed.append(exc)
                raise

        loaded = []
        response = None
        try:
            with self._call(step, self.stall):
                events = self.client.load_image(feed())
                response = self.client.last_response
            for event in self._iterate(events, step, self.stall):
                if "error" in event or "errorDetail" in event:
                    detail = event.get("error") or (event.get("errorDetail") or {}).get("message")
                    raise EngineError(f"docker load failed: {detail}")
                if "stream" in event and event["stream"].strip():
                    loaded.append(event["stream"].strip())
        except APIError as exc:
            raise EngineError(f"{step} failed: {_short(exc)}") from None
        except Exception:
            if source_failed:
                raise source_failed[0] from None
            raise
        finally:
            _close(response)
        return loaded

    def follow_logs(self, container: str) -> Iterator[bytes]:
        """A container's output as it comes, until it exits. No deadline on the output itself, but after
        each ``stall`` seconds of silence the engine is pinged; one that does not answer ends it."""
        step = f"logs of container {_label(container)}"
        with self._call(step, None):
            chunks = self.client.logs(container, stream=True, follow=True)
            response = self.client.last_response
        watch = _Liveness(self, response)
        try:
            with watch:
                for chunk in self._iterate(chunks, step, None):
                    watch.touch()
                    yield chunk
        except KBError:
            if watch.gone:
                raise self._frozen(step) from None
            raise
        finally:
            _close(response)
        if watch.gone:
            raise self._frozen(step)

    # --- deadlines and translation ---------------------------------------------------------------

    def deadline_for(self, method: str) -> float | None:
        """The read deadline of an APIClient method called through ``api``."""
        if method in ("ping", "version", "info", "inspect_image", "inspect_container", "inspect_network",
                      "containers", "images", "networks", "tag"):
            return self.answer
        if method in ("logs", "attach", "events"):
            return None  # output may pause for as long as a build step does: use follow_logs
        if method in ("create_container", "remove_container", "remove_image", "commit", "prune_images",
                      "prune_containers"):
            return max(WORK_SECONDS, self.stall)
        return self.stall

    @contextlib.contextmanager
    def _call(self, step: str, deadline: float | None,
              registry: tuple[str, str] | None = None) -> Iterator[None]:
        """Run a request with ``deadline`` as its read timeout; its connection failures become one line."""
        previous = self.client.timeout
        self.client.timeout = deadline
        try:
            with self._translating(step, deadline, registry):
                yield
        finally:
            self.client.timeout = previous

    @contextlib.contextmanager
    def _translating(self, step: str, waited: float | None,
                     registry: tuple[str, str] | None = None) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            failure = self._failure(exc, step, waited, registry)
            if failure is None:
                raise
            raise failure from None

    def _iterate(self, items: Iterator[Any], step: str, waited: float | None,
                 registry: tuple[str, str] | None = None) -> Iterator[Any]:
        """``items`` (a response being read), each read's failure translated; the consumer's are its own."""
        while True:
            with self._translating(step, waited, registry):
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item

    def _transfer(self, events: Iterator[dict[str, Any]], step: str,
                  registry: tuple[str, str]) -> Iterator[dict[str, Any]]:
        """Progress events of a pull or push. Silence ends it through the read timeout; retries alone
        (the engine counting down "Retrying in N seconds" against a registry that went away) end it here."""
        last = time.monotonic()
        for event in self._iterate(events, step, self.stall, registry):
            if str(event.get("status") or "").startswith("Retrying"):
                if time.monotonic() - last > self.stall:
                    raise self._stalled(registry, "the engine kept retrying")
            else:
                last = time.monotonic()
            yield event

    def _failure(self, exc: BaseException, step: str, waited: float | None,
                 registry: tuple[str, str] | None) -> KBError | None:
        """The one-line error for a request that failed on the way, or None when it is not a connection fault."""
        if isinstance(exc, KBError):
            return None
        kinds = _kinds(exc)
        if kinds & _TIMEOUTS:
            waited = waited or self.answer
            if not self.alive():
                return EngineGone(f"the engine at {shown_host(self.host)} did not answer within {waited:g} s "
                                  f"during {step}", hint=_FROZEN_HINT)
            if registry:
                return self._stalled(registry)
            return EngineError(f"the engine at {shown_host(self.host)} answers pings but sent nothing for "
                               f"{waited:g} s during {step}", hint=_FROZEN_HINT)
        if kinds & _BROKEN:
            return self._cut_short(step, exc)
        return None

    def _cut_short(self, step: str, exc: BaseException | None = None) -> EngineError:
        if not self.alive():
            return EngineGone(f"the engine at {shown_host(self.host)} went away during {step}", hint=_GONE_HINT)
        why = f": {_short(exc)}" if exc is not None else " (its output ended early)"
        return EngineError(f"the connection to the engine at {shown_host(self.host)} broke during {step}{why}")

    def _stalled(self, registry: tuple[str, str], why: str = "") -> RegistryError:
        doing, ref = registry
        host = registry_of(ref)
        detail = f"no data for {self.stall:g} s" + (f"; {why}" if why else "")
        return RegistryError(ref, "stalled", detail, message=f"registry {host} stalled while {doing} {ref} ({detail})")

    def _frozen(self, step: str) -> EngineGone:
        return EngineGone(f"the engine at {shown_host(self.host)} did not answer within {self.answer:g} s "
                          f"during {step} (pinged after {self.stall:g} s without output)", hint=_FROZEN_HINT)


class _Guarded:
    """``Engine.api``: the client's methods, each with its deadline and its connection failures as one line.
    HTTP errors (APIError, NotFound) pass through for the caller to handle."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._engine.client, name)
        if name.startswith("_") or not callable(attr):
            return attr
        engine = self._engine

        def call(*args: Any, **kwargs: Any) -> Any:
            step = name.replace("_", " ") + (f" {_label(args[0])}" if args and isinstance(args[0], str) else "")
            deadline = engine.deadline_for(name)
            with engine._call(step, deadline):
                result = attr(*args, **kwargs)
            if isinstance(result, GeneratorType):
                return engine._iterate(result, step, deadline)
            return result

        return call


class _Liveness:
    """Pings the engine after each quiet stretch of a followed stream; one that does not answer has its
    connection shut down, so the blocked read returns."""

    def __init__(self, engine: Engine, response: Any) -> None:
        self.engine, self.response = engine, response
        self.last = time.monotonic()
        self.gone = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Liveness:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=1)

    def touch(self) -> None:
        self.last = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(min(5.0, self.engine.stall / 2)):
            if time.monotonic() - self.last < self.engine.stall:
                continue
            if self.engine.alive():
                self.last = time.monotonic()
                continue
            self.gone = True
            _shutdown(self.response)
            return


@functools.cache
def _client_class() -> Any:
    import docker  # lazy: the SDK is slow to import and needs no engine until here

    class DeadlineClient(docker.APIClient):  # type: ignore[misc]  # the SDK is untyped (Any)
        """An APIClient whose ``timeout`` also holds where the SDK passes no deadline of its own (pull, import,
        wait), and which keeps the last streamed response (to close or shut down a stream it reads; a
        call may make a plain request after it: logs inspects the container)."""

        last_response: Any = None

        def send(self, request: Any, **kwargs: Any) -> Any:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = self.timeout
            response = super().send(request, **kwargs)
            if kwargs.get("stream"):
                self.last_response = response
            return response

    return DeadlineClient


def _make_client(url: str, version: str, timeout: float) -> Any:
    return _client_class()(base_url=url, version=version, timeout=timeout)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: causes, contexts, and exceptions carried in its arguments or ``reason``."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 32:
        item = todo.pop()
        if any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [c for c in (item.__cause__, item.__context__, getattr(item, "reason", None), *item.args)
                 if isinstance(c, BaseException)]
    return seen


def _kinds(exc: BaseException) -> set[str]:
    return {k.__name__ for e in _causes(exc) for k in type(e).__mro__}


def _why(exc: BaseException) -> str:
    """Why a connection could not be made, in a few words."""
    causes = _causes(exc)
    for kind, text in ((FileNotFoundError, "no socket there"), (ConnectionRefusedError, "connection refused"),
                       (PermissionError, "permission denied (is the user in the docker group?)")):
        if any(isinstance(c, kind) for c in causes):
            return text
    return _short(exc)


def _label(text: str) -> str:
    """A container or image id cut to docker's 12 characters; anything else as it is."""
    return text[:12] if re.fullmatch(r"(sha256:)?[0-9a-f]{64}", text) else text


def _close(response: Any) -> None:
    if response is not None:
        with contextlib.suppress(Exception):
            response.close()


def _shutdown(response: Any) -> None:
    """Shut a response's socket down from another thread: a read blocked on it returns at once."""
    try:
        raw = response.raw._fp.fp.raw
        sock = getattr(raw, "_sock", raw)
        sock.shutdown(socket.SHUT_RDWR)
    except (AttributeError, OSError):
        _close(response)


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

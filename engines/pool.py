"""The engines of `--engine URL` (repeatable): their URLs checked, and each one described for `inv doctor`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from common.checks import MISSING, OK, Check
from common.errors import KBError, UsageError
from common.redact import redact

if TYPE_CHECKING:
    from images.engine import Engine

SCHEMES = ("tcp://", "ssh://", "unix://")


def check_engine_url(url: str) -> str:
    """``tcp://``, ``ssh://``, ``unix://`` or a socket path (``/…``); anything else is a usage error."""
    shown = redact(url)
    if not isinstance(url, str) or not url.strip() or any(c.isspace() for c in url):
        raise UsageError(f"--engine {shown!r}: empty or with spaces", hint="e.g. --engine tcp://10.0.0.5:2375")
    if url.startswith("/"):
        return url
    if not url.startswith(SCHEMES):
        raise UsageError(f"--engine {shown!r}: give tcp://HOST:PORT, ssh://USER@HOST, unix:///PATH or a socket path",
                         hint="e.g. --engine tcp://10.0.0.5:2375 --engine ssh://builder@arm-box")
    if url.split("://", 1)[1].strip("/") == "":
        raise UsageError(f"--engine {shown!r}: no host or path after the scheme", hint="e.g. --engine tcp://10.0.0.5:2375")
    return url


def check_engines(urls: Sequence[str]) -> tuple[str, ...]:
    """Every URL checked, none twice (one engine works on one platform at a time)."""
    checked = tuple(check_engine_url(u) for u in urls)
    twice = sorted({redact(u) for u in checked if checked.count(u) > 1})
    if twice:
        raise UsageError(f"--engine {twice[0]} is given twice", hint="name each engine once")
    return checked


def is_remote(url: str) -> bool:
    """Only a unix socket is surely on this machine (and may keep using bind mounts)."""
    return not (url.startswith("unix://") or url.startswith("/"))


def connect(environ: Mapping[str, str], url: str) -> Engine:
    """``Engine.connect`` to an engine of --engine; a failure says so (not --docker-host) and is EngineGone:
    nothing can be done with that engine in this run."""
    from images.engine import Engine, EngineGone

    try:
        return Engine.connect(environ, url)
    except KBError as exc:
        hint = exc.hint
        if "paramiko" in exc.message:  # docker's ssh:// transport is an optional package
            hint = "pip install paramiko (the docker SDK's ssh:// support), or reach the engine by tcp:// over a tunnel"
        raise EngineGone(exc.message.replace("(from --docker-host)", "(from --engine)"), hint=hint) from None


def engine_row(environ: Mapping[str, str], url: str) -> Check:
    """One `inv doctor` row for an engine of `--engine`: reachable, API version, free disk, memory, architecture."""
    name = f"engine {redact(url)}"
    try:
        engine = connect(environ, url)
        info = engine.info()
        api = str(engine.client.api_version)
    except KBError as exc:
        return Check(name, MISSING, exc.message, exc.hint or "start dockerd there, or leave that engine out",
                     ("release",))
    try:
        mem = f"{int(info.get('MemTotal') or 0) / 2**30:.1f} GiB memory"
        arch = str(info.get("Architecture") or "?")
        cpus = info.get("NCPU") or "?"
        disk = _disk(engine, info, url)
        detail = (f"reachable, {info.get('ServerVersion', '?')} (API {api}), {arch}, {cpus} CPUs, {mem}, {disk}")
    finally:
        engine.client.close()
    return Check(name, OK, detail, "", ("release",))


def _disk(engine: Engine, info: Mapping[str, object], url: str) -> str:
    """Free disk under DockerRootDir when that directory is on this machine (a unix socket); the API
    itself reports only what the engine uses (``docker system df``), so that is what a remote row says."""
    root = str(info.get("DockerRootDir") or "")
    if root and not is_remote(url) and os.path.isdir(root):
        return f"{shutil.disk_usage(root).free / 2**30:.1f} GiB free in {root}"
    try:
        df = engine.api.df()
        used = int(df.get("LayersSize") or 0) + sum(max(0, int((v.get("UsageData") or {}).get("Size") or 0))
                                                  for v in df.get("Volumes") or [])
    except KBError:
        return f"{root or '?'}: disk use unknown (df did not answer)"
    return f"{used / 2**30:.1f} GiB used in {root or '?'} (the API reports no free space)"

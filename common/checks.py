"""One kind of check for `inv doctor` and the release preflight: what is needed, whether it is there, the fix.

Both read the same limits (free disk, available memory) from one table, each raised or lowered by
the user's ``KBUILD_MIN_DISK_GB`` / ``KBUILD_MIN_MEMORY_GB``.
"""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

OK, MISSING, WARN = "ok", "MISSING", "WARN"
DISK_ENV, MEMORY_ENV = "KBUILD_MIN_DISK_GB", "KBUILD_MIN_MEMORY_GB"  # the user's own thresholds, if set

# (GiB of free disk, GiB of available memory) each kind of work wants.
#   build: a cold kube-apiserver build fills ~3 GB of GOCACHE; its link step wants ~3 GB of memory.
#   release: every server binary for each platform, the images' tars and the tarballs on top.
LIMITS: dict[str, tuple[float, float]] = {"build": (5.0, 3.0), "release": (10.0, 4.0)}


@dataclass
class Check:
    """One row: ``status`` is OK, MISSING (the work cannot run) or WARN (it may run, badly)."""

    name: str
    status: str
    detail: str
    fix: str = ""
    needed_by: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == OK

    @classmethod
    def of(cls, name: str, ok: bool, detail: str, fix: str = "", needed_by: tuple[str, ...] = (),
           failing: str = MISSING) -> Check:
        """A row from a yes/no answer; the fix is kept only when it is needed."""
        return cls(name, OK if ok else failing, detail, "" if ok else fix, needed_by)


def limits(environ: Mapping[str, str], work: str) -> tuple[float, float]:
    """(GiB of free disk, GiB of memory) ``work`` ('build' or 'release') wants; the user's variables win."""
    from common.config import env_number

    disk, memory = LIMITS[work]
    return (env_number(environ, DISK_ENV, disk, what=f"GiB of free disk a {work} needs"),
            env_number(environ, MEMORY_ENV, memory, what=f"GiB of available memory a {work} needs"))


def tool(name: str, environ: Mapping[str, str], fix: str, *, why: str = "",
         needed_by: tuple[str, ...] = ()) -> Check:
    """Is ``name`` on the environment's PATH? The detail is its path (and why it is needed)."""
    path = shutil.which(name, path=environ.get("PATH"))
    detail = path or "not on PATH"
    return Check.of(name, bool(path), f"{detail} ({why})" if why else detail, fix, needed_by)


def mirror_reachable(mirror: str, timeout: float = 3.0) -> tuple[bool, str]:
    """Does the registry answer /v2/ (200, or 401 asking for login)? https first, then plain http."""
    host = mirror.split("/", 1)[0]
    for scheme in ("https", "http"):
        try:
            with urllib.request.urlopen(f"{scheme}://{host}/v2/", timeout=timeout) as r:
                return True, f"{scheme} {r.status}"
        except urllib.error.HTTPError as exc:
            if exc.code in (200, 401):
                return True, f"{scheme} {exc.code} (login may be needed)" if exc.code == 401 else f"{scheme} 200"
        except (OSError, ValueError):
            continue
    return False, "no answer on https or http"

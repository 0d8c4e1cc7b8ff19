"""What a release builds and how each mode runs it, as plain data (no side effects).

The target lists and their platforms are read from the tree's hack/lib/golang.sh the way
bash evaluates it (`kube::golang::setup_platforms`, the `*_targets` functions); the
environment given to the tree's packaging and to a directly run kube-cross comes from the
variables Kubernetes' own build/common.sh forwards. `tests/test_release_plan.py` checks the
lists against bash sourcing the tree's own files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from build.release.modes import Mode, parse_mode
from common.errors import UsageError
from workspace import shell
from workspace.targetlists import GROUPS, group_targets
from workspace.tree import GO_PACKAGE, KubeTree

MODES = tuple(m.value for m in Mode)  # the words --mode takes
REMOTE_ROOT = f"/go/src/{GO_PACKAGE}"            # where kube-cross sees the tree (build/common.sh REMOTE_ROOT)
OUTPUT_SUBPATH = "_output/dockerized"            # KUBE_OUTPUT_SUBPATH of containerized builds
# KUBE_GIT_VERSION_FILE: where release.sh (v1.20 and v1.35 alike) writes it, so the source tarball
# holds the same members in every mode; Kubernetes' .gitignore lists it.
VERSION_DEFS = ".dockerized-kube-version-defs"

# build/common.sh kube::build::run_build_command_ex: what reaches the build container
# (v1.20: KUBE_FASTBUILD ... SOURCE_DATE_EPOCH; v1.35 adds the overrides, GOTOOLCHAIN, GOPROXY).
FORWARDED = ("KUBE_FASTBUILD", "KUBE_BUILD_PLATFORMS", "KUBE_VERBOSE", "KUBE_BUILD_WITH_COVERAGE",
             "KUBE_CGO_OVERRIDES", "KUBE_STATIC_OVERRIDES", "KUBE_RACE", "FORCE_HOST_GO", "GO_VERSION",
             "GOTOOLCHAIN", "GOFLAGS", "GOGCFLAGS", "GOLDFLAGS", "SOURCE_DATE_EPOCH", "GOPROXY")

IMAGE_GROUPS = (
    ("server-image", ("kube::golang::server_image_targets",), "KUBE_SERVER_IMAGE_TARGETS", "SERVER"),
)
CONFORMANCE_GROUP = ("conformance-image", ("kube::golang::conformance_image_targets",),
                     "KUBE_CONFORMANCE_IMAGE_TARGETS", "SERVER")


@dataclass(frozen=True)
class TargetGroup:
    """One of golang.sh's lists and the platforms it is built for."""

    name: str
    targets: tuple[str, ...]
    platforms: tuple[str, ...]


@dataclass(frozen=True)
class ReleaseRequest:
    """What the user asked for: `inv release`'s flags, checked by `check_request`."""

    mode: Mode = Mode.SCRIPT
    quick: bool = False                   # like `make quick-release`
    platforms: tuple[str, ...] = ()       # os/arch; empty: the tree's own lists
    images_only: bool = False             # like `make quick-release-images`
    conformance: bool = False             # also the conformance image
    push: tuple[str, ...] = ()            # registries (HOST[:PORT][/PATH]) to push the server images to
    docker_host: str | None = None        # the engine (default $DOCKER_HOST)
    mirrors: tuple[str, ...] = ()         # registries to pull the build's images from (as `inv images`)
    layout: str = "nested"                # the mirrors' layout (as `inv images`)
    skip_images: bool = False             # don't pull or retag the images first
    report_path: Path | None = None       # where the JSON report goes (default: in release-tars)
    engines: tuple[str, ...] = ()         # direct mode: engines to spread the platforms over (--engine)
    json: bool = False                    # the report on stdout, everything else on stderr

    @property
    def run_tests(self) -> bool:
        return not self.quick


def check_request(req: ReleaseRequest) -> ReleaseRequest:
    """Refuse bad input before anything runs."""
    req = replace(req, mode=parse_mode(req.mode))  # a word from invoke.yaml or a caller becomes its Mode
    for p in req.platforms:
        if not re.fullmatch(r"[a-z0-9]+/[a-z0-9]+", p):
            raise UsageError(f"--platform {p!r}: expected os/arch, e.g. linux/arm64")
    for reg in req.push:
        check_push_registry(reg)
    if req.engines:
        from engines.pool import check_engines

        if req.mode is not Mode.DIRECT:
            raise UsageError(f"--engine works with --mode direct, not --mode {req.mode.value}",
                             hint="add --mode direct (kube-cross runs on each engine, the packaging here)")
        req = replace(req, engines=check_engines(req.engines))
    return req


def check_push_registry(reg: str) -> str:
    """HOST[:PORT][/PATH]: no scheme, no tag, no spaces."""
    from images.refs import check_mirror

    if "://" in reg:
        raise UsageError(f"--push {reg!r}: give HOST[:PORT][/PATH] without a scheme", hint="e.g. --push 127.0.0.1:5000")
    try:
        return check_mirror(reg)
    except UsageError as exc:
        raise UsageError(f"--push {reg!r}: {exc.message.split(': ', 1)[-1]}",
                         hint="e.g. --push registry.example:5000/k8s") from None


# --- platforms -------------------------------------------------------------------------------

def platforms_by_kind(tree: KubeTree, environ: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """kube::golang::setup_platforms: KUBE_BUILD_PLATFORMS intersected (sorted, as `sort | uniq -d`
    leaves it), else KUBE_FASTBUILD=true → linux/amd64, else each supported list."""
    text = tree.golang_sh
    supported = {k: tuple(shell.array(text, f"KUBE_SUPPORTED_{k}_PLATFORMS") or ())
                 for k in ("SERVER", "NODE", "CLIENT", "TEST")}
    requested = environ.get("KUBE_BUILD_PLATFORMS", "").split()
    if requested:
        asked = set(requested)
        return {k: tuple(sorted(asked & set(v))) for k, v in supported.items()}
    if environ.get("KUBE_FASTBUILD") == "true":
        return {k: ("linux/amd64",) for k in supported}
    return supported


def release_groups(tree: KubeTree, environ: Mapping[str, str], *, images_only: bool = False,
                   conformance: bool = False) -> list[TargetGroup]:
    """The lists release.sh's `make cross` builds (or release-images.sh's, with images_only)."""
    text = tree.golang_sh
    kinds = platforms_by_kind(tree, environ)
    specs = list(IMAGE_GROUPS) + ([CONFORMANCE_GROUP] if conformance else []) if images_only else list(GROUPS)
    groups = []
    for name, functions, array, kind in specs:
        targets = group_targets(text, functions, array)
        if targets and kinds[kind]:
            groups.append(TargetGroup(name, tuple(targets), kinds[kind]))
    return groups


def per_platform(groups: list[TargetGroup]) -> dict[str, list[str]]:
    """Targets to build for each platform, first-seen order, duplicates dropped."""
    out: dict[str, dict[str, None]] = {}
    for g in groups:
        for p in g.platforms:
            bucket = out.setdefault(p, {})
            for t in g.targets:
                bucket.setdefault(t, None)
    return {p: list(ts) for p, ts in out.items()}


# --- environments -----------------------------------------------------------------------------

def base_env(req: ReleaseRequest, image_env: Mapping[str, str]) -> dict[str, str]:
    """What every mode gives the tree's scripts: the offline image settings, quick mode, platforms."""
    env = dict(image_env)  # images.driver.offline_env
    if req.conformance:
        env["KUBE_BUILD_CONFORMANCE"] = "y"
    if req.quick:  # what `make quick-release` sets
        env["KUBE_RELEASE_RUN_TESTS"] = "n"
        env["KUBE_FASTBUILD"] = "true"
    if req.platforms:
        env["KUBE_BUILD_PLATFORMS"] = " ".join(req.platforms)
        env.pop("KUBE_FASTBUILD", None)  # explicit platforms win over the fast build's linux/amd64
    if req.docker_host:
        env["DOCKER_HOST"] = req.docker_host
    return env


def packaging_env(tree: KubeTree, req: ReleaseRequest, image_env: Mapping[str, str]) -> dict[str, str]:
    """The host-side packaging's environment: the version file kbuild wrote, so the image tags and
    the `version` file agree with the binaries' stamps."""
    env = base_env(req, image_env)
    env["KUBE_GIT_VERSION_FILE"] = str(tree.root / VERSION_DEFS)
    return env


@dataclass(frozen=True)
class ContainerSpec:
    """One `docker run` of kube-cross, as the v1.35 build/common.sh runs it."""

    image: str
    command: tuple[str, ...]
    binds: dict[str, dict[str, str]]
    env: dict[str, str]
    working_dir: str
    user: str | None
    name: str
    network: str = "none"
    labels: dict[str, str] = field(default_factory=dict)


def direct_specs(tree: KubeTree, req: ReleaseRequest, image: str, environ: Mapping[str, str], *,
                 gocache: Path, uid_gid: str | None, name_base: str) -> list[ContainerSpec]:
    """The containers direct mode runs: `make cross` (or the image targets), then the tests release.sh
    would run; the tree and a host GOCACHE bind-mounted, no network, the caller's uid:gid."""
    env = {k: environ[k] for k in FORWARDED if k in environ}
    overlay = base_env(req, {})
    overlay.pop("DOCKER_HOST", None)
    env.update({k: v for k, v in overlay.items() if k in FORWARDED})
    # v1.20's golang.sh sets GOCACHE=${KUBE_GOPATH}/cache whatever the environment says: mount the
    # host cache exactly there, and say it in GOCACHE for trees that read the environment.
    remote_cache = f"{REMOTE_ROOT}/{OUTPUT_SUBPATH}/go/cache"
    env.update({"KUBE_OUTPUT_SUBPATH": OUTPUT_SUBPATH, "KUBE_GIT_VERSION_FILE": f"{REMOTE_ROOT}/{VERSION_DEFS}",
                "KUBE_BUILDER_OS": "linux-gnu", "GOCACHE": remote_cache,
                # HOME outside the mounted tree: go writes its telemetry and config under it.
                "HOME": "/tmp"})
    binds = {str(tree.root): {"bind": REMOTE_ROOT, "mode": "rw"}, str(gocache): {"bind": remote_cache, "mode": "rw"}}
    commands: list[tuple[str, ...]]
    if req.images_only:  # build/release-images.sh: one `make all` of the image targets for the server platforms
        groups = release_groups(tree, {**environ, **overlay}, images_only=True, conformance=req.conformance)
        targets = " ".join(dict.fromkeys(t for g in groups for t in g.targets))
        platforms = " ".join(groups[0].platforms) if groups else ""
        commands = [("make", "all", f"WHAT={targets}", f"KUBE_BUILD_PLATFORMS={platforms}")]
    else:
        commands = [("make", "cross")]
        if req.run_tests:
            commands += [("make", "test"), ("make", "test-integration")]
    labels = {"io.kbuild.release": str(tree.root)}
    return [ContainerSpec(image, cmd, binds, dict(env), REMOTE_ROOT, uid_gid, f"{name_base}-{i}", labels=labels)
            for i, cmd in enumerate(commands)]


def host_gocache(environ: Mapping[str, str]) -> Path:
    """GOCACHE, else Go's own default ($XDG_CACHE_HOME/go-build, ~/.cache/go-build)."""
    if environ.get("GOCACHE"):
        return Path(environ["GOCACHE"])
    base = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME") or os.path.expanduser("~")) / ".cache")
    return Path(base) / "go-build"


def is_local_engine(host: str | None) -> bool:
    """Bind mounts name paths on the engine's machine: only a unix socket is surely this one."""
    return not host or host.startswith("unix://") or host.startswith("/")

"""What the driver asks of a release mode, and the one release under way it hands each.

The driver's phases: refuse a tree that lacks what the mode runs (before images or builds), the
preflight checks (the mode's own ones sit around the engine row), then the build and packaging.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from build.release.modes import Mode

if TYPE_CHECKING:
    from build.release.plan import ReleaseRequest
    from build.release.report import Phases
    from build.version import VersionInfo
    from common.checks import Check
    from images.engine import Engine
    from images.resolve import ImageSpec
    from workspace.tree import KubeTree


@dataclass(frozen=True)
class Preflight:
    """What a mode's checks look at; ``engine`` is None when none answered, ``host`` the engine's address."""

    tree: KubeTree
    req: ReleaseRequest
    environ: Mapping[str, str]
    engine: Engine | None
    host: str | None


@dataclass(frozen=True)
class ReleaseRun:
    """One release past its preflight: the tree, the request, the environment (with SOURCE_DATE_EPOCH),
    the offline image settings, the extra variables every step gets, the engine, the version stamp,
    the tree's kube-cross image (None when it names none), the log, the output and the phase clock;
    ``report`` takes what the mode adds to the JSON report (e.g. per platform: engine, phases, bytes)."""

    tree: KubeTree
    req: ReleaseRequest
    env: dict[str, str]
    image_env: dict[str, str]
    extra: dict[str, str]
    engine: Engine | None
    stamp: VersionInfo
    cross: ImageSpec | None
    log: Path
    out: Callable[[str], None]
    phases: Phases
    report: dict[str, object] = field(default_factory=dict)


class ReleaseMode(Protocol):
    """One way to build a release."""

    @property
    def mode(self) -> Mode:
        """Its name."""

    @property
    def runs_kube_cross(self) -> bool:
        """It runs the tree's kube-cross image (so that image must be present)."""

    def refuse_early(self, tree: KubeTree, req: ReleaseRequest, image_env: Mapping[str, str]) -> None:
        """Raise a UsageError when the tree lacks the scripts this mode runs."""

    def tree_checks(self, pre: Preflight) -> list[Check]:
        """The mode's checks of the tree and the tools, before the engine's row."""

    def engine_checks(self, pre: Preflight) -> list[Check]:
        """The mode's checks after the engine's row (the engine's network, its place, the host's Go)."""

    def release(self, run: ReleaseRun) -> dict[str, str]:
        """Build and package; returns the environment the packaging ran with (for the report)."""


def build_then_package(run: ReleaseRun, build: Callable[[ReleaseRun, dict[str, str]], None]) -> dict[str, str]:
    """Direct and native modes: the version file kbuild computed, the mode's ``build`` (given the build
    environment), then the tree's own packaging; returns the packaging's environment overlay."""
    from build.release import package as pkg
    from build.release.plan import VERSION_DEFS, base_env, packaging_env

    defs = run.tree.root / VERSION_DEFS
    content = "\n".join(run.stamp.shell_lines()) + "\n"  # kube::version::save_version_vars' format
    if not defs.is_file() or defs.read_text() != content:
        # Rewritten only when it changes: it is a tree file, so its mtime is in the up-to-date fingerprint.
        from common.outputs import write_file

        write_file(defs, content, step="the version file")
    with run.phases.phase("build"):
        build(run, {**run.env, **base_env(run.req, {})})
    overlay = {**packaging_env(run.tree, run.req, run.image_env), **run.extra}
    with run.phases.phase("package"):
        pkg.run_packaging(run.tree, pkg.packaging_argv(run.tree, run.req.images_only), run.env, overlay, run.log,
                          run.out)
    return overlay


def packaging_checks(pre: Preflight) -> list[Check]:
    """Direct and native modes: the tree's packaging scripts and tar."""
    from common.checks import Check, tool

    rels = ("build/lib/release.sh",) + (() if pre.req.images_only else ("build/package-tarballs.sh",))
    checks = [Check.of(rel, (pre.tree.root / rel).is_file(), f"{rel} in the tree (the packaging)",
                       "use --mode script (the tree's build/release.sh)") for rel in rels]
    checks.append(tool("tar", pre.environ, "apt-get install tar", why="the packaging"))
    return checks


def refuse_without_packaging(tree: KubeTree, req: ReleaseRequest) -> None:
    """Direct and native modes: the tree's packaging script must be there."""
    from build.release.package import packaging_argv

    packaging_argv(tree, req.images_only)


class PackagesOnThisHost:
    """Direct and native modes: what the tree's packaging on this host needs (a base for both)."""

    def refuse_early(self, tree: KubeTree, req: ReleaseRequest, image_env: Mapping[str, str]) -> None:
        refuse_without_packaging(tree, req)

    def tree_checks(self, pre: Preflight) -> list[Check]:
        return packaging_checks(pre)

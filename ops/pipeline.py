"""`inv ci`: the whole pipeline as steps — doctor, workspace, images, build or release — with a JSON
report and a JUnit XML file (one test case per step) for CI systems to show.

Each step runs only if the ones before it passed; the exit code is the first failure's.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.cli import info
from common.errors import KBError
from common.outputs import check_inside, output_target, write_file
from common.redact import redact, redact_data
from workspace.shell import function_targets
from workspace.tree import KubeTree

DEFAULT_SERVER_TARGETS = ("cmd/kube-apiserver", "cmd/kube-controller-manager", "cmd/kube-scheduler",
                          "cmd/kube-proxy", "cmd/kubelet", "cmd/kubeadm")


@dataclass
class Step:
    name: str
    status: str = "skipped"      # passed / failed / skipped
    seconds: float = 0.0
    detail: str = ""
    code: int = 0
    data: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineRequest:
    """What `inv ci` was asked to do: the flags, checked and with the config's defaults filled in."""

    report_path: Path                 # the JSON report
    junit_path: Path                  # the JUnit XML file
    whats: tuple[str, ...] = ()       # targets to build; none: the tree's server targets
    release: bool = False             # release tarballs instead of per-component builds
    quick: bool = False               # with release: like `make quick-release`
    mode: str = "script"              # with release: the release mode
    mirrors: tuple[str, ...] = ()     # registries to pull the build's images from and retag
    layout: str = "nested"            # how the mirrors name images
    skip_images: bool = False         # skip the images step
    docker_host: str | None = None    # the engine (default $DOCKER_HOST)

    @property
    def use_images(self) -> bool:
        """Does the images step run? Only a release or a mirror needs it."""
        return not self.skip_images and (self.release or bool(self.mirrors))


def server_targets(tree: KubeTree) -> list[str]:
    """The tree's server targets (kube::golang::server_targets) that are main packages here."""
    from build.targets import _has_main

    listed = function_targets(tree.golang_sh, "kube::golang::server_targets") or list(DEFAULT_SERVER_TARGETS)
    return [t for t in listed if (tree.root / t).is_dir() and _has_main(tree.root / t)]


def doctor(tree: KubeTree, environ: Mapping[str, str], need_engine: bool, docker_host: str | None,
           release_mode: str | None = None) -> dict[str, object]:
    """The checks the later steps rely on; raises on the first missing piece."""
    if release_mode is not None:
        from build.release.modes import parse_mode
        from build.release.plan import ReleaseRequest, check_request

        check_request(ReleaseRequest(mode=parse_mode(release_mode)))
    from build.golang import check_minimum, find_go

    toolchain = find_go(environ)
    check_minimum(toolchain, tree.minimum_go)
    facts: dict[str, object] = {"tree": str(tree.root), "era": tree.era.value, "go": toolchain.version,
                                "go_path": str(toolchain.go)}
    if not shutil.which("git", path=environ.get("PATH")):
        raise KBError("git: not found on PATH", hint="apt-get install git")
    if need_engine:
        from images.engine import Engine

        engine = Engine.connect(environ, docker_host)
        facts["engine"] = engine.host
    return facts


def run_pipeline(tree: KubeTree, environ: Mapping[str, str], req: PipelineRequest) -> int:
    """Run every step in order; write the report, the JUnit file and report.html (with the run's
    timeline) whatever happens. Returns the exit code."""
    from common.trace import TRACE, recording

    before = _mtime(req.report_path)
    with recording(tree.root / TRACE, tree.root, "kbuild ci") as rec:
        code = _run_steps(tree, environ, req)
        rec.keep = code == 0  # a failed run leaves the tree's last good timeline; report.html has this one
    try:
        if _mtime(req.report_path) == before:
            return code  # no report was written (its line said why): nothing to show either
        body = json.loads(req.report_path.read_text())
    except (OSError, ValueError):
        return code
    from reports.html import write_beside

    events = rec.document()["traceEvents"]
    write_beside(req.report_path, tree.root, "kbuild ci", body if isinstance(body, dict) else {},
                 events if isinstance(events, list) else [])
    return code


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _run_steps(tree: KubeTree, environ: Mapping[str, str], req: PipelineRequest) -> int:
    """Every step in order; the JSON report and the JUnit file whatever happens. Where they go is
    checked first: a report that can't be written stops the run before any step."""
    from common.trace import span

    report_path, junit_path = req.report_path, req.junit_path
    check_targets(tree, report_path, junit_path)
    use_images = req.use_images
    release_mode = req.mode if req.release else None
    steps = [Step("doctor"), Step("workspace"), Step("images"), Step("release" if req.release else "build")]
    actions: dict[str, Callable[[], dict[str, object]]] = {
        "doctor": lambda: doctor(tree, environ, use_images or req.release, req.docker_host, release_mode),
        "workspace": lambda: _workspace(tree, environ),
        "images": lambda: _images(tree, environ, list(req.mirrors), req.layout, req.docker_host, release_mode),
        "build": lambda: _build(tree, environ, list(req.whats)),
        "release": lambda: _release(tree, environ, req.quick, req.mode, list(req.mirrors), req.layout,
                                    req.docker_host),
    }
    code = 0
    for step in steps:
        if code:
            step.detail = "not run: an earlier step failed"
            continue
        if step.name == "images" and not use_images:
            step.detail = "no mirrors and no release: nothing needs the images"
            continue
        info(f"== {step.name}")
        start = time.monotonic()
        try:
            with span(step.name, "ci"):
                step.data = actions[step.name]() or {}
            step.status = "passed"
        except KBError as exc:
            step.status, step.detail, step.code = "failed", exc.message, exc.code or 1
            if exc.hint:
                step.detail += f" (tip: {exc.hint})"
            code = step.code
            info(f"ERROR {step.name}: {step.detail}")
        step.seconds = round(time.monotonic() - start, 2)
    try:
        write_report(report_path, steps, code, root=tree.root)
        write_junit(junit_path, steps, root=tree.root)
    except KBError as exc:
        if not code:
            raise  # it names the path: that is the one error
        # A step failed already (a read-only tree, say): that is the error; the report is a casualty.
        info(f"(no report written: {exc.message})")
        return code
    info(f"report: {report_path}; junit: {junit_path}")
    return code


def _workspace(tree: KubeTree, environ: Mapping[str, str]) -> dict[str, object]:
    from workspace.layout import ensure_workspace, plan_layout

    layout = plan_layout(tree, environ)
    actions = ensure_workspace(layout)
    return {"link": str(layout.link) if layout.link else None, "changes": [a.kind for a in actions]}


def _images(tree: KubeTree, environ: Mapping[str, str], mirrors: list[str], layout: str,
            docker_host: str | None, mode: str | None) -> dict[str, object]:
    from images import driver

    only: list[str] = []
    if mode is not None:  # a release asks only for what its mode uses
        from build.release.preflight import images_for_mode
        from images.resolve import resolve

        only = [s.ref.name for s in images_for_mode(resolve(tree, environ), mode)]
    outcomes = driver.run(tree, environ, mirrors=mirrors, layout=layout, docker_host=docker_host, only=only)
    return {"images": [asdict(o) for o in outcomes]}


def _build(tree: KubeTree, environ: Mapping[str, str], whats: list[str]) -> dict[str, object]:
    from build.driver import BuildJob, build_tree

    targets = whats or server_targets(tree)
    built = build_tree(tree, BuildJob(whats=tuple(targets)), environ)
    return {"targets": targets, "binaries": [{"path": str(b.path), "platform": b.platform, "size": b.size,
                                              "sha256": b.sha256, "up_to_date": b.fresh} for b in built]}


def _release(tree: KubeTree, environ: Mapping[str, str], quick: bool, mode: str, mirrors: list[str], layout: str,
             docker_host: str | None) -> dict[str, object]:
    from build.release.driver import run_release
    from build.release.modes import parse_mode
    from build.release.plan import ReleaseRequest

    # The images step already ran: don't pull twice.
    result = run_release(tree, environ, ReleaseRequest(mode=parse_mode(mode), quick=quick, mirrors=tuple(mirrors),
                                                       layout=layout, skip_images=True, docker_host=docker_host))
    return {"mode": mode, "tarballs": result.tarballs, "log": str(result.log), "report": str(result.report)}


def _own_dir(tree_root: Path | None, path: Path) -> bool:
    """The default place (_output/ci of the tree) is kbuild's to create; a directory the user named is not."""
    return tree_root is not None and Path(os.path.abspath(path)).parent == Path(os.path.abspath(tree_root)) / \
        "_output" / "ci"


def check_targets(tree: KubeTree, *paths: Path) -> None:
    """Before any step: no symlink out of _output on the way, and a user-named path's directory exists."""
    for path, flag, example in zip(paths, ("--report", "--junit"), ("report.json", "junit.xml"), strict=False):
        check_inside(tree.root, path)
        if not _own_dir(tree.root, path):
            output_target(path, flag, example)


def write_report(path: Path, steps: list[Step], code: int, *, root: Path | None = None) -> None:
    """The JSON report, written whole or not at all; credentials in any URL it quotes become ***."""
    body = redact_data({"exit_code": code, "steps": [asdict(s) for s in steps]})
    write_file(path, json.dumps(body, indent=2, default=str) + "\n", step="the ci report", root=root,
               flag=None if _own_dir(root, path) else "--report", make_parent=_own_dir(root, path))


def write_junit(path: Path, steps: list[Step], *, root: Path | None = None) -> None:
    """JUnit XML: one <testcase> per step, <failure> or <skipped> where it applies (credentials as ***)."""
    failures = sum(s.status == "failed" for s in steps)
    skipped = sum(s.status == "skipped" for s in steps)
    suite = ET.Element("testsuite", name="kbuild ci", tests=str(len(steps)), failures=str(failures),
                       errors="0", skipped=str(skipped), time=f"{sum(s.seconds for s in steps):.2f}")
    for s in steps:
        case = ET.SubElement(suite, "testcase", classname="kbuild.ci", name=s.name, time=f"{s.seconds:.2f}")
        detail = redact(s.detail)
        if s.status == "failed":
            ET.SubElement(case, "failure", message=detail, type=f"exit {s.code}").text = detail
        elif s.status == "skipped":
            ET.SubElement(case, "skipped", message=detail)
    top = ET.Element("testsuites")
    top.append(suite)
    body = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    write_file(path, body, step="the JUnit file", root=root, flag=None if _own_dir(root, path) else "--junit",
               example="junit.xml", make_parent=_own_dir(root, path))

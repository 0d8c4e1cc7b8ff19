"""Build Kubernetes from source: `inv --list` shows the tasks, `inv --help TASK` their flags.

This file stays thin: parse flags, call the module that does the work, report.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from invoke.collection import Collection
from invoke.context import Context

from common.cli import as_list, info, install_hook, task

# invoke parses the config files after importing this module and before any task runs: report their
# faults (and any OSError on the way) as one line too; the project's invoke.yaml is the one beside this file.
install_hook(Path(__file__).parent)

if TYPE_CHECKING:  # for the annotations only: the tasks import workspace and images lazily
    from images import driver as images_driver
    from workspace.tree import KubeTree

HERE = Path(__file__).resolve().parent
KUBE_ROOT_HELP = ("the Kubernetes tree (default: $KUBE_ROOT, then kube.root in invoke.yaml (relative to that file), "
                  "then the current directory or its nearest parent that is a tree, then ./kubernetes)")
REMOTE_CACHE_HELP = ("share Go's build cache through oci://HOST[:PORT]/REPO (a registry) or s3://BUCKET/PREFIX "
                     "(S3; AWS_ENDPOINT_URL for others) (default $KBUILD_REMOTE_CACHE, then cache.remote in "
                     "invoke.yaml); a store that fails is a miss, never a failed build")
REMOTE_MODE_HELP = ("read (pull-request jobs) or readwrite (main-branch jobs; the default): whether this build "
                    "uploads what it compiles (default $KBUILD_REMOTE_CACHE_MODE, then cache.mode)")


def _remote_env(c: Context, url: str, mode: str, release_mode: str | None = None) -> dict[str, str]:
    """os.environ with the remote cache setting (flag, env, invoke.yaml) checked and passed down to the builds;
    for a release built inside kube-cross (script, direct), one line saying it is not used there."""
    from cache.config import ENV_MODE, ENV_URL, overlay, resolve
    from cache.env import release_note

    env = {k: v for k, v in os.environ.items() if k not in (ENV_URL, ENV_MODE)}
    env.update(overlay(resolve(url, mode, os.environ, c.config.get("cache", {}) or {})))
    from build.release.modes import Mode

    known = Mode.lookup(release_mode) if release_mode else None  # an unknown word fails later, with the fix
    note = release_note(env, known) if known is not None else None
    if note:
        info(note)
    return env


def _root(c: Context, kube_root: str | None) -> Path:
    """Where the tree is: --kube-root, $KUBE_ROOT, kube.root (relative to the file that sets it), the current
    directory or its nearest parent that is a tree, ./kubernetes."""
    from common.config import setting_dir
    from workspace.tree import resolve_root

    config_root = c.config.get("kube", {}).get("root")
    where = setting_dir(HERE, sys.argv, os.environ, "kube", "root", config_root) if config_root else None
    return resolve_root(kube_root, os.environ, config_root, config_dir=where)


def _tree(c: Context, kube_root: str | None) -> KubeTree:
    from workspace.tree import load_tree

    return load_tree(_root(c, kube_root))


@task(help={
    "ref": "the tag to get, e.g. v1.20.2 (required)",
    "url": "repository to fetch from: an https, http, ssh, git or file:// URL, or a local path (default: the "
           "public Kubernetes repository); a stall of $KBUILD_STALL_SECONDS (default 60) ends the fetch",
    "dest": "directory to clone into (default: the resolved kube root, i.e. $KUBE_ROOT or ./kubernetes)",
    "full": "fetch the whole history instead of just the tag's commit",
})
def source(c: Context, ref: str = "", url: str = "", dest: str = "", full: bool = False) -> None:
    """Get a Kubernetes tree at a tag (clone, or fetch into an existing clone)."""
    from common.errors import UsageError
    from workspace.source import DEFAULT_URL, fetch_source

    if not ref:
        raise UsageError("--ref is required, e.g. --ref v1.20.2")
    target = Path(dest).expanduser() if dest else _root(c, None)
    commit = fetch_source(ref, url or c.config.get("kube", {}).get("url") or DEFAULT_URL, target, info,
                          depth=None if full else 1)
    print(f"{target.resolve()} at {ref} ({commit})")


@task(help={
    "kube_root": KUBE_ROOT_HELP,
    "env": "print `export` lines for the era's Go environment instead (for eval \"$(inv workspace --env)\")",
})
def workspace(c: Context, kube_root: str | None = None, env: bool = False) -> None:
    """Make _output/local/go/{src,pkg,bin} and the src/k8s.io/kubernetes link, as the tree's era needs."""
    from workspace.layout import ensure_workspace, export_lines, plan_layout

    tree = _tree(c, kube_root)
    layout = plan_layout(tree, os.environ)
    if env:
        print("\n".join(export_lines(layout)))
        return
    actions = ensure_workspace(layout)
    for action in actions:
        info(f"{action.kind:7} {action.path}{'  ' + action.detail if action.detail else ''}")
    if layout.link is None:
        print(f"{tree.root}: {tree.era.value} era, builds from the tree itself (no GOPATH link)")
    else:
        state = "made" if actions else "already in place"
        print(f"{tree.root}: {tree.era.value} era, workspace {state}: {layout.link} -> {tree.root}")


@task(help={
    "kube_root": KUBE_ROOT_HELP,
    "json": "print JSON (keys as in the binaries' --version=raw)",
    "file": "also write the five KUBE_GIT_* lines to this file (a KUBE_GIT_VERSION_FILE)",
})
def version(c: Context, kube_root: str | None = None, json: bool = False, file: str = "") -> None:
    """Print the version stamp hack/lib/version.sh would compute for the tree."""
    from build.version import compute
    from common.errors import file_op

    tree = _tree(c, kube_root)
    stamp = compute(tree.root, os.environ)
    if file:
        with file_op("write"):
            Path(file).write_text("\n".join(stamp.shell_lines()) + "\n")
    if json:
        print(stamp.as_json())
    else:
        print("\n".join([*stamp.shell_lines(), f"KUBE_BUILD_DATE='{stamp.build_date}'"]))


@task(iterable=["what", "platform", "group"], help={
    "kube_root": KUBE_ROOT_HELP,
    "what": "a package directory to build, e.g. cmd/kube-apiserver (repeatable; *.test names build tests); "
            "none: the tree's KUBE_ALL_TARGETS, as `make` with no WHAT",
    "group": "one of golang.sh's lists: server, node, client, test or test-server (repeatable)",
    "platform": "os/arch to build for, e.g. linux/arm64 (repeatable; default $KUBE_BUILD_PLATFORMS, else the host)",
    "debug": "debug build: -gcflags=all=-N -l and symbols kept (like DBG=1)",
    "dry_run": "print the go commands and environment, build nothing",
    "force": "rebuild even when the binaries are up to date (same go, flags, stamps and tree files)",
    "hyperkube_links": "with --what=cmd/hyperkube (trees up to v1.18): link each server name the tree's "
                       "hyperkube knows (kube-apiserver, kubelet, ...) to the binary",
    "remote_cache": REMOTE_CACHE_HELP,
    "remote_cache_mode": REMOTE_MODE_HELP,
    "json": "print the result as JSON on stdout (tree, version, each binary: platform, path, size, sha256, "
            "built or up to date); the progress lines stay on stderr",
})
def build(c: Context, kube_root: str | None = None, what: list[str] | None = None,
          platform: list[str] | None = None, debug: bool = False, dry_run: bool = False,
          force: bool = False, hyperkube_links: bool = False, group: list[str] | None = None,
          remote_cache: str = "", remote_cache_mode: str = "", json: bool = False) -> None:
    """Build components with Kubernetes' own flags and version stamps (like make WHAT=...)."""
    from build.driver import BuildJob, build_tree

    tree = _tree(c, kube_root)
    request = BuildJob(whats=tuple(as_list(what)), platforms=tuple(as_list(platform)), groups=tuple(as_list(group)),
                           debug=debug, dry_run=dry_run, force=force, hyperkube_links=hyperkube_links,
                           json=json)
    build_tree(tree, request, _remote_env(c, remote_cache, remote_cache_mode))


@task(help={
    "era": "sample tree shape: gopath (default), modules or workspace",
    "what": "which sample command to build (default cmd/kube-apiserver)",
})
def demo(c: Context, era: str = "gopath", what: str = "cmd/kube-apiserver") -> None:
    """Workspace, version and build on the bundled sample tree, then run the binary's --version."""
    from ops.demo import run_demo

    run_demo(HERE / "_output" / "demo", era, what, os.environ)


MIRROR_HELP = ("registry (HOST[:PORT][/PATH]) to pull from instead of the canonical one; repeatable, tried in "
               "order (default: images.mirrors in invoke.yaml)")
LAYOUT_HELP = ("how a mirror names images: nested keeps the path (MIRROR/build-image/kube-cross), "
               "flat keeps the last part only (MIRROR/kube-cross)")
ONLY_HELP = "just this image (role such as kube-cross or pause, or a name); repeatable"
LOCK_FILE_HELP = "lock file path (default ./images.lock); when it exists, a differing digest is refused"
ENGINE_HELP = "engine to use (default $DOCKER_HOST, else the local socket)"


def _images_request(c: Context, *, mirror: list[str] | None = None, layout: str = "", only: list[str] | None = None,
                    force: bool = False, lock: bool = False, lock_file: str = "",
                    docker_host: str | None = None, platform: list[str] | None = None) -> images_driver.ImagesRequest:
    """The flags with images.* from invoke.yaml filled in."""
    from images.driver import ImagesRequest

    cfg = c.config.get("images", {})
    return ImagesRequest(mirrors=tuple(as_list(mirror) or as_list(cfg.get("mirrors"))),
                         layout=layout or cfg.get("layout") or "nested", only=tuple(as_list(only)), force=force,
                         lock=lock, lock_file=lock_file, docker_host=docker_host,
                         platforms=tuple(as_list(platform)))


@task(name="sync", default=True, iterable=["mirror", "only", "platform"], help={
    "kube_root": KUBE_ROOT_HELP,
    "list": "print the image set this tree's build uses (read from the tree; no engine; with --mirror, also "
            "each mirror's digests per platform); same as `inv images.list`",
    "json": "with --list: print JSON",
    "mirror": MIRROR_HELP,
    "layout": LAYOUT_HELP,
    "only": ONLY_HELP,
    "force": "pull again even when the canonical name is present",
    "save": "write the whole image set to this tar file (for machines with no registry at all); "
            "same as `inv images.save`",
    "load": "load a tar written by --save into the engine, then report the set; same as `inv images.load`",
    "lock": "write the resolved names and their digests to the lock file",
    "lock_file": LOCK_FILE_HELP,
    "env": "print the environment a release build needs to use these images offline; same as `inv images.env`",
    "docker_host": ENGINE_HELP,
    "platform": "os/arch (repeatable): pull each image's variant for it by digest from its source's index and "
                "check the image says that platform; one tag holds one variant, so the last platform stays tagged",
})
def images_sync(c: Context, kube_root: str | None = None, list: bool = False, json: bool = False,
                mirror: list[str] | None = None, layout: str = "", only: list[str] | None = None,
                force: bool = False, save: str = "", load: str = "", lock: bool = False, lock_file: str = "",
                env: bool = False, docker_host: str | None = None, platform: list[str] | None = None) -> None:
    """Make the tree's build images present under the names the build uses (pull, or mirror and retag)."""
    from common.errors import UsageError
    from images import driver

    if save and load:
        raise UsageError("--save and --load go in separate runs")
    req = _images_request(c, mirror=mirror, layout=layout, only=only, force=force, lock=lock, lock_file=lock_file,
                          docker_host=docker_host, platform=platform)
    tree = _tree(c, kube_root)
    if list:  # only the mirrors named here are asked (as `inv images.list`)
        from dataclasses import replace

        driver.list_images(tree, os.environ, replace(req, mirrors=tuple(as_list(mirror))), json_output=json)
    elif env:
        driver.print_env(tree, os.environ, req)
    elif load:
        driver.load_images(tree, os.environ, req, load)
    elif save:
        driver.save_images(tree, os.environ, req, save)
    else:
        driver.sync_images(tree, os.environ, req)


@task(name="list", iterable=["only", "mirror"], help={
    "kube_root": KUBE_ROOT_HELP,
    "json": "print JSON",
    "only": ONLY_HELP,
    "mirror": "also ask this mirror (HOST[:PORT][/PATH]) what it holds for each image: its digest and, for a "
              "multi-platform index, each platform's digest; repeatable",
    "layout": LAYOUT_HELP,
})
def images_list(c: Context, kube_root: str | None = None, json: bool = False, only: list[str] | None = None,
                mirror: list[str] | None = None, layout: str = "") -> None:
    """Print the image set this tree's build uses (read from the tree; no engine; the network only with --mirror)."""
    from dataclasses import replace

    from images.driver import list_images

    # Only mirrors named here are asked: a plain list stays offline even with images.mirrors configured.
    req = replace(_images_request(c, only=only, mirror=mirror, layout=layout), mirrors=tuple(as_list(mirror)))
    list_images(_tree(c, kube_root), os.environ, req, json_output=json)


@task(name="env", iterable=["only"], help={
    "kube_root": KUBE_ROOT_HELP,
    "only": ONLY_HELP,
})
def images_env(c: Context, kube_root: str | None = None, only: list[str] | None = None) -> None:
    """Print the `export` lines a release build needs to use these images offline."""
    from images.driver import print_env

    print_env(_tree(c, kube_root), os.environ, _images_request(c, only=only))


@task(name="save", positional=["file"], iterable=["only"], help={
    "file": "the tar file to write (also the first argument); a pipe or /dev/stdout is written directly",
    "kube_root": KUBE_ROOT_HELP,
    "only": ONLY_HELP,
    "docker_host": ENGINE_HELP,
})
def images_save(c: Context, file: str | None = None, kube_root: str | None = None, only: list[str] | None = None,
                docker_host: str | None = None) -> None:
    """Write the image set (every image present in the engine) to one tar file, for machines with no registry."""
    from common.errors import UsageError
    from images.driver import save_images

    if not file:
        raise UsageError("give the tar file to write: inv images.save FILE")
    save_images(_tree(c, kube_root), os.environ, _images_request(c, only=only, docker_host=docker_host), file,
                "--file")


@task(name="load", positional=["file"], iterable=["only"], help={
    "file": "the tar file to load, written by `inv images.save` (also the first argument)",
    "kube_root": KUBE_ROOT_HELP,
    "only": ONLY_HELP,
    "lock": "then write the names and their digests to the lock file",
    "lock_file": LOCK_FILE_HELP,
    "docker_host": ENGINE_HELP,
})
def images_load(c: Context, file: str | None = None, kube_root: str | None = None, only: list[str] | None = None,
                lock: bool = False, lock_file: str = "", docker_host: str | None = None) -> None:
    """Load a tar written by `inv images.save` into the engine, then report the set (no pulls)."""
    from common.errors import UsageError
    from images.driver import load_images

    if not file:
        raise UsageError("give the tar file to load: inv images.load FILE")
    req = _images_request(c, only=only, lock=lock, lock_file=lock_file, docker_host=docker_host)
    load_images(_tree(c, kube_root), os.environ, req, file, "--file")


MODE_HELP = ("script: the tree's build/release.sh; direct: kube-cross run directly with the tree mounted "
             "(no rsync, no port); native: kbuild's builds on this host + the tree's packaging "
             "(default: release.mode in invoke.yaml, else script)")


ENGINES_HELP = ("engine to build on (repeatable; tcp://HOST:PORT, ssh://USER@HOST, unix:///PATH): --mode direct "
                "spreads the platforms over them, one per engine at a time, and packages here "
                "(default: release.engines in invoke.yaml)")


@task(iterable=["platform", "mirror", "push", "engine"], help={
    "kube_root": KUBE_ROOT_HELP,
    "mode": MODE_HELP,
    "quick": "like `make quick-release`: KUBE_RELEASE_RUN_TESTS=n KUBE_FASTBUILD=true",
    "platform": "os/arch to build (repeatable): sets KUBE_BUILD_PLATFORMS",
    "images_only": "like `make quick-release-images`: only the server images (_output/release-images), "
                   "loaded into the engine under release.sh's tags",
    "push": "registry (HOST[:PORT][/PATH]) to push the server images to, same path and tag (repeatable)",
    "conformance": "also build the conformance image (KUBE_BUILD_CONFORMANCE=y; it pulls its base image)",
    "mirror": "registry to pull the build's images from and retag (repeatable; as for `inv images`)",
    "layout": "mirror layout: nested or flat (as for `inv images`)",
    "skip_images": "don't pull or retag images first (they must already be present)",
    "docker_host": "engine to use (default $DOCKER_HOST). script mode works with a remote engine (release.sh "
                   "syncs the tree over rsync) and native packages through one; direct needs a local engine "
                   "(or --engine)",
    "report": "where to write the JSON report (default _output/release-tars/release-report.json)",
    "engine": ENGINES_HELP,
    "remote_cache": REMOTE_CACHE_HELP + " (--mode native; script and direct build inside kube-cross)",
    "remote_cache_mode": REMOTE_MODE_HELP,
    "json": "print the report as JSON on stdout (the scripts' output goes to stderr)",
})
def release(c: Context, kube_root: str | None = None, mode: str = "", quick: bool = False,
            platform: list[str] | None = None, images_only: bool = False, push: list[str] | None = None,
            conformance: bool = False, mirror: list[str] | None = None, layout: str = "",
            skip_images: bool = False, docker_host: str | None = None, report: str = "", remote_cache: str = "",
            remote_cache_mode: str = "", engine: list[str] | None = None, json: bool = False) -> None:
    """Release tarballs (and server images) by the tree's own scripts, with or without a build container."""
    from build.release.driver import run_release
    from build.release.modes import parse_mode
    from build.release.plan import ReleaseRequest

    cfg = c.config.get("images", {})
    chosen = _mode(c, mode)
    environ = _remote_env(c, remote_cache, remote_cache_mode, chosen)
    tree = _tree(c, kube_root)
    request = ReleaseRequest(mode=parse_mode(chosen), quick=quick, platforms=tuple(as_list(platform)),
                             mirrors=tuple(as_list(mirror) or as_list(cfg.get("mirrors"))),
                             layout=layout or cfg.get("layout") or "nested", skip_images=skip_images,
                             docker_host=docker_host, report_path=Path(report) if report else None,
                             images_only=images_only, push=tuple(as_list(push)), conformance=conformance,
                             engines=_engines(c, engine, chosen), json=json)
    run_release(tree, environ, request)


def _engines(c: Context, flag: list[str] | None, chosen: str) -> tuple[str, ...]:
    """--engine, else (for direct mode, the only one that spreads its build) release.engines in invoke.yaml."""
    from build.release.modes import Mode

    if as_list(flag):
        return tuple(as_list(flag))
    configured = (c.config.get("release") or {}).get("engines")
    return tuple(as_list(configured)) if Mode.lookup(chosen) is Mode.DIRECT else ()


def _mode(c: Context, flag: str) -> str:
    """The --mode word, else release.mode in invoke.yaml, else script; `parse_mode` (or the step that
    uses it) turns it into a Mode, so `inv ci` without --release never trips on it."""
    from common.errors import UsageError

    value = flag or (c.config.get("release", {}) or {}).get("mode") or "script"
    if not isinstance(value, str):
        raise UsageError(f"release.mode in invoke.yaml must be a string, not {value!r}")
    return value


@task(name="ci", iterable=["what", "mirror"], help={
    "kube_root": KUBE_ROOT_HELP,
    "what": "targets to build (repeatable; default: the tree's server targets)",
    "release": "build release tarballs (see --mode) instead of per-component builds",
    "mode": "with --release: " + MODE_HELP,
    "quick": "with --release: like `make quick-release`",
    "mirror": "registry to pull the build's images from and retag (repeatable)",
    "layout": "mirror layout: nested or flat",
    "skip_images": "skip the images step",
    "docker_host": "engine to use (default $DOCKER_HOST)",
    "report": "JSON report path (default _output/ci/report.json in the tree)",
    "junit": "JUnit XML path, one test case per step (default _output/ci/junit.xml in the tree)",
    "remote_cache": REMOTE_CACHE_HELP,
    "remote_cache_mode": REMOTE_MODE_HELP,
})
def ci(c: Context, kube_root: str | None = None, what: list[str] | None = None, release: bool = False,
       mode: str = "", quick: bool = False, mirror: list[str] | None = None, layout: str = "",
       skip_images: bool = False, docker_host: str | None = None, report: str = "", junit: str = "",
       remote_cache: str = "", remote_cache_mode: str = "") -> None:
    """The CI pipeline step: doctor → workspace → images → build or release, with JSON and JUnit reports."""
    from invoke.exceptions import Exit

    from ops.pipeline import PipelineRequest, run_pipeline

    tree = _tree(c, kube_root)
    cfg = c.config.get("images", {})
    out = tree.root / "_output" / "ci"
    environ = _remote_env(c, remote_cache, remote_cache_mode, _mode(c, mode) if release else None)
    req = PipelineRequest(report_path=Path(report) if report else out / "report.json",
                          junit_path=Path(junit) if junit else out / "junit.xml", whats=tuple(as_list(what)),
                          release=release, quick=quick, mode=_mode(c, mode),
                          mirrors=tuple(as_list(mirror) or as_list(cfg.get("mirrors"))),
                          layout=layout or cfg.get("layout") or "nested", skip_images=skip_images,
                          docker_host=docker_host)
    code = run_pipeline(tree, environ, req)
    if code:
        raise Exit(code=code)


@task(help={
    "reference": "the release to compare against: a _output/release-tars directory (e.g. of --mode script)",
    "candidate": "the release to check: another _output/release-tars directory",
    "json": "print the comparison as JSON",
    "no_run": "don't run the binaries' --version (compare names, modes and image tags only)",
})
def compare(c: Context, reference: str = "", candidate: str = "", json: bool = False, no_run: bool = False) -> None:
    """Do two releases match: tarball names, members and modes, binaries' --version stamps, image tags."""
    from invoke.exceptions import Exit

    from build.release.compare import main

    argv = [reference, candidate] + (["--json"] if json else []) + (["--no-run"] if no_run else [])
    if not reference or not candidate:
        from common.errors import UsageError

        raise UsageError("give --reference DIR and --candidate DIR (each a _output/release-tars directory)")
    code = main(argv)
    if code:
        raise Exit(code=code)


@task(help={
    "kube_root": KUBE_ROOT_HELP,
    "what": "the apiserver package to prove (default cmd/kube-apiserver); built first unless up to date",
    "keep": "keep the work directory (_output/smoke/...) with the logs, certs and etcd data",
})
def smoke(c: Context, kube_root: str | None = None, what: str = "cmd/kube-apiserver", keep: bool = False) -> None:
    """Boot the built kube-apiserver against a real etcd on loopback and check version and a ConfigMap."""
    from ops.smoke import smoke as run

    result = run(_tree(c, kube_root), what, os.environ, info, keep=keep)
    for check, value in result.checks:
        print(f"ok  {check}: {value}")
    for label, seconds in result.timings.items():
        print(f"    {label}: {seconds:.1f}s")


@task(iterable=["task", "mirror", "engine"], help={
    "kube_root": KUBE_ROOT_HELP,
    "task": "the tasks to check for (repeatable; build, images, release, smoke, ci; default build)",
    "engine": "an engine a release builds on (repeatable, as for `inv release --engine`): reachable, API version, "
              "free disk, memory, architecture (default: release.engines in invoke.yaml)",
    "mirror": "mirror registry to check (repeatable; default images.mirrors in invoke.yaml)",
    "docker_host": "engine to check (default $DOCKER_HOST)",
    "remote_cache": "the shared build cache to check (as for `inv build --remote-cache`): reachable, read/write, "
                    "latency",
    "remote_cache_mode": REMOTE_MODE_HELP,
    "json": "print the checks as JSON (name, status, detail, fix, needed_by, and whether the tasks can run)",
})
def doctor(c: Context, kube_root: str | None = None, task: list[str] | None = None,
           mirror: list[str] | None = None, docker_host: str | None = None, remote_cache: str = "",
           remote_cache_mode: str = "", engine: list[str] | None = None, json: bool = False) -> None:
    """One table of what the tasks need and whether it is there, with the fix; exit 0 when the given tasks can run."""
    from invoke.exceptions import Exit

    from ops.doctor import doctor as run

    root = _root(c, kube_root)
    mirrors = as_list(mirror) or as_list(c.config.get("images", {}).get("mirrors"))
    environ = _remote_env(c, remote_cache, remote_cache_mode)
    engines = as_list(engine) or as_list((c.config.get("release", {}) or {}).get("engines"))
    if not run(root, environ, as_list(task) or ["build"], mirrors, docker_host, engines=engines, as_json=json):
        raise Exit(code=1)


KIT_SAVE_HELP = ("write the kit for the tree to this file: its source (a git bundle of HEAD and its tags, or its "
                 "files without _output), the release mode's images, the Go toolchain, kbuild and its wheels")
KIT_LOAD_HELP = ("unpack this kit under --dest: every sha256 verified first; the tree, Go, a venv with kbuild, "
                 "the images loaded into the engine (ids checked)")
KIT_DEST_HELP = "the directory to unpack into (new or empty; left as it was on any failure)"
KIT_LIST_HELP = "print this kit's manifest (parts, sizes, sha256s, version stamp, images) without unpacking"
KIT_MODE_HELP = ("the release mode whose images go in (script, direct or native; default: release.mode in "
                 "invoke.yaml, else script)")
KIT_ENGINE_HELP = "engine to save the images from / load them into (default $DOCKER_HOST)"


@task(name="choose", default=True, help={
    "kube_root": KUBE_ROOT_HELP,
    "save": KIT_SAVE_HELP + "; same as `inv kit.save`",
    "load": KIT_LOAD_HELP + "; same as `inv kit.load`",
    "dest": "with --load: " + KIT_DEST_HELP,
    "list": KIT_LIST_HELP + "; same as `inv kit.list`",
    "json": "with --list: print the manifest as JSON",
    "mode": "with --save: " + KIT_MODE_HELP,
    "no_images": "with --save: leave the images out; with --load: don't load them (kept under DIR/images)",
    "docker_host": KIT_ENGINE_HELP,
})
def kit_choose(c: Context, kube_root: str | None = None, save: str = "", load: str = "", dest: str = "",
               list: str = "", json: bool = False, mode: str = "", no_images: bool = False,
               docker_host: str | None = None) -> None:
    """The one of save / load / list that --save / --load / --list picks (what plain `inv kit` runs)."""
    from common.errors import UsageError

    chosen = [flag for flag, value in (("--save", save), ("--load", load), ("--list", list)) if value]
    if len(chosen) != 1:
        raise UsageError("give one of --save FILE, --load FILE --dest DIR or --list FILE"
                         + (f" (not {' and '.join(chosen)})" if chosen else ""))
    if list:
        _kit_list(list, json)
    elif load:
        if not dest:
            raise UsageError("--load needs --dest DIR (a new or empty directory)")
        _kit_load(load, dest, no_images, docker_host)
    else:
        _kit_save(c, kube_root, save, mode, no_images, docker_host)


@task(name="save", positional=["file"], help={
    "file": KIT_SAVE_HELP + " (also the first argument)",
    "kube_root": KUBE_ROOT_HELP,
    "mode": KIT_MODE_HELP,
    "no_images": "leave the images out",
    "docker_host": KIT_ENGINE_HELP,
})
def kit_save(c: Context, file: str | None = None, kube_root: str | None = None, mode: str = "", no_images: bool = False,
             docker_host: str | None = None) -> None:
    """Write an offline kit: one file with everything a build needs on a machine with no network at all."""
    from common.errors import UsageError

    if not file:
        raise UsageError("give the kit file to write: inv kit.save FILE")
    _kit_save(c, kube_root, file, mode, no_images, docker_host)


@task(name="load", positional=["file"], help={
    "file": KIT_LOAD_HELP + " (also the first argument)",
    "dest": KIT_DEST_HELP + " (required)",
    "no_images": "don't load the images into the engine (they are kept under DIR/images)",
    "docker_host": KIT_ENGINE_HELP,
})
def kit_load(c: Context, file: str | None = None, dest: str = "", no_images: bool = False,
             docker_host: str | None = None) -> None:
    """Unpack an offline kit (written by `inv kit.save`) into a new directory, ready to build."""
    from common.errors import UsageError

    if not file or not dest:
        raise UsageError("give the kit and where to unpack it: inv kit.load FILE --dest DIR (a new or empty "
                         "directory)")
    _kit_load(file, dest, no_images, docker_host)


@task(name="list", positional=["file"], help={
    "file": KIT_LIST_HELP + " (also the first argument)",
    "json": "print the manifest as JSON",
})
def kit_list(c: Context, file: str | None = None, json: bool = False) -> None:
    """Print an offline kit's manifest (parts, sizes, sha256s, version stamp, images) without unpacking."""
    from common.errors import UsageError

    if not file:
        raise UsageError("give the kit file to describe: inv kit.list FILE")
    _kit_list(file, json)


def _kit_list(file: str, json: bool) -> None:
    from kit.load import describe, list_kit

    manifest = list_kit(Path(file))
    print(manifest.to_json() if json else "\n".join(describe(manifest)), end="" if json else "\n")


def _kit_load(file: str, dest: str, no_images: bool, docker_host: str | None) -> None:
    from kit.load import after_load, load_kit
    from kit.progress import make_reporter

    report = make_reporter()
    try:
        done = load_kit(Path(file), Path(dest), os.environ, report, with_images=not no_images,
                        docker_host=docker_host)
    finally:
        report.close()
    print("\n".join(after_load(done)))


def _kit_save(c: Context, kube_root: str | None, file: str, mode: str, no_images: bool,
              docker_host: str | None) -> None:
    from common.units import size
    from kit.progress import make_reporter
    from kit.save import save_kit

    tree = _tree(c, kube_root)
    report = make_reporter()
    try:
        manifest = save_kit(tree, os.environ, Path(file), report, mode=_mode(c, mode), with_images=not no_images,
                            docker_host=docker_host)
    finally:
        report.close()
    print(f"saved {file}: {len(manifest.parts)} parts, {size(Path(file).stat().st_size)}, "
          f"{manifest.stamp.get('gitVersion') or 'no version'}, {len(manifest.images)} images")


@task(help={
    "kube_root": KUBE_ROOT_HELP,
    "all": "remove all of _output (release tarballs, logs, dockerized outputs), not just _output/local",
})
def clean(c: Context, kube_root: str | None = None, all: bool = False) -> None:
    """Remove build outputs (_output/local, or all of _output); never anything outside _output."""
    from workspace.clean import clean as run

    tree = _tree(c, kube_root)
    removed = run(tree.root, all)
    print("\n".join(f"removed {p}" for p in removed) or "nothing to remove")


images = Collection("images", images_sync, images_list, images_env, images_save, images_load)
kit = Collection("kit", kit_choose, kit_save, kit_load, kit_list)
ns = Collection(source, workspace, version, build, demo, images, release, compare, ci, smoke, doctor, clean,
                kit)
ns.configure({"kube": {"root": None, "url": None}, "images": {"mirrors": [], "layout": "nested"},
              "release": {"mode": "script", "engines": []}, "cache": {"remote": None, "mode": "readwrite"}})

if __name__ == "__main__":  # pragma: no cover
    sys.exit("run tasks with `inv`, e.g. `inv --list`")

"""Executing a build plan against the real go toolchain: the thin side-effect layer."""

from __future__ import annotations

import concurrent.futures
import functools
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from build import codegen, uptodate
from build.golang import GoToolchain
from build.plan import BuildPlan, GoCommand
from build.progress import Estimate, GoOutput, History
from cache.env import Session
from cache.env import start as remote_cache
from common.errors import CommandFailed, ToolError, TreeError
from common.proc import merged_env, prepend_path, run
from common.progress import Heartbeat, progress_seconds
from common.system import sha256_of
from common.trace import span
from workspace.layout import Layout, check_writable, ensure_dir, ensure_workspace
from workspace.tree import KubeTree

T = TypeVar("T")


@dataclass(frozen=True)
class Built:
    """A binary in place, with what the build report shows."""

    platform: str
    path: Path
    size: int
    sha256: str
    fresh: bool = False   # True when it was up to date and not rebuilt


def command_env(command_overlay: Mapping[str, str | None], toolchain: GoToolchain,
                environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment, the command's overlay, and go's bin dir first on PATH."""
    env = merged_env(environ, command_overlay)
    env.pop("GOBIN", None)  # Kubernetes unsets it: binaries go where we say
    prepend_path(env, toolchain.bin_dir)
    return env


def generate_missing(tree: KubeTree, plan: BuildPlan, toolchain: GoToolchain, environ: Mapping[str, str],
                     say: Callable[[str], None]) -> list[str]:
    """Run the tree's own make target for each generated file a target needs and lacks."""
    candidates = codegen.missing(tree)
    if not candidates or not plan.commands:
        return []
    first = plan.commands[0]
    packages = [a for a in first.argv if a.startswith("k8s.io/") or a.startswith("./")]
    packages += [t.package(tree.era.module_mode) for c in plan.commands[1:] for t in c.targets]
    env = command_env({**first.env, "GOOS": None, "GOARCH": None, "CGO_ENABLED": "0", "PWD": str(first.cwd)},
                      toolchain, environ)
    # `*.test` targets also compile their _test.go files: -test lists what those import too
    # (e2e.test needs test/e2e/generated only through e2e_test.go).
    tests = ["-test"] if any(c.argv[1] == "test" for c in plan.commands) else []
    listed = run([str(toolchain.go), "list", "-e", "-deps", *tests, "-f", "{{.ImportPath}}",
                  "-tags", "selinux,notest", *dict.fromkeys(packages)],
                 cwd=first.cwd, env=env, capture=True, what="go list -deps")
    deps = {line.split(" ", 1)[0] for line in listed.stdout.splitlines() if line}  # "pkg [pkg.test]" forms
    wanted = codegen.needed(candidates, deps, tree.era.module_mode)
    done = []
    for gen in wanted:
        for tool in codegen.tools_needed(tree):
            if not shutil.which(tool, path=env.get("PATH")):
                raise ToolError(f"{tool} is needed to generate {gen.path} (`make {gen.make_target}`)",
                                hint=f"apt-get install {tool}")
        say(f"generating {gen.path} (missing; `make {gen.make_target}`)")
        start = time.monotonic()
        make_env = merged_env(environ, {"GOFLAGS": environ.get("GOFLAGS"), "GOBIN": None})
        prepend_path(make_env, toolchain.bin_dir)
        argv = codegen.make_command(tree, gen.make_target)
        with Heartbeat(f"make {gen.make_target}"):
            run(argv, cwd=tree.root, env=make_env, what=" ".join(argv),
                hint="run it by hand in the tree to see the whole output")
        if not (tree.root / gen.path).exists():
            raise ToolError(f"make {gen.make_target} ran but {gen.path} is still missing")
        say(f"generated {gen.path} in {time.monotonic() - start:.0f}s")
        done.append(gen.path)
    return done


def check_cross_compilers(plan: BuildPlan, environ: Mapping[str, str]) -> None:
    """cgo cross builds need the platform's C compiler: say so before go does, cryptically."""
    for cmd in plan.commands:
        cc = cmd.env.get("CC")
        if cc and not cmd.static and not shutil.which(cc, path=environ.get("PATH")):
            names = ", ".join(t.name for t in cmd.targets)
            raise ToolError(f"{names} for {cmd.platform} is built with cgo and needs the C cross compiler {cc}",
                            hint=f"install it (Debian: gcc-{cc.rsplit('-gcc', 1)[0]}) or set the KUBE_*_CC "
                                 "variable; or add the binary to KUBE_STATIC_OVERRIDES")


def recorded_entries(plan: BuildPlan, layout: Layout, toolchain: GoToolchain, environ: Mapping[str, str],
                     fingerprint: str) -> list[dict[str, uptodate.StampEntry] | None]:
    """Per command, the stamps of its binaries if they are in place with these inputs' key, else None."""
    out = []
    for cmd in plan.commands:
        names = [final.name for _, final in cmd.outputs()]
        key = _command_key(cmd, toolchain, environ, fingerprint)
        out.append(uptodate.fresh(uptodate.stamp_file(layout.output, cmd.platform), cmd.outdir, names, key))
    return out


def progress_key(cmd: GoCommand) -> str:
    return f"{cmd.platform} {cmd.argv[1]} {' '.join(t.rel for t in cmd.targets)}"


def run_go(argv: list[str], cmd: GoCommand, env: Mapping[str, str], *, history: History | None,
           say: Callable[[str], None] | None, remote: Session | None = None) -> int:
    """Run ``cmd`` (as ``argv``) with ``-v``: its package lines drive the progress display, all else passes through."""
    cwd, key = cmd.cwd, progress_key(cmd)
    label = f"{' '.join(t.name for t in cmd.targets)} {cmd.platform}"
    what = f"go {cmd.argv[1]} of {', '.join(t.rel for t in cmd.targets)} for {cmd.platform}"
    estimate = history.get(key) if history else None
    verbose = [*argv[:2], "-v", *argv[2:]]
    try:
        proc = subprocess.Popen(verbose, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=None,
                                stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1)
    except FileNotFoundError as exc:
        raise ToolError(f"{argv[0]}: not found") from exc
    try:
        with GoOutput(label, estimate, say=say, hits=remote.hits if remote else None) as out:
            assert proc.stderr is not None
            for line in proc.stderr:
                out.feed(line)
            code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if code != 0:
        raise CommandFailed(argv, code, what=what)
    if history is not None and out.packages:
        history.put(key, Estimate(out.packages, out.elapsed))
    return out.packages


def run_command(cmd: GoCommand, toolchain: GoToolchain, environ: Mapping[str, str], root: Path,
                place: Callable[[list[tuple[Path, Path]]], T], *, history: History | None = None,
                say: Callable[[str], None] | None = None, remote: Session | None = None) -> T:
    """Run one go command into its staging dir; on success ``place`` moves the (staged, final) outputs into place."""
    inside = cmd.staging.resolve().parts
    if "_output" not in inside:  # never clear anything outside _output
        raise ToolError(f"refusing to stage outside _output: {cmd.staging}")
    if cmd.staging.exists():
        shutil.rmtree(cmd.staging)
    ensure_dir(cmd.staging, root)
    argv = [str(toolchain.go), *cmd.argv[1:]]
    overlay = remote.env() if remote is not None else {}  # GOCACHEPROG: never part of the up-to-date key
    try:
        # PWD as `cd` sets it: go takes its working directory from PWD when it names the same place, so
        # a build in the GOPATH link sees (and -trimpath=<link> trims) the link's paths, as under make.
        env = {**command_env(cmd.env, toolchain, environ), "PWD": str(cmd.cwd), **overlay}
        compiled = run_go(argv, cmd, env, history=history, say=say, remote=remote)
        if remote is not None:
            remote.compiled += compiled
        return place(cmd.outputs())
    finally:
        if remote is not None:
            remote.absorb()
        shutil.rmtree(cmd.staging, ignore_errors=True)


def place_and_record(pairs: list[tuple[Path, Path]], parts: Callable[[str], dict[str, object]],
                     fingerprint: Callable[[], str], stamps: Path, outdir: Path) -> dict[str, str]:
    """Rename the staged binaries into place and record them, as one step under the stamps lock.

    Two builds at once may each place their binary; the lock keeps the last one placed and the
    last one recorded the same, so a binary always matches its stamp. Returns {name: sha256}.
    """
    digests = {final.name: sha256_of(staged) for staged, final in pairs}  # rename keeps the bytes
    made_of = parts(fingerprint())
    stamp = uptodate.key_of(made_of)
    with uptodate.locked(stamps):
        for staged, final in pairs:
            os.replace(staged, final)
        uptodate.record(stamps, outdir, {name: (stamp, sha) for name, sha in digests.items()}, made_of)
    return digests


def link_host_bin(layout: Layout, host: str) -> None:
    """`_output/bin` → the host platform's bin dir (relative, unlike Kubernetes' absolute link)."""
    target = layout.bin_dir(host)
    if not target.is_dir():
        return
    link = layout.host_bin_link
    rel = os.path.relpath(target, link.parent)
    if link.is_symlink() and os.readlink(link) == rel:
        return
    if link.exists() and not link.is_symlink():
        return  # someone's real directory: leave it
    tmp = link.with_name(f".bin.tmp-{os.getpid()}")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(rel)
    os.replace(tmp, link)


def _command_parts(cmd: GoCommand, toolchain: GoToolchain, environ: Mapping[str, str],
                   fingerprint: str) -> dict[str, object]:
    # The staging directory name changes per run: leave it out of the key.
    argv = [a.replace(str(cmd.staging), "<staging>") for a in cmd.argv]
    return uptodate.key_parts(toolchain.version, argv, command_env(cmd.env, toolchain, environ), fingerprint)


def _command_key(cmd: GoCommand, toolchain: GoToolchain, environ: Mapping[str, str], fingerprint: str) -> str:
    return uptodate.key_of(_command_parts(cmd, toolchain, environ, fingerprint))


def _say_why(cmd: GoCommand, stamps: Path, parts: dict[str, object] | None, say: Callable[[str], None]) -> None:
    """One line per binary about to be built: why (``kubectl: GOLDFLAGS changed``; --force says so)."""
    names = [final.name for _, final in cmd.outputs()]
    why = uptodate.reasons(stamps, cmd.outdir, names, parts) if parts is not None else dict.fromkeys(names, "--force")
    for name in names:
        say(f"{name}: {why[name]}")


def _up_to_date(cmd: GoCommand, recorded: dict[str, uptodate.StampEntry], say: Callable[[str], None]) -> list[Built]:
    """Say a command's binaries are up to date and return them (nothing is written)."""
    say(f"up to date: {' '.join(t.rel for t in cmd.targets)} for {cmd.platform} (inputs unchanged; --force rebuilds)")
    out = []
    for _, final in cmd.outputs():
        out.append(Built(cmd.platform, final, final.stat().st_size, recorded[final.name]["sha256"], fresh=True))
    return out


def _generate(tree: KubeTree, plan: BuildPlan, toolchain: GoToolchain, environ: Mapping[str, str],
              say: Callable[[str], None]) -> list[str]:
    with span("code generation", "codegen"):
        return generate_missing(tree, plan, toolchain, environ, say)


def execute(tree: KubeTree, layout: Layout, plan: BuildPlan, toolchain: GoToolchain,
            environ: Mapping[str, str], say: Callable[[str], None], force: bool = False,
            link_host: bool = True) -> list[Built]:
    """Workspace, code generation, then every go command not already up to date; returns the binaries.

    On a tree that can't be written (a read-only mount of a tree built while writable), a build whose
    every binary is up to date writes nothing and succeeds; anything else is refused before it starts.
    """
    progress_seconds(environ)  # a bad KBUILD_PROGRESS_SECONDS is one line before anything is written
    try:
        check_writable(tree.root, layout.output, "write the build outputs")
    except TreeError:
        if force:
            raise
        now = recorded_entries(plan, layout, toolchain, environ, uptodate.tree_fingerprint(tree.root))
        if not all(now):
            raise
        return [b for cmd, recorded in zip(plan.commands, now, strict=True) if recorded is not None
                for b in _up_to_date(cmd, recorded, say)]
    ensure_workspace(layout)
    check_cross_compilers(plan, environ)
    if force:
        # Rebuilding anyway: the tree's fingerprint (for the new stamps) is taken while go works.
        _generate(tree, plan, toolchain, environ, say)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        walked = pool.submit(uptodate.tree_fingerprint, tree.root)
        pool.shutdown(wait=False)
        fingerprint: Callable[[], str] = walked.result
        entries: list[dict[str, uptodate.StampEntry] | None] = [None] * len(plan.commands)
    else:
        known = uptodate.tree_fingerprint(tree.root)
        entries = recorded_entries(plan, layout, toolchain, environ, known)
        # Everything up to date: nothing to generate either (a generated file a target needs was there
        # when it was built, and a missing one changes the fingerprint). Saves `go list -deps` on a no-op.
        if not all(entries) and _generate(tree, plan, toolchain, environ, say):
            known = uptodate.tree_fingerprint(tree.root)
            entries = recorded_entries(plan, layout, toolchain, environ, known)
        fingerprint = functools.partial(str, known)
    history = History(layout.output / ".kbuild" / "progress.json")
    remote = remote_cache(environ, toolchain.version, say) if not all(entries) else None  # None: not configured
    built: list[Built] = []
    for cmd, recorded in zip(plan.commands, entries, strict=True):
        ensure_dir(cmd.outdir, tree.root)
        stamps = uptodate.stamp_file(layout.output, cmd.platform)
        ensure_dir(stamps.parent, tree.root)
        if recorded is not None:
            built += _up_to_date(cmd, recorded, say)
            continue
        start = time.monotonic()
        _say_why(cmd, stamps, None if force else _command_parts(cmd, toolchain, environ, fingerprint()), say)
        say(f"building {' '.join(t.rel for t in cmd.targets)} for {cmd.platform}"
            f"{' (static)' if cmd.static else ''}")
        place = functools.partial(place_and_record, parts=functools.partial(_command_parts, cmd, toolchain, environ),
                                  fingerprint=fingerprint, stamps=stamps, outdir=cmd.outdir)
        try:
            with span(f"{' '.join(t.name for t in cmd.targets)} {cmd.platform}", "go",
                      command=f"go {cmd.argv[1]}", packages=" ".join(t.rel for t in cmd.targets)):
                digests = run_command(cmd, toolchain, environ, tree.root, place, history=history, say=say,
                                      remote=remote)
        except CommandFailed as exc:
            exc.hint = exc.hint or "the go output above says why; `inv build --dry-run` prints the exact command"
            raise
        for name, digest in digests.items():
            final = cmd.outdir / name
            built.append(Built(cmd.platform, final, final.stat().st_size, digest))
        say(f"  done in {time.monotonic() - start:.1f}s")
    if remote is not None:
        remote.finish()
    if link_host:
        link_host_bin(layout, plan.host_platform)
    return built

"""The go build plan: exactly which ``go`` commands, with which flags and environment.

Pure: given the tree's facts, the version stamp, the host platform and the
user's environment, return plain data. ``build.runner`` executes it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from build.targets import Target
from build.version import VersionInfo
from common.errors import UsageError
from workspace import shell
from workspace.layout import Layout
from workspace.targetlists import statically_linked
from workspace.tree import GO_PACKAGE, Era, KubeTree

# kube::golang::set_platform_envs: cgo cross compilers used from a linux/amd64 host.
CROSS_CC = {
    "linux/arm": ("KUBE_LINUX_ARM_CC", "arm-linux-gnueabihf-gcc"),
    "linux/arm64": ("KUBE_LINUX_ARM64_CC", "aarch64-linux-gnu-gcc"),
    "linux/ppc64le": ("KUBE_LINUX_PPC64LE_CC", "powerpc64le-linux-gnu-gcc"),
    "linux/s390x": ("KUBE_LINUX_S390X_CC", "s390x-linux-gnu-gcc"),
}
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9]+$")
BUILD_TAGS = "selinux,notest"


@dataclass(frozen=True)
class FlagStyle:
    """How the tree's build_binaries spells its flags (read from golang.sh)."""

    all_prefix: bool = False       # gcflags/asmflags/ldflags as "all=..." (newer trees)
    go_trimpath: bool = False      # `go build -trimpath` (newer trees)
    installsuffix: bool = True     # `-installsuffix static` / `-installsuffix=static` for static binaries
    joined: bool = False           # `-gcflags=VALUE` rather than `-gcflags VALUE` (newer trees)
    gcflags_always: bool = False   # -gcflags passed even when empty (the tree's build_args always have it)
    tags_expr: str = ""            # the right-hand side of build_binaries' `gotags="..."`
    grpcnotrace: str = ""          # what `${grpcnotrace}` is in a non-debug build (",grpcnotrace")
    asmflags: bool = True          # the tree passes -asmflags (not since go's own -trimpath)
    goproxy_off: bool = False      # `GOPROXY=off go install`
    knows_dbg: bool = True         # build_binaries reads DBG (v1.20 does not: DBG=1 changes nothing there)
    unsets: tuple[str, ...] = ()   # what setup_env unsets (GOBIN, GO111MODULE, GOWORK: defaults on)

    @classmethod
    def from_tree(cls, tree: KubeTree) -> FlagStyle:
        return cls.from_text(tree.golang_sh, tree.era)

    @classmethod
    def from_text(cls, text: str, era: Era) -> FlagStyle:
        code = shell.code(text)  # what bash runs: a comment naming a flag does not pass it
        if "build_binaries" not in code:
            # No build function to read: the era's usual spelling.
            return cls(all_prefix=era.module_mode, go_trimpath=era is Era.WORKSPACE, installsuffix=True,
                       asmflags=era is not Era.WORKSPACE)
        build = shell.function(text, "kube::golang::build_binaries")
        setup = shell.function(text, "kube::golang::setup_env")
        # build_binaries' tag line: gotags="selinux,notest,...$(echo "${GOFLAGS:-}" | sed ...)"
        tags = next((a.value for a in shell.assignments(text, "gotags")), "")
        grpc = next((a.value for a in shell.assignments(text, "grpcnotrace")
                     if a.value.startswith(",") and "$" not in a.value), "")
        return cls(
            all_prefix=bool(re.search(r"all=-trimpath|\"all=\$\(kube::version::ldflags|all=-N", code)),
            go_trimpath=bool(re.search(r"(?<![=\w])-trimpath(?![=\w])", code)),
            installsuffix=bool(re.search(r"-installsuffix[= ]static", code)),
            joined=bool(re.search(r"-(?:gc|ld)flags=\"\$\{go(?:gc|ld)flags", code)),
            gcflags_always=True,
            knows_dbg=bool(build and re.search(r"\$\{DBG\b", shell.code(build.body))),
            asmflags="-asmflags" in code,
            tags_expr=tags,
            grpcnotrace=grpc,
            goproxy_off=bool(re.search(r"GOPROXY=off\s+go\s+install", code)),
            unsets=tuple(dict.fromkeys(name for name in shell.unsets(setup.body if setup else "")
                                       if re.fullmatch(r"GO[A-Z0-9_]+", name))),
        )


def build_tags(style: FlagStyle, goflags: str, debug: bool) -> str:
    """The -tags value build_binaries passes, evaluated as bash would (GOFLAGS' own tags included)."""
    expr = style.tags_expr
    if expr:
        expr = expr.replace("${grpcnotrace}", "" if debug else (style.grpcnotrace or ",grpcnotrace"))
        expr = shell.echo_sed(expr, {"GOFLAGS": goflags})  # GOFLAGS' own tags, as build_binaries adds them
        if "$" not in expr and "`" not in expr:
            return expr
    # No tag line to read (or one this reader does not follow): the tree's usual tags plus GOFLAGS'.
    return ",".join(dict.fromkeys([*BUILD_TAGS.split(","), *tags_from_goflags(goflags)]))


def trimpath_field(path: str) -> str:
    """``-trimpath=<path>`` inside a -gcflags/-asmflags value. go splits those values on spaces and
    takes quotes only around a later field, so a path with spaces or quotes goes as its own field."""
    if not re.search(r"[\s'\"]", path):
        return f"-trimpath={path}"
    if "'" not in path:
        return f"-trimpath '{path}'"
    if '"' not in path:
        return f'-trimpath "{path}"'
    raise UsageError(f"the path {path!r} holds both kinds of quote: go cannot be given it in -gcflags",
                     hint="move or link the tree to a path without quotes")


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked for, beyond the targets."""

    platforms: tuple[str, ...] = ()
    debug: bool = False


@dataclass(frozen=True)
class BuildRequest:
    """Everything ``plan_build`` decides from: the tree and its layout, the stamp, what to build and how,
    the user's environment, the host platform, the staging directory's name and the local Go's version."""

    tree: KubeTree
    layout: Layout
    version: VersionInfo
    targets: Sequence[Target]
    options: BuildOptions
    environ: Mapping[str, str]
    host: str
    staging_name: str = ".partial"
    go_version: str = ""


@dataclass(frozen=True)
class GoCommand:
    """One ``go build`` (or ``go test -c``) invocation and the binaries it produces."""

    platform: str
    argv: tuple[str, ...]            # argv[0] is "go": the runner puts the real path there
    env: dict[str, str | None]       # overlay on the caller's environment (None = unset)
    cwd: Path
    outdir: Path                     # final directory of the outputs
    staging: Path                    # where go writes them first (renamed into outdir after)
    targets: tuple[Target, ...]
    static: bool

    def outputs(self) -> list[tuple[Path, Path]]:
        """(where go writes it, where it ends up) for each binary."""
        suffix = ".exe" if self.platform.startswith("windows/") and self.argv[1] != "test" else ""
        names = [f"{t.name}{suffix}" for t in self.targets]
        return [(self.staging / n, self.outdir / n) for n in names]

    def shell(self, go: str = "go") -> str:
        """A copy-pasteable rendering, for --dry-run and logs."""
        unset = "".join(f"-u {k} " for k, v in sorted(self.env.items()) if v is None)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()) if v is not None)
        return f"(cd {shlex.quote(str(self.cwd))} && env {unset}{env} {shlex.join([go, *self.argv[1:]])})"


@dataclass(frozen=True)
class BuildPlan:
    commands: tuple[GoCommand, ...]
    platforms: tuple[str, ...]
    host_platform: str
    version: VersionInfo
    notes: tuple[str, ...] = field(default_factory=tuple)


def version_packages(tree: KubeTree) -> list[str]:
    """The packages whose variables version.sh stamps with -X, read from the tree itself."""
    text = shell.code(tree.read("hack/lib/version.sh") or "")
    found: dict[str, None] = {}
    for m in re.finditer(r"-X\s+[\"']?((?:\$\{?KUBE_GO_PACKAGE\}?|[\w.-]+)/[\w./-]+?)"
                         r"\.(?:\$\{?key\}?|git[A-Z]\w*|buildDate)\b", text):
        package = m.group(1).replace("${KUBE_GO_PACKAGE}", GO_PACKAGE).replace("$KUBE_GO_PACKAGE", GO_PACKAGE)
        found.setdefault(package, None)
    if found:
        return list(found)
    # No version.sh to read: the era's usual set (a -X on a missing symbol is ignored).
    vendored = [f"{GO_PACKAGE}/vendor/k8s.io/client-go/pkg/version",
                f"{GO_PACKAGE}/vendor/k8s.io/component-base/version"]
    plain = ["k8s.io/client-go/pkg/version", "k8s.io/component-base/version"]
    if tree.era in (Era.GODEPS, Era.GOPATH):
        return [f"{GO_PACKAGE}/pkg/version", *vendored]
    return plain


def version_ldflags(packages: list[str], version: VersionInfo) -> list[str]:
    """``-X 'pkg.key=value'`` items, in version.sh's order."""
    return [f"-X '{pkg}.{key}={value}'" for key, value in version.ldflag_values() for pkg in packages]


def is_static(target: Target, statics: tuple[str, ...], environ: Mapping[str, str]) -> bool:
    """kube::golang::is_statically_linked(_library): KUBE_CGO_OVERRIDES, the tree's list, KUBE_STATIC_OVERRIDES,
    each item matched as `*/<item>` against the package path."""
    return statically_linked(f"{GO_PACKAGE}/{target.rel}", statics, environ)[0]


def resolve_platforms(tree: KubeTree, requested: tuple[str, ...], environ: Mapping[str, str],
                      host: str) -> tuple[str, ...]:
    """--platform, else KUBE_BUILD_PLATFORMS, else KUBE_FASTBUILD=true → linux/amd64, else the host."""
    platforms = list(requested) or environ.get("KUBE_BUILD_PLATFORMS", "").split()
    if not platforms and environ.get("KUBE_FASTBUILD") == "true":
        platforms = ["linux/amd64"]
    if not platforms:
        platforms = [host]
    supported = tree.supported_platforms
    for p in platforms:
        if not _PLATFORM.match(p):
            raise UsageError(f"platform {p!r}: expected os/arch, e.g. linux/arm64")
        if supported and p not in supported:
            raise UsageError(f"platform {p!r} is not one this tree supports",
                             hint="supported: " + " ".join(supported))
    return tuple(dict.fromkeys(platforms))


def platform_env(platform: str, host: str, environ: Mapping[str, str]) -> dict[str, str | None]:
    """kube::golang::set_platform_envs."""
    goos, goarch = platform.split("/")
    env: dict[str, str | None] = {"GOOS": goos, "GOARCH": goarch}
    if host == "linux/amd64" and platform in CROSS_CC:
        var, default = CROSS_CC[platform]
        env["CGO_ENABLED"] = "1"
        env["CC"] = environ.get(var) or default
    return env


def tags_from_goflags(goflags: str) -> list[str]:
    """Tags given in GOFLAGS (-tags=a,b), which build_binaries adds to its own."""
    tags: list[str] = []
    for word in goflags.split():
        if word.startswith("-tags=") or word.startswith("--tags="):
            tags += [t for t in re.split(r"[, ]", word.split("=", 1)[1]) if t]
    return tags


def compile_flags(style: FlagStyle, root: str, workdir: str, version_ld: str,
                  environ: Mapping[str, str], debug: bool) -> list[str]:
    """-trimpath/-gcflags/-asmflags/-ldflags as the tree's build_binaries spells them, to the space:
    go records -gcflags (and, without -trimpath, -ldflags) verbatim in the binary's build info."""
    user_gc = environ.get("GOGCFLAGS", "")
    user_ld = environ.get("GOLDFLAGS")
    flags: list[str] = []
    values: list[tuple[str, str]] = []
    if not (style.all_prefix or style.go_trimpath):
        # v1.20-style: GOLDFLAGS defaults to "-s -w -buildid=", trimpath of KUBE_ROOT, no all=.
        ld_base = user_ld if user_ld is not None else ("-buildid=" if debug else "-s -w -buildid=")
        trim = trimpath_field(root)
        gc = f"{user_gc} {trim}"
        if debug:  # --debug: v1.20 itself has no debug build
            gc = f"all=-N -l {gc.strip()}"
        values += [("-gcflags", gc), ("-asmflags", trim), ("-ldflags", f"{ld_base} {version_ld}")]
    else:
        ld = f"all={version_ld} {user_ld or ''}" + ("" if debug else " -s -w")
        if style.go_trimpath:
            # Workspace era: go's own -trimpath (not in a debug build), no asmflags.
            if not debug:
                flags.append("-trimpath")
            values.append(("-gcflags", f"{user_gc} all=-N -l" if debug else user_gc))
        elif debug:
            values += [("-gcflags", f"{user_gc} all=-N -l"), ("-asmflags", "")]
        else:
            # Middle era: trim the directory the build runs in (the GOPATH link).
            trim = trimpath_field(workdir)
            values += [("-gcflags", f"all={trim} {user_gc}"), ("-asmflags", f"all={trim}")]
        values.append(("-ldflags", ld))
    for name, value in values:
        if name == "-asmflags" and not style.asmflags:
            continue
        if not style.gcflags_always:
            value = value.strip()  # no build_binaries to copy: the era's flags, tidily
        if value or (style.gcflags_always and name != "-ldflags"):
            flags += spell(style, name, value)
    return flags


def spell(style: FlagStyle, name: str, value: str) -> list[str]:
    """``-name=value`` or ``-name value``, as the tree writes its build_args."""
    return [f"{name}={value}"] if style.joined else [name, value]


def toolchain_env(environ: Mapping[str, str]) -> dict[str, str | None]:
    """GOTOOLCHAIN for every go command: the user's choice, else the local Go (never a silent download)."""
    chosen = environ.get("GOTOOLCHAIN", "")
    return {"GOTOOLCHAIN": chosen if chosen and chosen != "auto" else "local"}


def pinned_go(tree: KubeTree, go_version: str, environ: Mapping[str, str]) -> str | None:
    """The Go the tree's .go-version pins, when it is not the local one kbuild builds with (and the user
    chose neither the host's Go with FORCE_HOST_GO nor a GOTOOLCHAIN)."""
    pinned = (tree.read(".go-version") or "").strip().splitlines()
    if not go_version or not pinned or environ.get("FORCE_HOST_GO"):
        return None
    chosen = environ.get("GOTOOLCHAIN", "")
    if chosen and chosen != "auto":
        return None
    want = pinned[0].strip()
    want = want if want.startswith("go") else f"go{want}"
    return None if want in (go_version, "godevel") else want


def pinned_go_line(want: str, go_version: str) -> str:
    return f".go-version pins {want}; building with the local {go_version} (GOTOOLCHAIN=local, no download)"


def toolchain_notes(tree: KubeTree, go_version: str, environ: Mapping[str, str]) -> list[str]:
    """One line when the tree pins (.go-version) another Go than the one building it."""
    want = pinned_go(tree, go_version, environ)
    return [f"{pinned_go_line(want, go_version)} - set GOTOOLCHAIN to choose another"] if want else []


def plan_build(request: BuildRequest) -> BuildPlan:
    """Every go command needed for the request's targets on each platform, as kube::golang::build_binaries
    runs them."""
    tree, layout, version, targets = request.tree, request.layout, request.version, request.targets
    options, environ, host = request.options, request.environ, request.host
    staging_name, go_version = request.staging_name, request.go_version
    if not targets:
        raise UsageError("nothing to build: give --what=cmd/NAME (repeatable)")
    style = FlagStyle.from_tree(tree)
    platforms = resolve_platforms(tree, options.platforms, environ, host)
    dbg = environ.get("DBG") == "1"
    debug = options.debug or (dbg and style.knows_dbg)
    module_mode = tree.era.module_mode
    root = str(tree.root)

    version_ld = " ".join(version_ldflags(version_packages(tree), version))
    tags = build_tags(style, environ.get("GOFLAGS", ""), debug)
    common = [*compile_flags(style, root, str(layout.workdir), version_ld, environ, debug),
              *spell(style, "-tags", tags)]
    notes = toolchain_notes(tree, go_version, environ)
    if debug:
        notes.append("debug build: optimisations and inlining off (-N -l), symbols kept")
    elif dbg:
        notes.append("DBG=1: this tree's build_binaries has no debug build, so make ignores it and so does kbuild"
                     " (--debug asks for one anyway)")
    suffix = [] if not style.installsuffix else (
        ["-installsuffix=static"] if style.joined or style.all_prefix else ["-installsuffix", "static"])
    overlay: dict[str, str | None] = {**toolchain_env(environ)}
    if style.goproxy_off:
        overlay["GOPROXY"] = "off"
    overlay.update(dict.fromkeys(style.unsets))

    commands: list[GoCommand] = []
    for platform in platforms:
        penv = {**layout.env, **overlay, **platform_env(platform, host, environ)}
        outdir = layout.bin_dir(platform)
        staging = outdir / staging_name
        statics = [t for t in targets if not t.is_test and is_static(t, tree.static_binaries, environ)
                   and not _darwin_kubectl(t, platform, host)]
        dynamics = [t for t in targets if not t.is_test and t not in statics]
        for group, static in ((statics, True), (dynamics, False)):
            if not group:
                continue
            argv = ["go", "build"]
            if static:
                argv += suffix
            argv += [*common, "-o", f"{staging}/", *(t.package(module_mode) for t in group)]
            env = dict(penv)
            if static:
                env["CGO_ENABLED"] = "0"
            commands.append(GoCommand(platform, tuple(argv), env, layout.workdir, outdir, staging, tuple(group),
                                      static))
        for t in (t for t in targets if t.is_test):
            # New Go's vet rejects old trees' tests (see the reference): -vet=off, as release builds pass.
            argv = ["go", "test", "-c", "-vet=off", *common, "-o", str(staging / t.name), t.package(module_mode)]
            commands.append(GoCommand(platform, tuple(argv), dict(penv), layout.workdir, outdir, staging, (t,), False))
    return BuildPlan(tuple(commands), platforms, host, version, tuple(notes))


def _darwin_kubectl(target: Target, platform: str, host: str) -> bool:
    """is_statically_linked's exception: kubectl built on darwin for darwin keeps cgo."""
    return target.name == "kubectl" and platform.startswith("darwin/") and host.startswith("darwin/")

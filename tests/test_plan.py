"""The go build plan, per era and per flag: argv and environment as Kubernetes' build_binaries makes them."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from build.plan import (
    BuildOptions,
    BuildRequest,
    FlagStyle,
    compile_flags,
    is_static,
    plan_build,
    platform_env,
    resolve_platforms,
    tags_from_goflags,
    version_packages,
)
from build.targets import Target, normalise, resolve_targets
from build.version import VersionInfo
from common.errors import UsageError
from workspace.layout import plan_layout
from workspace.sample import materialize
from workspace.tree import Era, KubeTree

STAMP = VersionInfo(commit="a" * 40, tree_state="clean", version="v1.20.2", major="1", minor="20",
                    build_date="2021-01-13T13:19:01Z", source="git")
HOST = "linux/amd64"


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KubeTree]:
    base = tmp_path_factory.mktemp("eras")
    return {era: KubeTree(materialize(base / era, era).resolve()) for era in ("gopath", "modules", "workspace")}


def plan(tree: KubeTree, whats: list[str], env: dict[str, str] | None = None, **opts):
    environ = {"GOCACHE": "/cache", **(env or {})}
    return plan_build(BuildRequest(tree, plan_layout(tree, environ), STAMP, resolve_targets(tree, whats),
                                   BuildOptions(**opts), environ, HOST))


def flag(argv: tuple[str, ...], name: str) -> str:
    """The value of ``-name value`` or ``-name=value`` (the spelling follows the tree's build_binaries)."""
    if name in argv:
        return argv[argv.index(name) + 1]
    return next(a.split("=", 1)[1] for a in argv if a.startswith(f"{name}="))


def x_flags(ldflags: str) -> dict[str, str]:
    words = shlex.split(ldflags)
    return dict(w.split("=", 1) for w in words[words.index("-X") + 1::2] if "=" in w) if "-X" in words else {}


def test_gopath_era_matches_v120_build_binaries(trees):
    tree = trees["gopath"]
    p = plan(tree, ["cmd/kube-apiserver"])
    (cmd,) = p.commands
    root = str(tree.root)
    assert cmd.cwd == tree.root / "_output/local/go/src/k8s.io/kubernetes"
    assert cmd.argv[:4] == ("go", "build", "-installsuffix", "static")
    assert flag(cmd.argv, "-gcflags") == f" -trimpath={root}"  # "${GOGCFLAGS:-} -trimpath=...", to the space
    assert flag(cmd.argv, "-asmflags") == f"-trimpath={root}"
    assert flag(cmd.argv, "-tags") == "selinux,notest,"  # v1.20's sed leaves the comma
    ld = flag(cmd.argv, "-ldflags")
    assert ld.startswith("-s -w -buildid= -X ")
    assert "-trimpath" not in cmd.argv
    assert cmd.argv[-1] == "k8s.io/kubernetes/cmd/kube-apiserver"
    assert cmd.env["CGO_ENABLED"] == "0" and cmd.env["GO111MODULE"] == "off"
    assert cmd.env["GOPATH"] == f"{root}/_output/local/go"
    assert cmd.env["GOOS"] == "linux" and cmd.env["GOARCH"] == "amd64"
    stamps = x_flags(ld)
    for pkg in ("k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version",
                "k8s.io/kubernetes/vendor/k8s.io/component-base/version"):
        assert stamps[f"{pkg}.gitVersion"] == "v1.20.2"
        assert stamps[f"{pkg}.gitCommit"] == "a" * 40
        assert stamps[f"{pkg}.gitTreeState"] == "clean"
        assert stamps[f"{pkg}.buildDate"] == "2021-01-13T13:19:01Z"
        assert stamps[f"{pkg}.gitMajor"] == "1" and stamps[f"{pkg}.gitMinor"] == "20"
    assert not any(k.startswith("k8s.io/component-base") for k in stamps)


def test_output_goes_to_staging_then_platform_dir(trees):
    tree = trees["gopath"]
    (cmd,) = plan(tree, ["cmd/kubectl"]).commands
    out = flag(cmd.argv, "-o")
    assert out.endswith("/") and Path(out).parent == tree.root / "_output/local/bin/linux/amd64"
    assert cmd.outputs() == [(Path(out) / "kubectl", tree.root / "_output/local/bin/linux/amd64/kubectl")]


def test_modules_era_uses_all_prefix_and_plain_packages(trees):
    tree = trees["modules"]
    (cmd,) = plan(tree, ["cmd/kube-apiserver"]).commands
    assert tree.era is Era.MODULES
    assert cmd.env["GO111MODULE"] == "on" and cmd.env["GOPROXY"] == "off"
    assert cmd.cwd == tree.root / "_output/local/go/src/k8s.io/kubernetes"
    assert flag(cmd.argv, "-gcflags") == f"all=-trimpath={cmd.cwd} "  # "... ${GOGCFLAGS:-}", to the space
    assert flag(cmd.argv, "-asmflags") == f"all=-trimpath={cmd.cwd}"
    ld = flag(cmd.argv, "-ldflags")
    assert ld.startswith("all=-X ") and ld.endswith(" -s -w")
    stamps = x_flags(ld.removeprefix("all="))
    assert stamps["k8s.io/component-base/version.gitVersion"] == "v1.20.2"
    assert stamps["k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitVersion"] == "v1.20.2"
    assert "-installsuffix=static" in cmd.argv


def test_workspace_era_builds_from_root_with_go_trimpath(trees):
    tree = trees["workspace"]
    (cmd,) = plan(tree, ["cmd/kube-apiserver"]).commands
    assert tree.era is Era.WORKSPACE
    assert cmd.cwd == tree.root
    assert "GOPATH" not in cmd.env
    assert "-trimpath" in cmd.argv and not any(a.startswith("-asmflags") for a in cmd.argv)
    assert "-gcflags=" in cmd.argv  # the tree passes it, empty
    stamps = x_flags(flag(cmd.argv, "-ldflags").removeprefix("all="))
    assert set(k.rsplit(".", 1)[0] for k in stamps) == {"k8s.io/client-go/pkg/version",
                                                         "k8s.io/component-base/version"}


def test_static_and_dynamic_targets_are_separate_commands(trees):
    tree = trees["gopath"]
    p = plan(tree, ["cmd/kube-apiserver", "cmd/kubelet", "cmd/kubectl"])
    assert [c.static for c in p.commands] == [True, False]
    static, dynamic = p.commands
    assert [t.name for t in static.targets] == ["kube-apiserver", "kubectl"]
    assert [t.name for t in dynamic.targets] == ["kubelet"]
    assert "CGO_ENABLED" not in dynamic.env
    assert "-installsuffix" not in dynamic.argv


@pytest.mark.parametrize("env,expect_static", [
    ({}, {"kube-apiserver": True, "kubelet": False}),
    ({"KUBE_STATIC_OVERRIDES": "kubelet"}, {"kube-apiserver": True, "kubelet": True}),
    ({"KUBE_CGO_OVERRIDES": "kube-apiserver"}, {"kube-apiserver": False, "kubelet": False}),
    ({"KUBE_CGO_OVERRIDES": "kubelet", "KUBE_STATIC_OVERRIDES": "kubelet"}, {"kube-apiserver": True, "kubelet": False}),
])
def test_static_overrides(env, expect_static):
    statics = ("kube-apiserver", "kubectl")
    for name, want in expect_static.items():
        assert is_static(Target(f"cmd/{name}", name, f"cmd/{name}"), statics, env) is want


def test_debug_and_dbg(trees):
    tree = trees["gopath"]
    (cmd,) = plan(tree, ["cmd/kubectl"], debug=True).commands
    assert flag(cmd.argv, "-gcflags").startswith("all=-N -l")
    ld = flag(cmd.argv, "-ldflags")
    assert "-s -w" not in ld and ld.startswith("-buildid=")
    # v1.20's build_binaries does not read DBG: DBG=1 changes nothing there, and a note says so.
    ignored = plan(tree, ["cmd/kubectl"], {"DBG": "1"})
    assert ignored.commands[0].argv == plan(tree, ["cmd/kubectl"]).commands[0].argv
    assert any("DBG=1" in n and "ignores it" in n for n in ignored.notes)
    for era in ("modules", "workspace"):
        for p in (plan(trees[era], ["cmd/kubectl"], debug=True), plan(trees[era], ["cmd/kubectl"], {"DBG": "1"})):
            (dbg,) = p.commands
            assert "-trimpath" not in dbg.argv and flag(dbg.argv, "-gcflags").strip() == "all=-N -l"
            assert "-s -w" not in flag(dbg.argv, "-ldflags")


def test_goldflags_gogcflags_goflags(trees):
    tree = trees["gopath"]
    (cmd,) = plan(tree, ["cmd/kubectl"], {"GOLDFLAGS": "-linkmode=internal", "GOGCFLAGS": "-m",
                                          "GOFLAGS": "-tags=providerless,dockerless -v"}).commands
    assert flag(cmd.argv, "-ldflags").startswith("-linkmode=internal -X ")
    assert flag(cmd.argv, "-gcflags") == f"-m -trimpath={tree.root}"
    # v1.20's sed keeps what follows -tags= up to the next dash, the space included.
    assert flag(cmd.argv, "-tags") == "selinux,notest,providerless,dockerless "
    assert cmd.env["GOFLAGS"] == "-tags=providerless,dockerless -v"
    (empty,) = plan(tree, ["cmd/kubectl"], {"GOLDFLAGS": ""}).commands
    assert flag(empty.argv, "-ldflags").startswith(" -X ")  # ${GOLDFLAGS=...}: set-but-empty wins


@pytest.mark.parametrize("goflags,tags", [("", []), ("-mod=vendor", []), ("-tags=a,b", ["a", "b"]),
                                          ("-v -tags=x -trimpath", ["x"])])
def test_tags_from_goflags(goflags, tags):
    assert tags_from_goflags(goflags) == tags


def test_platforms(trees):
    tree = trees["gopath"]
    assert resolve_platforms(tree, (), {}, HOST) == (HOST,)
    assert resolve_platforms(tree, (), {"KUBE_BUILD_PLATFORMS": "linux/arm64 linux/amd64"}, HOST) == (
        "linux/arm64", "linux/amd64")
    assert resolve_platforms(tree, ("linux/s390x",), {"KUBE_BUILD_PLATFORMS": "linux/arm64"}, HOST) == ("linux/s390x",)
    assert resolve_platforms(tree, (), {"KUBE_FASTBUILD": "true"}, "linux/arm64") == ("linux/amd64",)
    with pytest.raises(UsageError):
        resolve_platforms(tree, ("linux",), {}, HOST)
    with pytest.raises(UsageError):
        resolve_platforms(tree, ("linux/amd64; rm -rf /",), {}, HOST)


def test_cross_platform_envs_and_one_command_per_platform(trees):
    tree = trees["gopath"]
    p = plan(tree, ["cmd/kubectl", "cmd/kubelet"], platforms=("linux/amd64", "linux/arm64"))
    assert [(c.platform, c.static) for c in p.commands] == [
        ("linux/amd64", True), ("linux/amd64", False), ("linux/arm64", True), ("linux/arm64", False)]
    arm_static, arm_dynamic = p.commands[2:]
    assert arm_static.env["CGO_ENABLED"] == "0" and arm_static.env["GOARCH"] == "arm64"
    assert arm_dynamic.env["CGO_ENABLED"] == "1" and arm_dynamic.env["CC"] == "aarch64-linux-gnu-gcc"
    assert arm_dynamic.outdir == tree.root / "_output/local/bin/linux/arm64"
    assert platform_env("linux/arm64", "linux/amd64", {"KUBE_LINUX_ARM64_CC": "my-cc"})["CC"] == "my-cc"
    assert "CC" not in platform_env("linux/arm64", "linux/arm64", {})  # native: no cross compiler


def test_test_targets_use_go_test_c(trees):
    tree = trees["gopath"]
    (tree.root / "cmd/kubectl/kubectl_test.go").write_text("package main\n")
    try:
        (cmd,) = plan(tree, ["cmd/kubectl/kubectl.test"]).commands
    finally:
        (tree.root / "cmd/kubectl/kubectl_test.go").unlink()
    assert cmd.argv[:4] == ("go", "test", "-c", "-vet=off")
    assert flag(cmd.argv, "-o").endswith("/kubectl.test")
    assert cmd.argv[-1] == "k8s.io/kubernetes/cmd/kubectl"


@pytest.mark.parametrize("bad,msg", [
    ("../etc", "`..`"), ("/usr/bin", "relative"), ("-o=/tmp/x", "flag"), ("cmd/kube apiserver", "unexpected"),
    ("", "needs"), ("cmd/nope", "no such directory"), ("pkg/generated/openapi", "no main package"),
    ("cmd/../cmd/kubectl", "`..`"),
])
def test_bad_targets(trees, bad, msg):
    with pytest.raises(UsageError) as err:
        resolve_targets(trees["gopath"], [bad])
    assert msg in str(err.value)


def test_unknown_target_suggests_close_matches(trees):
    with pytest.raises(UsageError) as err:
        resolve_targets(trees["gopath"], ["cmd/kube-apiservr"])
    assert "cmd/kube-apiserver" in (err.value.hint or "")


@pytest.mark.parametrize("raw,clean", [("cmd/kubectl/", "cmd/kubectl"), ("./cmd/kubectl", "cmd/kubectl"),
                                       ("k8s.io/kubernetes/cmd/kubectl", "cmd/kubectl")])
def test_target_normalisation(raw, clean):
    assert normalise(raw) == clean


def test_duplicate_targets_build_once(trees):
    assert [t.rel for t in resolve_targets(trees["gopath"], ["cmd/kubectl", "./cmd/kubectl/"])] == ["cmd/kubectl"]


def test_package_paths_per_mode():
    t = Target("vendor/k8s.io/kube-aggregator", "kube-aggregator", "vendor/k8s.io/kube-aggregator")
    assert t.package(module_mode=False) == "k8s.io/kubernetes/vendor/k8s.io/kube-aggregator"
    assert t.package(module_mode=True) == "k8s.io/kube-aggregator"


SEED_VERSION_SH = '''
  if [[ -n ${KUBE_GIT_COMMIT-} ]]; then
    ldflags+=(-X "${KUBE_GO_PACKAGE}/pkg/version.gitCommit" "${KUBE_GIT_COMMIT}")
    ldflags+=(-X "${KUBE_GO_PACKAGE}/pkg/version.gitTreeState" "${KUBE_GIT_TREE_STATE}")
  fi
'''
V114_VERSION_SH = '''
    echo "-X '${KUBE_GO_PACKAGE}/pkg/version.${key}=${val}'"
    echo "-X '${KUBE_GO_PACKAGE}/vendor/k8s.io/client-go/pkg/version.${key}=${val}'"
'''


@pytest.mark.parametrize("text,expected", [
    (SEED_VERSION_SH, ["k8s.io/kubernetes/pkg/version"]),
    (V114_VERSION_SH, ["k8s.io/kubernetes/pkg/version", "k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version"]),
])
def test_version_packages_from_old_version_sh(tmp_path, text, expected):
    (tmp_path / "hack/lib").mkdir(parents=True)
    (tmp_path / "hack/lib/version.sh").write_text(text)
    assert version_packages(KubeTree(tmp_path)) == expected


def test_version_packages_of_real_tree(real_tree):
    assert version_packages(KubeTree(real_tree)) == [
        "k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version",
        "k8s.io/kubernetes/vendor/k8s.io/component-base/version"]


def test_flag_style_of_real_tree(real_tree):
    tree = KubeTree(real_tree)
    style = FlagStyle.from_tree(tree)
    assert (style.all_prefix, style.go_trimpath, style.installsuffix, style.joined) == (False, False, True, False)
    assert style.asmflags and not style.goproxy_off
    assert style.tags_expr.startswith("selinux,notest,$(echo")
    assert tree.era is Era.GOPATH


MIDDLE_GOLANG_SH = '''
kube::golang::build_binaries() {
    goasmflags="all=-trimpath=${trimroot}"
    gogcflags="all=-trimpath=${trimroot} ${GOGCFLAGS:-}"
    build_args=( -installsuffix=static )
'''
WS_GOLANG_SH = '''
kube::golang::build_binaries() {
  if [[ "${DBG:-}" == 1 ]]; then
      gogcflags="${gogcflags} all=-N -l"
  else
      goldflags="${goldflags} -s -w"
      goflags+=("-trimpath")
  fi
'''


@pytest.mark.parametrize("text,expect", [
    (MIDDLE_GOLANG_SH, {"all_prefix": True, "go_trimpath": False, "installsuffix": True}),
    (WS_GOLANG_SH, {"all_prefix": True, "go_trimpath": True, "installsuffix": False}),
])
def test_flag_style_detection(tmp_path, text, expect):
    (tmp_path / "hack/lib").mkdir(parents=True)
    (tmp_path / "hack/lib/golang.sh").write_text(text)
    style = FlagStyle.from_tree(KubeTree(tmp_path))
    assert {k: getattr(style, k) for k in expect} == expect


def test_compile_flags_middle_debug_drops_trimpath():
    flags = compile_flags(FlagStyle(all_prefix=True), "/k", "/w", "-X 'a.b=c'", {}, debug=True)
    assert flags == ["-gcflags", "all=-N -l", "-ldflags", "all=-X 'a.b=c'"]


def test_dry_run_rendering_is_shell_safe(trees):
    (cmd,) = plan(trees["gopath"], ["cmd/kubectl"]).commands
    words = shlex.split(cmd.shell())
    assert words[0] == "(cd" and "go" in words and "-ldflags" in words

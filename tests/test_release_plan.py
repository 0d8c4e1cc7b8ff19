"""The release plan (pure): target lists and platforms against bash sourcing the tree's own golang.sh,
the direct-mode container, the images each mode asks for, and bad input."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from build.release.plan import (
    REMOTE_ROOT,
    ReleaseRequest,
    base_env,
    check_request,
    direct_specs,
    host_gocache,
    is_local_engine,
    release_groups,
)
from common.errors import UsageError
from workspace.targetlists import function_targets
from workspace.tree import KubeTree

# Prints each list the way build/lib/release.sh and cross.sh see it, after the tree's own init.sh.
ORACLE = r"""
set -o errexit
source hack/lib/init.sh >/dev/null
show() { local name=$1; shift; echo "$name=$*"; }
show server "${KUBE_SERVER_TARGETS[*]}" "@" "${KUBE_SERVER_PLATFORMS[*]}"
show node "${KUBE_NODE_TARGETS[*]-}" "@" "${KUBE_NODE_PLATFORMS[*]-}"
show client "${KUBE_CLIENT_TARGETS[*]}" "@" "${KUBE_CLIENT_PLATFORMS[*]}"
if [[ -n "${KUBE_TEST_TARGETS+x}" ]]; then
  show test "${KUBE_TEST_TARGETS[*]}" "@" "${KUBE_TEST_PLATFORMS[*]}"
  show test-server "${KUBE_TEST_SERVER_TARGETS[*]}" "@" "${KUBE_TEST_SERVER_PLATFORMS[*]-}"
fi
show server-image "${KUBE_SERVER_IMAGE_TARGETS[*]}" "@" "${KUBE_SERVER_PLATFORMS[*]}"
if [[ -n "${KUBE_CONFORMANCE_IMAGE_TARGETS+x}" ]]; then
  show conformance-image "${KUBE_CONFORMANCE_IMAGE_TARGETS[*]}" "@" "${KUBE_SERVER_PLATFORMS[*]}"
fi
"""

ENVS = [{}, {"KUBE_FASTBUILD": "true"}, {"KUBE_BUILD_PLATFORMS": "linux/arm64 windows/amd64 linux/amd64 darwin/amd64"}]


def bash_lists(root: Path, env: dict[str, str]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KUBE_")}
    out = subprocess.run(["bash", "-c", ORACLE], cwd=root, env={**clean, "OSTYPE": "linux-gnu", **env},
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lists = {}
    for line in out.stdout.splitlines():
        name, _, rest = line.partition("=")
        targets, _, platforms = rest.partition(" @ ")
        lists[name] = (tuple(targets.split()), tuple(platforms.split()))
    return lists


def kbuild_lists(tree: KubeTree, env: dict[str, str]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    groups = release_groups(tree, env) + release_groups(tree, env, images_only=True, conformance=True)
    return {g.name: (g.targets, g.platforms) for g in groups}


def _compare(tree: KubeTree, env: dict[str, str]) -> None:
    want = {k: v for k, v in bash_lists(tree.root, env).items() if v[0] and v[1]}
    assert kbuild_lists(tree, env) == want


@pytest.mark.parametrize("env", ENVS, ids=["default", "fastbuild", "platforms"])
def test_sample_lists_equal_bash(sample_repo, env):
    _compare(KubeTree(sample_repo("gopath")), env)


@pytest.mark.realtree
@pytest.mark.parametrize("env", ENVS, ids=["default", "fastbuild", "platforms"])
def test_real_tree_lists_equal_bash(real_tree, env):
    tree = KubeTree(real_tree)
    _compare(tree, env)
    if env.get("KUBE_FASTBUILD"):  # the reference's quick-release list for v1.20.2
        names = {t.rsplit("/", 1)[-1] for g in release_groups(tree, env) for t in g.targets}
        assert names == {"apiextensions-apiserver", "kube-aggregator", "kube-apiserver", "kube-controller-manager",
                         "kube-proxy", "kube-scheduler", "kubeadm", "kubectl", "kubelet", "mounter", "e2e.test",
                         "e2e_node.test", "gendocs", "genkubedocs", "genman", "genswaggertypedocs", "genyaml",
                         "ginkgo", "go-runner", "kubemark", "linkcheck"}


def test_function_targets_conditional_appends():
    text = """kube::golang::server_test_targets() {
  local targets=(
    cmd/kubemark  # a comment
    ginkgo
  )

  if [[ "${OSTYPE:-}" == "linux"* ]]; then
    targets+=( test/e2e_node/e2e_node.test )
  fi
  if [[ "${KUBE_SOMETHING:-}" == "y" ]]; then
    targets+=( cmd/other )
  fi
  targets+=( cmd/always )
  echo "${targets[@]}"
}
"""
    assert function_targets(text, "kube::golang::server_test_targets") == [
        "cmd/kubemark", "ginkgo", "test/e2e_node/e2e_node.test", "cmd/always"]
    assert function_targets(text, "kube::golang::nope") is None


@pytest.mark.parametrize("req, text", [
    (ReleaseRequest(mode="fast"), "--mode 'fast'"),
    (ReleaseRequest(mode="native", platforms=("linux",)), "os/arch"),
    (ReleaseRequest(mode="native", push=("https://reg:5000",)), "without a scheme"),
    (ReleaseRequest(mode="native", push=("reg/ x",)), "--push"),
    (ReleaseRequest(mode="native", push=("justaname",)), "--push"),
])
def test_bad_requests(req, text):
    with pytest.raises(UsageError) as err:
        check_request(req)
    assert text in err.value.message


def test_base_env_quick_platforms_and_images():
    env = base_env(ReleaseRequest(quick=True), {"KUBE_BUILD_PULL_LATEST_IMAGES": "n",
                                                "KUBE_BASE_IMAGE_REGISTRY": "my reg/x"})
    assert env == {"KUBE_BUILD_PULL_LATEST_IMAGES": "n", "KUBE_BASE_IMAGE_REGISTRY": "my reg/x",
                   "KUBE_RELEASE_RUN_TESTS": "n", "KUBE_FASTBUILD": "true"}
    env = base_env(ReleaseRequest(quick=True, platforms=("linux/arm64",), conformance=True), {})
    assert env["KUBE_BUILD_PLATFORMS"] == "linux/arm64" and "KUBE_FASTBUILD" not in env
    assert env["KUBE_BUILD_CONFORMANCE"] == "y"


def test_direct_specs(tmp_path):
    tree = KubeTree(tmp_path)
    environ = {"GOFLAGS": "-vet=off", "PATH": "/usr/bin", "KUBE_CGO_OVERRIDES": "kubelet", "SECRET": "x",
               "SOURCE_DATE_EPOCH": "1600000000"}
    quick = direct_specs(tree, ReleaseRequest(mode="direct", quick=True), "kc:1", environ,
                         gocache=tmp_path / "cache", uid_gid="1000:1000", name_base="kb")
    (spec,) = quick
    assert spec.command == ("make", "cross") and spec.image == "kc:1" and spec.network == "none"
    assert spec.user == "1000:1000" and spec.working_dir == REMOTE_ROOT
    assert spec.binds[str(tmp_path)] == {"bind": REMOTE_ROOT, "mode": "rw"}
    cache_bind = spec.binds[str(tmp_path / "cache")]["bind"]
    assert cache_bind == f"{REMOTE_ROOT}/_output/dockerized/go/cache" == spec.env["GOCACHE"]
    assert spec.env["KUBE_OUTPUT_SUBPATH"] == "_output/dockerized" and spec.env["KUBE_FASTBUILD"] == "true"
    assert spec.env["KUBE_GIT_VERSION_FILE"] == f"{REMOTE_ROOT}/.dockerized-kube-version-defs"
    assert spec.env["GOFLAGS"] == "-vet=off" and spec.env["KUBE_CGO_OVERRIDES"] == "kubelet"
    assert spec.env["SOURCE_DATE_EPOCH"] == "1600000000"
    assert "SECRET" not in spec.env and "PATH" not in spec.env and spec.env["HOME"] == "/tmp"
    full = direct_specs(tree, ReleaseRequest(mode="direct"), "kc:1", environ, gocache=tmp_path / "c",
                        uid_gid=None, name_base="kb")
    assert [s.command for s in full] == [("make", "cross"), ("make", "test"), ("make", "test-integration")]
    assert len({s.name for s in full}) == 3 and full[0].user is None


def test_direct_images_only_runs_make_all_for_the_image_targets(sample_repo, tmp_path):
    tree = KubeTree(sample_repo("gopath"))
    (spec,) = direct_specs(tree, ReleaseRequest(mode="direct", quick=True, images_only=True), "kc:1", {},
                           gocache=tmp_path, uid_gid=None, name_base="kb")
    assert spec.command == ("make", "all", "WHAT=cmd/kube-apiserver", "KUBE_BUILD_PLATFORMS=linux/amd64")


def test_images_for_mode_never_asks_for_pause(sample_repo):
    from build.release.preflight import images_for_mode
    from images.resolve import resolve

    specs = resolve(KubeTree(sample_repo("gopath")), {})
    assert "pause" in {s.role for s in specs}
    script = {s.role for s in images_for_mode(specs, "script")}
    native = {s.role for s in images_for_mode(specs, "native")}
    assert "kube-cross" in script and "kube-cross" in {s.role for s in images_for_mode(specs, "direct")}
    assert "kube-cross" not in native and "pause" not in script | native
    assert native == {"go-runner", "debian-iptables"}


def test_engines_and_cache():
    assert is_local_engine(None) and is_local_engine("unix:///run/docker.sock")
    assert not is_local_engine("tcp://127.0.0.1:2375") and not is_local_engine("ssh://builder")
    assert host_gocache({"GOCACHE": "/c"}) == Path("/c")
    assert host_gocache({"HOME": "/h"}) == Path("/h/.cache/go-build")
    assert host_gocache({"XDG_CACHE_HOME": "/x", "HOME": "/h"}) == Path("/x/go-build")


# --- the modes: one word each, one object each ---------------------------------------------------

def test_each_mode_word_has_its_object():
    from build.release.modes import Mode, parse_mode
    from build.release.modes.registry import MODES, mode_for
    from build.release.plan import MODES as WORDS

    assert [m.value for m in Mode] == ["script", "direct", "native"] == list(WORDS)
    assert set(MODES) == set(Mode)
    for mode in Mode:
        assert MODES[mode].mode is mode and mode_for(mode.value) is MODES[mode] and parse_mode(mode.value) is mode
    assert [m for m in Mode if MODES[m].runs_kube_cross] == [Mode.SCRIPT, Mode.DIRECT]
    assert Mode.lookup("fast") is None and Mode.lookup("native") is Mode.NATIVE
    with pytest.raises(UsageError) as err:
        parse_mode("Script")
    assert err.value.message == "--mode 'Script': choose one of script, direct, native" and "native" in err.value.hint


def test_a_checked_request_carries_its_mode():
    from build.release.modes import Mode

    req = check_request(ReleaseRequest(mode="direct", quick=True, mirrors=("m:5000",), report_path=Path("r.json")))
    assert req.mode is Mode.DIRECT and req.quick and req.mirrors == ("m:5000",) and req.report_path == Path("r.json")
    with pytest.raises(AttributeError):
        req.quick = False  # frozen


def test_run_release_takes_one_request():
    import inspect

    from build.release.driver import run_release

    assert list(inspect.signature(run_release).parameters) == ["tree", "environ", "request", "out"]


def test_only_modes_built_in_kube_cross_note_the_unused_remote_cache():
    from build.release.modes import Mode
    from cache.config import ENV_URL
    from cache.env import release_note

    environ = {ENV_URL: "oci://127.0.0.1:5000/cache"}
    assert release_note(environ, Mode.NATIVE) is None and release_note({}, Mode.SCRIPT) is None
    for mode in (Mode.SCRIPT, Mode.DIRECT):
        note = release_note(environ, mode)
        assert note is not None and f"--mode {mode.value}:" in note and "--mode native" in note


def test_a_phase_that_fails_is_not_reported_done(capsys):
    from build.release.report import Phases

    phases = Phases()
    with phases.phase("images"):
        pass
    with pytest.raises(RuntimeError), phases.phase("build"):
        raise RuntimeError("boom")
    err = capsys.readouterr().err
    assert "== images done in 0s" in err and "== build failed after 0s" in err and "== build done" not in err
    assert set(phases.seconds) == {"images", "build"}


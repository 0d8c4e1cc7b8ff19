"""The image set, read from each era's files: seed (v1.2), v1.20 (sample and the real tree), current (~v1.31)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import TreeError, UsageError
from images.refs import parse_ref
from images.resolve import resolve
from images.sync import plan, select
from tests.conftest import inv
from workspace.tree import KubeTree

SEED_FILES = {
    "build/build-image/Dockerfile": "# kube-build\n"
                                    "FROM gcr.io/google_containers/kube-cross:KUBE_BUILD_IMAGE_CROSS_TAG\n",
    "build/build-image/cross/VERSION": "v1.4.2-1\n",
    "build/common.sh": """readonly KUBE_BUILD_IMAGE_REPO=kube-build
readonly KUBE_BUILD_IMAGE_CROSS_TAG="v1.4.2-1"
# Entry format is "<name-of-binary>,<base-image>".
readonly KUBE_DOCKER_WRAPPED_BINARIES=(
  kube-apiserver,busybox
  kube-controller-manager,busybox
  kube-scheduler,busybox
  kube-proxy,gcr.io/google_containers/debian-iptables:v1
)
# The set of addons images that should be prepopulated
readonly KUBE_ADDON_PATHS=(
  gcr.io/google_containers/pause:2.0
  gcr.io/google_containers/kube-registry-proxy:0.3
)
""",
    "pkg/kubelet/dockertools/docker.go": 'package dockertools\n\nconst (\n'
                                         '\tPodInfraContainerImage = "gcr.io/google_containers/pause:2.0"\n)\n',
}

CURRENT_FILES = {
    "build/build-image/Dockerfile": "ARG KUBE_CROSS_IMAGE\nARG KUBE_CROSS_VERSION\n"
                                    "FROM ${KUBE_CROSS_IMAGE}:${KUBE_CROSS_VERSION}\n",
    "build/build-image/cross/VERSION": "v1.31.0-go1.22.6-bullseye.0\n",
    "build/common.sh": """KUBE_BUILD_IMAGE_CROSS_TAG="$(cat "${KUBE_ROOT}/build/build-image/cross/VERSION")"
readonly KUBE_BUILD_IMAGE_CROSS_TAG
readonly KUBE_DOCKER_REGISTRY="${KUBE_DOCKER_REGISTRY:-registry.k8s.io}"
KUBE_BASE_IMAGE_REGISTRY="${KUBE_BASE_IMAGE_REGISTRY:-registry.k8s.io/build-image}"
readonly KUBE_BASE_IMAGE_REGISTRY
KUBE_CROSS_IMAGE="${KUBE_CROSS_IMAGE:-"${KUBE_BASE_IMAGE_REGISTRY}/kube-cross"}"
readonly KUBE_CROSS_IMAGE
KUBE_CROSS_VERSION="${KUBE_CROSS_VERSION:-"${KUBE_BUILD_IMAGE_CROSS_TAG}"}"
readonly KUBE_CROSS_VERSION
readonly __default_distroless_iptables_version=v0.5.7
readonly __default_go_runner_version=v2.3.1-go1.22.6-bookworm.0
readonly KUBE_GORUNNER_IMAGE="${KUBE_GORUNNER_IMAGE:-$KUBE_BASE_IMAGE_REGISTRY/go-runner:$__default_go_runner_version}"
readonly KUBE_APISERVER_BASE_IMAGE="${KUBE_APISERVER_BASE_IMAGE:-$KUBE_GORUNNER_IMAGE}"
readonly KUBE_CONTROLLER_MANAGER_BASE_IMAGE="${KUBE_CONTROLLER_MANAGER_BASE_IMAGE:-$KUBE_GORUNNER_IMAGE}"
readonly KUBE_SCHEDULER_BASE_IMAGE="${KUBE_SCHEDULER_BASE_IMAGE:-$KUBE_GORUNNER_IMAGE}"
readonly KUBE_PROXY_BASE_IMAGE="${KUBE_PROXY_BASE_IMAGE:-$KUBE_BASE_IMAGE_REGISTRY/distroless-iptables:\
$__default_distroless_iptables_version}"
readonly KUBECTL_BASE_IMAGE="${KUBECTL_BASE_IMAGE:-$KUBE_GORUNNER_IMAGE}"

kube::build::get_docker_wrapped_binaries() {
  ### If you change any of these lists, please also update DOCKERIZED_BINARIES
  local targets=(
    "kube-apiserver,${KUBE_APISERVER_BASE_IMAGE}"
    "kube-controller-manager,${KUBE_CONTROLLER_MANAGER_BASE_IMAGE}"
    "kube-scheduler,${KUBE_SCHEDULER_BASE_IMAGE}"
    "kube-proxy,${KUBE_PROXY_BASE_IMAGE}"
    "kubectl,${KUBECTL_BASE_IMAGE}"
  )
  echo "${targets[@]}"
}
""",
    "build/pause/Makefile": "REGISTRY ?= staging-k8s.gcr.io\nIMAGE = $(REGISTRY)/pause\nTAG ?= 3.10\n",
    "cmd/kubelet/app/options/container_runtime.go": 'package options\n\nconst (\n'
                                                    '\tdefaultPodSandboxImageName    = "registry.k8s.io/pause"\n'
                                                    '\tdefaultPodSandboxImageVersion = "3.10"\n)\n',
}


def write_tree(root: Path, files: dict[str, str]) -> KubeTree:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "cmd").mkdir(exist_ok=True)
    (root / "hack/lib").mkdir(parents=True, exist_ok=True)
    return KubeTree(root)


def names(specs) -> dict[str, str]:
    return {s.ref.name: s.role for s in specs}


def test_seed_era(tmp_path):
    specs = resolve(write_tree(tmp_path, SEED_FILES), {})
    assert names(specs) == {
        "gcr.io/google_containers/kube-cross:v1.4.2-1": "kube-cross",
        "docker.io/library/busybox:latest": "busybox",
        "gcr.io/google_containers/debian-iptables:v1": "debian-iptables",
        "gcr.io/google_containers/pause:2.0": "pause",
        "gcr.io/google_containers/kube-registry-proxy:0.3": "kube-registry-proxy",
    }
    by_name = {s.ref.name: s for s in specs}
    assert by_name["docker.io/library/busybox:latest"].used_by == (
        "kube-apiserver", "kube-controller-manager", "kube-scheduler")
    assert by_name["gcr.io/google_containers/kube-cross:v1.4.2-1"].source.endswith("build/common.sh:2")


def test_seed_era_tag_comes_from_common_sh_not_version_file(tmp_path):
    files = dict(SEED_FILES, **{"build/build-image/cross/VERSION": "v9.9.9-1\n"})
    assert "gcr.io/google_containers/kube-cross:v1.4.2-1" in names(resolve(write_tree(tmp_path, files), {}))


def test_current_era(tmp_path):
    specs = resolve(write_tree(tmp_path, CURRENT_FILES), {})
    assert names(specs) == {
        "registry.k8s.io/build-image/kube-cross:v1.31.0-go1.22.6-bullseye.0": "kube-cross",
        "registry.k8s.io/build-image/go-runner:v2.3.1-go1.22.6-bookworm.0": "go-runner",
        "registry.k8s.io/build-image/distroless-iptables:v0.5.7": "distroless-iptables",
        "registry.k8s.io/pause:3.10": "pause",
    }
    runner = next(s for s in specs if s.role == "go-runner")
    assert runner.used_by == ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def test_current_era_overrides(tmp_path):
    tree = write_tree(tmp_path, CURRENT_FILES)
    env = {"KUBE_BASE_IMAGE_REGISTRY": "mirror.example/bi", "KUBE_CROSS_VERSION": "v0.0.1",
           "KUBE_PROXY_BASE_IMAGE": "mirror.example/proxy-base:1"}
    got = names(resolve(tree, env))
    assert "mirror.example/bi/kube-cross:v0.0.1" in got
    assert "mirror.example/bi/go-runner:v2.3.1-go1.22.6-bookworm.0" in got
    assert "mirror.example/proxy-base:1" in got
    assert "registry.k8s.io/pause:3.10" in got  # not a base image: no override applies
    assert names(resolve(tree, {"KUBE_CROSS_IMAGE": "m.example/kc"}))["m.example/kc:v1.31.0-go1.22.6-bullseye.0"]


def test_env_overrides_are_ignored_where_the_tree_does_not_read_them(tmp_path):
    got = names(resolve(write_tree(tmp_path, SEED_FILES), {"KUBE_BASE_IMAGE_REGISTRY": "m.example",
                                                           "KUBE_CROSS_IMAGE": "m.example/kc"}))
    assert "gcr.io/google_containers/kube-cross:v1.4.2-1" in got
    assert "gcr.io/google_containers/debian-iptables:v1" in got


def test_sample_tree(sample_repo):
    tree = KubeTree(sample_repo("gopath"))
    got = names(resolve(tree, {}))
    assert got["k8s.gcr.io/build-image/kube-cross:v1.15.5-1"] == "kube-cross"
    assert got["k8s.gcr.io/build-image/go-runner:buster-v2.2.2"] == "go-runner"
    assert got["k8s.gcr.io/build-image/debian-iptables:buster-v1.3.0"] == "debian-iptables"
    assert got["k8s.gcr.io/pause:3.4"] == "pause"


def test_real_tree(real_tree):
    specs = resolve(KubeTree(real_tree), {})
    assert [s.ref.name for s in specs] == [
        "k8s.gcr.io/build-image/kube-cross:v1.15.5-1",
        "k8s.gcr.io/build-image/go-runner:buster-v2.2.2",
        "k8s.gcr.io/build-image/debian-iptables:buster-v1.3.0",
        "k8s.gcr.io/pause:3.4",
        "k8s.gcr.io/pause:3.2",
    ]
    # Every source names a file:line that really holds the value.
    for spec in specs:
        rel, line = spec.source.split(" + ")[0].split(", ")[0].rsplit(":", 1)
        text = (real_tree / rel).read_text().splitlines()[int(line) - 1]
        assert spec.ref.tag in text or "KUBE_BUILD_IMAGE_CROSS_TAG" in text or "version}" in text
    overridden = names(resolve(KubeTree(real_tree), {"KUBE_BASE_IMAGE_REGISTRY": "127.0.0.1:5000/bi"}))
    assert "127.0.0.1:5000/bi/go-runner:buster-v2.2.2" in overridden


def test_tree_without_pins(tmp_path):
    with pytest.raises(TreeError):
        resolve(write_tree(tmp_path, {}), {})


def test_only_and_plan(tmp_path):
    specs = resolve(write_tree(tmp_path, CURRENT_FILES), {})
    chosen = select(specs, ["kube-cross", "registry.k8s.io/pause:3.10"])
    assert [s.role for s in chosen] == ["kube-cross", "pause"]
    with pytest.raises(UsageError):
        select(specs, ["nonesuch"])
    tasks = plan(chosen, ["127.0.0.1:5000/a", "127.0.0.1:5001"], "flat", {"registry.k8s.io/pause:3.10": "sha256:x"})
    assert [str(s) for s in tasks[0].sources] == ["127.0.0.1:5000/a/kube-cross:v1.31.0-go1.22.6-bullseye.0",
                                                   "127.0.0.1:5001/kube-cross:v1.31.0-go1.22.6-bullseye.0"]
    assert tasks[1].locked == "sha256:x" and tasks[0].locked == ""
    assert plan(chosen, [], "nested", {})[0].sources == (parse_ref("registry.k8s.io/build-image/kube-cross:"
                                                                   "v1.31.0-go1.22.6-bullseye.0"),)


def test_cli_list_and_env(tmp_path):
    tree = write_tree(tmp_path, CURRENT_FILES)
    listed = json.loads(inv("images", "--kube-root", str(tree.root), "--list", "--json", check=True).stdout)
    assert {i["role"] for i in listed} == {"kube-cross", "go-runner", "distroless-iptables", "pause"}
    env = inv("images", "--kube-root", str(tree.root), "--env", check=True).stdout.splitlines()
    assert "export KUBE_BUILD_PULL_LATEST_IMAGES=n" in env and "export KUBE_BUILD_CONFORMANCE=n" in env
    assert "export KUBE_CROSS_VERSION=v1.31.0-go1.22.6-bullseye.0" in env


@pytest.mark.parametrize("args,code,needle", [
    (["--mirror", "http://reg.example"], 2, "without a scheme"),
    (["--mirror", "nodots"], 2, "registry host"),
    (["--layout", "diagonal"], 2, "nested or flat"),
    (["--only", "nonesuch"], 2, "not in this tree's image set"),
    (["--save", "a.tar", "--load", "b.tar"], 2, "separate runs"),
    (["--load", "/nonexistent.tar"], 2, "no such file"),
])
def test_cli_bad_input_is_refused_before_the_engine(tmp_path, args, code, needle):
    tree = write_tree(tmp_path / "t", CURRENT_FILES)
    env = {**__import__("os").environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = inv("images", "--kube-root", str(tree.root), *args, env=env)
    assert result.returncode == code, result.stderr
    assert needle in result.stderr and "Traceback" not in result.stderr


def test_cli_engine_unreachable(tmp_path):
    tree = write_tree(tmp_path / "t", CURRENT_FILES)
    env = {**__import__("os").environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    result = inv("images", "--kube-root", str(tree.root), env=env)
    assert result.returncode == 3
    err = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(err) == 1 and "unix:///nonexistent/docker.sock" in err[0] and "DOCKER_HOST" in err[0]
    assert "TIP" in result.stderr

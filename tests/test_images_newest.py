"""The image set of the newest trees (v1.35+), on the sample's newest variant.

The oracle is the variant's own build/common.sh, sourced by bash (with stub `go` and `docker` that
fail if called): it prints `__default_base_image` per binary, the KUBE_*_BASE_IMAGE values, the
docker-wrapped binaries list and KUBE_BUILD_SETCAP_IMAGE; kbuild must compute the same.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from images import declared
from images.resolve import ImageSpec, _tree_vars, resolve, statically_linked
from tests.conftest import inv
from workspace.sample import materialize
from workspace.tree import KubeTree

BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubectl",
            "kubelet", "kube-log-runner")
BASE_VARS = {"kube-apiserver": "KUBE_APISERVER_BASE_IMAGE",
             "kube-controller-manager": "KUBE_CONTROLLER_MANAGER_BASE_IMAGE",
             "kube-scheduler": "KUBE_SCHEDULER_BASE_IMAGE", "kube-proxy": "KUBE_PROXY_BASE_IMAGE",
             "kubectl": "KUBECTL_BASE_IMAGE"}
RUNNER = "registry.k8s.io/build-image/go-runner:v2.4.0-go1.27.1-trixie.0"
DYNAMIC = "registry.k8s.io/build-image/distroless-iptables:v0.11.0"
SETCAP = "registry.k8s.io/build-image/setcap:bookworm-v1.0.6"
CROSS = "registry.k8s.io/build-image/kube-cross:v1.38.0-go1.27.1-bullseye.0"

ORACLE = r"""
source build/common.sh
for b in __BINARIES__; do
  echo "default $b $(__default_base_image "k8s.io/kubernetes/cmd/$b")"
done
for v in __VARS__ KUBE_BUILD_SETCAP_IMAGE KUBE_GORUNNER_IMAGE __default_dynamic_base_image; do echo "var $v ${!v}"; done
for w in $(kube::build::get_docker_wrapped_binaries linux); do echo "wrapped ${w%%,*} ${w##*,}"; done
"""


@pytest.fixture(scope="module")
def newest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return materialize(tmp_path_factory.mktemp("newest") / "tree", "workspace", "newest")


def bash_says(tree: Path, stubs: Path, env: dict[str, str]) -> dict[str, dict[str, str]]:
    script = ORACLE.replace("__BINARIES__", " ".join(BINARIES)).replace("__VARS__", " ".join(BASE_VARS.values()))
    result = subprocess.run(["bash", "-c", script], cwd=tree, capture_output=True, text=True, check=False,
                            env={"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(tree), **env})
    assert result.returncode == 0, result.stderr
    assert "stub" not in result.stderr, result.stderr
    out: dict[str, dict[str, str]] = {"default": {}, "var": {}, "wrapped": {}}
    for line in result.stdout.splitlines():
        kind, key, value = line.split(" ", 2)
        out[kind][key] = value
    return out


def by_binary(specs: list[ImageSpec]) -> dict[str, str]:
    return {b: s.ref.name for s in specs if s.role not in ("setcap", "pause") for b in s.used_by}


ENVS = [
    {},
    {"KUBE_CGO_OVERRIDES": "kube-apiserver"},
    {"KUBE_STATIC_OVERRIDES": "kube-controller-manager kube-scheduler"},
    {"KUBE_CGO_OVERRIDES": "kubectl", "KUBE_STATIC_OVERRIDES": "kubectl kube-proxy"},   # CGO wins
    {"KUBE_CGO_OVERRIDES": "cmd/kube-apiserver"},                                        # `*/<item>`: a suffix
    {"KUBE_CGO_OVERRIDES": "apiserver"},                                                 # not after a slash
    {"KUBE_STATIC_OVERRIDES": "  kube-scheduler   kube-proxy "},
    {"KUBE_APISERVER_BASE_IMAGE": "mirror.example/base/apiserver:1"},
    {"KUBE_GORUNNER_IMAGE": "mirror.example/go-runner:v9", "KUBE_PROXY_BASE_IMAGE": "mirror.example/p:2"},
    {"KUBE_BASE_IMAGE_REGISTRY": "127.0.0.1:5000/bi", "KUBE_BUILD_SETCAP_IMAGE": "mirror.example/setcap:x"},
    {"KUBECTL_BASE_IMAGE": "", "KUBE_SCHEDULER_BASE_IMAGE": ""},                         # empty: the default
]


@pytest.mark.parametrize("env", ENVS, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()) or "none")
def test_image_set_equals_what_bash_computes(newest, stubs, env):
    said = bash_says(newest, stubs, env)
    tree = KubeTree(newest)
    specs = resolve(tree, env, host_os="linux")
    assert by_binary(specs) == said["wrapped"]
    for binary, var in BASE_VARS.items():
        assert said["var"][var] == said["wrapped"][binary]
    assert next(s.ref.name for s in specs if s.role == "setcap") == said["var"]["KUBE_BUILD_SETCAP_IMAGE"]
    # __default_base_image itself, for every binary (kubelet and kube-log-runner too), as kbuild models it.
    v = _tree_vars(tree, env, "linux")
    for binary in BINARIES:
        value, _, _, calls = v.trace(f"$(__default_base_image k8s.io/kubernetes/cmd/{binary})")
        assert value == said["default"][binary], binary
        static, _, _ = statically_linked(f"k8s.io/kubernetes/cmd/{binary}", tree.static_binaries, env)
        assert calls[0].chose == ("KUBE_GORUNNER_IMAGE" if static else "__default_dynamic_base_image")
        assert value == said["var"][calls[0].chose]


def test_default_set(newest):
    specs = resolve(KubeTree(newest), {}, host_os="linux")
    assert [(s.role, s.ref.name) for s in specs] == [
        ("kube-cross", CROSS), ("go-runner", RUNNER), ("distroless-iptables", DYNAMIC), ("setcap", SETCAP),
        ("pause", "registry.k8s.io/pause:3.10.2")]
    runner, dynamic, setcap = specs[1], specs[2], specs[3]
    assert runner.used_by == ("kube-apiserver", "kubectl")           # static in the variant's golang.sh
    assert dynamic.used_by == ("kube-controller-manager", "kube-scheduler", "kube-proxy")
    assert setcap.used_by == ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
                              "kubectl")
    assert any("--build-arg SETCAP_IMAGE" in n and "build/lib/release.sh:" in n for n in setcap.notes)
    # kube-log-runner is no image: it goes into every server image.
    assert not any("kube-log-runner" in s.ref.name for s in specs)
    assert runner.carries == dynamic.carries == ("kube-log-runner",)
    assert any("statically linked" in v and "KUBE_GORUNNER_IMAGE" in v for v in runner.via)
    assert any(v.startswith("kube-proxy: KUBE_PROXY_BASE_IMAGE -> __default_dynamic_base_image") for v in dynamic.via)


def test_sources_name_the_line_that_holds_the_name(newest):
    for spec in resolve(KubeTree(newest), {}, host_os="linux"):
        rel, line = spec.source.rsplit(":", 1)
        text = (newest / rel).read_text().splitlines()[int(line) - 1]
        last = spec.ref.path.rsplit("/", 1)[-1]
        assert last in text or spec.ref.tag in text, (spec.source, text)


def test_environment_overrides_are_named(newest):
    env = {"KUBE_APISERVER_BASE_IMAGE": "mirror.example/base/apiserver:1", "KUBE_CGO_OVERRIDES": "kubectl"}
    specs = {s.ref.name: s for s in resolve(KubeTree(newest), env, host_os="linux")}
    api = specs["mirror.example/base/apiserver:1"]
    assert api.source == "environment: KUBE_APISERVER_BASE_IMAGE" and api.used_by == ("kube-apiserver",)
    assert "kubectl" in specs[DYNAMIC].used_by and "KUBE_CGO_OVERRIDES" in specs[DYNAMIC].environment
    assert RUNNER not in specs  # nothing static is left in the docker-wrapped list


def test_setcap_only_where_release_sh_passes_it(newest, tmp_path):
    tree = materialize(tmp_path / "t", "workspace", "newest")
    lib = tree / "build/lib/release.sh"
    lib.write_text(lib.read_text().replace('--build-arg SETCAP_IMAGE="${KUBE_BUILD_SETCAP_IMAGE}"', ""))
    assert "setcap" not in {s.role for s in resolve(KubeTree(tree), {}, host_os="linux")}


def test_no_carries_without_kube_log_runner_in_server_images(tmp_path):
    tree = materialize(tmp_path / "t", "workspace", "newest")
    golang = tree / "hack/lib/golang.sh"
    golang.write_text(golang.read_text().replace(
        "  local targets=(\n    staging/src/k8s.io/component-base/logs/kube-log-runner\n    cmd/kube-apiserver",
        "  local targets=(\n    cmd/kube-apiserver"))
    assert all(not s.carries for s in resolve(KubeTree(tree), {}, host_os="linux"))


def test_darwin_kubectl_rule_where_the_tree_has_it(tmp_path):
    tree = materialize(tmp_path / "t", "workspace", "newest")
    golang = tree / "hack/lib/golang.sh"
    golang.write_text(golang.read_text().replace(
        "kube::golang::is_statically_linked() {\n  local e\n",
        "kube::golang::is_statically_linked() {\n  local e\n"
        '  [[ "$(go env GOHOSTOS)" == "darwin" && "$(go env GOOS)" == "darwin" && "$1" == *"/kubectl" ]] '
        "&& return 1\n"))
    on_mac = by_binary(resolve(KubeTree(tree), {}, host_os="darwin"))
    assert on_mac["kubectl"] == DYNAMIC and on_mac["kube-apiserver"] == RUNNER
    assert by_binary(resolve(KubeTree(tree), {"GOOS": "linux"}, host_os="darwin"))["kubectl"] == RUNNER
    assert by_binary(resolve(KubeTree(tree), {}, host_os="linux"))["kubectl"] == RUNNER


# --- build/dependencies.yaml ----------------------------------------------------------------------

def marks(tree: Path, env: dict[str, str]) -> dict[str, str]:
    specs = declared.mark(KubeTree(tree), resolve(KubeTree(tree), env, host_os="linux"), env)
    return {s.ref.name: s.mismatch for s in specs if s.mismatch}


def test_declared_entries_are_read(newest):
    entries = {e.image: e for e in declared.read_declared(KubeTree(newest))}
    assert set(entries) == {"kube-cross", "distroless-iptables", "go-runner", "pause", "setcap"}
    assert entries["go-runner"].version == "v2.4.0-go1.27.1-trixie.0"
    line = (newest / "build/dependencies.yaml").read_text().splitlines()[entries["go-runner"].line - 1]
    assert "registry.k8s.io/go-runner: dependents" in line


def test_no_marks_when_tree_and_declaration_agree(newest, sample_repo):
    assert marks(newest, {}) == {}
    assert marks(newest, {"KUBE_BASE_IMAGE_REGISTRY": "127.0.0.1:5000/bi"}) == {}  # same tags, a mirror
    assert marks(newest, {"KUBE_CGO_OVERRIDES": "kube-apiserver"}) == {}
    assert marks(sample_repo("gopath", tag=None), {}) == {}


@pytest.mark.parametrize("env,name,var", [
    ({"KUBE_APISERVER_BASE_IMAGE": "registry.k8s.io/build-image/go-runner:v2.3.0"},
     "registry.k8s.io/build-image/go-runner:v2.3.0", "KUBE_APISERVER_BASE_IMAGE"),
    ({"KUBE_GORUNNER_IMAGE": "m.example/go-runner:v9"}, "m.example/go-runner:v9", "KUBE_GORUNNER_IMAGE"),
    ({"KUBE_CROSS_VERSION": "v1.37.0-go1.26.0-bullseye.0"},
     "registry.k8s.io/build-image/kube-cross:v1.37.0-go1.26.0-bullseye.0", "KUBE_CROSS_VERSION"),
    ({"KUBE_BUILD_SETCAP_IMAGE": "m.example/setcap:old", "KUBE_BASE_IMAGE_REGISTRY": "m.example"},
     "m.example/setcap:old", "KUBE_BUILD_SETCAP_IMAGE"),
])
def test_environment_override_is_marked_and_named(newest, env, name, var):
    got = marks(newest, env)
    assert set(got) == {name}
    assert f"overridden in the environment by {var}" in got[name] and "build/dependencies.yaml:" in got[name]


def test_stale_script_is_marked_with_its_line(tmp_path):
    tree = materialize(tmp_path / "t", "workspace", "newest")
    common = tree / "build/common.sh"
    common.write_text(common.read_text().replace("__default_distroless_iptables_version=v0.11.0",
                                                 "__default_distroless_iptables_version=v0.10.0"))
    (tree / "build/pause/Makefile").write_text((tree / "build/pause/Makefile").read_text()
                                               .replace("TAG ?= 3.10.2", "TAG ?= 3.9"))
    got = marks(tree, {})
    iptables = got["registry.k8s.io/build-image/distroless-iptables:v0.10.0"]
    line = next(n for n, t in enumerate(common.read_text().splitlines(), 1) if "iptables_version=v0.10.0" in t)
    assert "stale script" in iptables and f"build/common.sh:{line}" in iptables and "declares v0.11.0" in iptables
    assert "stale script: build/pause/Makefile:" in got["registry.k8s.io/pause:3.9"]
    assert len(got) == 2


def test_cli_list_text_and_json(newest):
    env = {**os.environ, "KUBE_APISERVER_BASE_IMAGE": "registry.k8s.io/build-image/go-runner:v2.3.0"}
    listed = json.loads(inv("images", "--kube-root", str(newest), "--list", "--json", env=env, check=True).stdout)
    by_name = {i["name"]: i for i in listed}
    assert {i["role"] for i in listed} == {"kube-cross", "go-runner", "distroless-iptables", "setcap", "pause"}
    assert by_name[RUNNER]["used_by"] == ["kubectl"] and by_name[RUNNER]["source"].startswith("build/common.sh:")
    assert by_name[RUNNER]["carries"] == ["kube-log-runner"]
    assert "KUBE_APISERVER_BASE_IMAGE" in by_name["registry.k8s.io/build-image/go-runner:v2.3.0"]["mismatch"]
    assert "mismatch" not in by_name[RUNNER]
    text = inv("images", "--kube-root", str(newest), "--list", env=env, check=True).stdout
    assert "! differs from build/dependencies.yaml" in text and "(used by kube-apiserver)" in text
    assert "each image built on it also carries kube-log-runner" in text

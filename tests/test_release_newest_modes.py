"""`inv release` on the newest sample variant (v1.38-shaped), native and direct, against a real engine.

The newest tree's images (go-runner, distroless-iptables, setcap, a kube-cross named as its
build/common.sh names it) are small stand-ins under the names `inv images --list` resolves;
the two modes must make the same release, with kube-log-runner inside every server image.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import inv
from tests.test_release import keep_tars, labelled_containers, release, release_env, standin  # noqa: F401

pytestmark = [pytest.mark.engine, pytest.mark.go]


@pytest.fixture
def newest_tree(tmp_path: Path) -> Path:
    from workspace.sample import materialize
    from workspace.source import init_repo

    root = materialize(tmp_path / "newest", "workspace", "newest")
    init_repo(root, "v1.38.0-alpha.1")
    return root


def image_names(tree: Path) -> dict[str, str]:
    listed = json.loads(inv("images", "--kube-root", str(tree), "--list", "--json", check=True).stdout)
    return {item["role"]: item["name"] for item in listed}


def test_newest_tree_native_and_direct_make_the_same_release(newest_tree, standin, engine_client,  # noqa: F811
                                                             mkimage, docker_host, tmp_path):
    from build.release.compare import compare_releases, render

    names = image_names(newest_tree)
    for role in ("go-runner", "distroless-iptables", "setcap"):
        mkimage(names[role], f"newest base {role}")
    engine_client.api.tag(standin, *names["kube-cross"].rsplit(":", 1), force=True)
    # The stand-in's Go is the local one, not .go-version's: as with a real kube-cross, no download.
    env = release_env(GOTOOLCHAIN="local")
    made = {}
    for mode in ("native", "direct"):
        result = release(newest_tree, "--mode", mode, env=env)
        assert result.returncode == 0, f"{mode}: {result.stderr[-3000:]}"
        made[mode] = keep_tars(newest_tree, tmp_path / mode)
    comparison = compare_releases(made["native"], made["direct"])
    assert comparison.ok, "\n".join(render(comparison))
    assert labelled_containers(engine_client) == []

    server = made["native"] / "kubernetes-server-linux-amd64.tar.gz"
    with tarfile.open(server) as tf:
        bins = sorted(m.name.rsplit("/", 1)[1] for m in tf.getmembers() if "/server/bin/" in m.name and m.isfile())
        assert {"kube-apiserver", "kube-apiserver.tar", "kube-log-runner", "kubelet"} <= set(bins)
        tf.extract("kubernetes/server/bin/kube-apiserver.tar", tmp_path / "x", filter="data")
    # The server image was built FROM the go-runner kbuild resolved, with the setcap image as its
    # build argument, and carries kube-log-runner.
    loaded = engine_client.api.load_image(open(tmp_path / "x/kubernetes/server/bin/kube-apiserver.tar", "rb"))
    tag = next(line["stream"].split("Loaded image: ", 1)[1].strip() for line in loaded if "Loaded image" in
               line.get("stream", ""))
    info = engine_client.api.inspect_image(tag)
    assert info["Config"]["Labels"]["io.kbuild.sample.setcap-image"] == names["setcap"]
    listing = engine_client.containers.run(tag, ["ls", "/usr/local/bin"], entrypoint=[], network_mode="none",
                                           remove=True)
    assert {"kube-apiserver", "kube-log-runner"} <= set(listing.decode().split())
    stamp = json.loads(inv("version", "--kube-root", str(newest_tree), "--json", check=True).stdout)
    assert tag.endswith(":" + stamp["gitVersion"].replace("+", "_"))

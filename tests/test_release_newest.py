"""Script-mode preflight for trees whose build/release.sh runs kube-cross directly (v1.35+, the
sample's newest variant) versus the rsync trees (up to v1.34): decided from the tree's files."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from build.release.modes.script import mounts_tree, plan_script, publishes_port, uses_rsync_dance
from build.release.plan import ReleaseRequest
from build.release.preflight import checks_for, require_ok
from common.errors import KBError
from workspace.sample import materialize
from workspace.tree import KubeTree

# The shape of a v1.20-era build/common.sh: an rsync container with a published port (own words).
RSYNC_COMMON = """#!/usr/bin/env bash
readonly KUBE_RSYNC_PORT="${KUBE_RSYNC_PORT:-}"
function kube::build::start_rsyncd_container() {
  "${DOCKER[@]}" run -d -p 127.0.0.1:${KUBE_RSYNC_PORT}:8730 --name "${KUBE_RSYNC_CONTAINER_NAME}" image /rsyncd.sh
}
function kube::build::rsync() {
  rsync --archive "$@"
}
"""


class FakeEngine:
    """Just what the preflight asks of an engine."""

    host = "unix:///run/fake.sock"

    class api:  # noqa: N801 - mirrors docker-py's attribute name
        @staticmethod
        def networks(names: list[str]) -> list[dict[str, str]]:
            return []  # no bridge

    def image(self, name: str) -> None:
        return None


@pytest.fixture(scope="module")
def newest(tmp_path_factory: pytest.TempPathFactory) -> KubeTree:
    return KubeTree(materialize(tmp_path_factory.mktemp("newest") / "tree", "workspace", "newest"))


def env(**extra: str) -> dict[str, str]:
    import os

    return {"PATH": os.environ["PATH"], "KBUILD_MIN_DISK_GB": "0", "KBUILD_MIN_MEMORY_GB": "0", **extra}


def names(checks: list) -> list[str]:
    return [c.name for c in checks]


def test_newest_release_needs_no_rsync_and_no_port(newest):
    assert not uses_rsync_dance(newest) and not publishes_port(newest) and mounts_tree(newest)
    checks = checks_for(newest, ReleaseRequest(mode="script"), FakeEngine(), [], env(), check_images=False)
    assert "rsync" not in names(checks) and "bridge network" not in names(checks)
    said = {c.name: c for c in checks}
    assert {"docker", "tar", "tree mount"} <= set(said)
    assert "docker run" in said["docker"].detail and "no rsync, no published port" in said["docker"].detail
    assert str(newest.root) in said["tree mount"].detail and said["tree mount"].ok
    require_ok(checks, "script")


@pytest.mark.parametrize("host,ok", [
    ("unix:///var/run/docker.sock", True), ("tcp://127.0.0.1:2375", True), ("tcp://localhost:2376", True),
    ("tcp://build.example:2376", False), ("ssh://user@build.example", False),
])
def test_tree_mount_wants_an_engine_on_this_machine(newest, host, ok):
    checks = checks_for(newest, ReleaseRequest(mode="script", docker_host=host), FakeEngine(), [], env(),
                        check_images=False)
    mount = next(c for c in checks if c.name == "tree mount")
    assert mount.ok is ok
    if not ok:
        with pytest.raises(KBError) as err:
            require_ok(checks, "script")
        assert "tree mount" in err.value.message and "--mode native" in (err.value.hint or "")


def test_missing_docker_cli_is_named_with_the_fix(newest, tmp_path):
    (tmp_path / "bin").mkdir()
    for tool in ("bash", "tar"):
        (tmp_path / "bin" / tool).symlink_to(f"/bin/{tool}" if Path(f"/bin/{tool}").exists() else f"/usr/bin/{tool}")
    checks = checks_for(newest, ReleaseRequest(mode="script"), FakeEngine(), [],
                        env(PATH=str(tmp_path / "bin")), check_images=False)
    with pytest.raises(KBError) as err:
        require_ok(checks, "script")
    assert err.value.message.startswith("--mode script can't run: docker:") and "docker CLI" in (err.value.hint or "")


def test_rsync_tree_still_asks_for_rsync_and_the_bridge(tmp_path):
    root = materialize(tmp_path / "t", "gopath")
    (root / "build/common.sh").write_text(RSYNC_COMMON)
    (root / "build/release.sh").write_text("#!/usr/bin/env bash\nsource build/common.sh\nkube::build::rsync . dest\n")
    tree = KubeTree(root)
    assert uses_rsync_dance(tree) and publishes_port(tree) and not mounts_tree(tree)
    checks = checks_for(tree, ReleaseRequest(mode="script"), FakeEngine(), [], env(), check_images=False)
    assert "rsync" in names(checks) and "tree mount" not in names(checks)
    bridge = next(c for c in checks if c.name == "bridge network")
    assert not bridge.ok and "port" in bridge.detail


def test_rsync_in_a_comment_is_not_the_rsync_dance(tmp_path):
    root = materialize(tmp_path / "t", "workspace", "newest")
    common = root / "build/common.sh"
    common.write_text("# The old build synced the tree with rsync; this one mounts it.\n" + common.read_text())
    assert not uses_rsync_dance(KubeTree(root))


def test_script_mode_plans_the_variants_release_sh(newest):
    plan = plan_script(newest, ReleaseRequest(mode="script", quick=True),
                       {"KUBE_CROSS_IMAGE": "registry.k8s.io/build-image/kube-cross",
                        "KUBE_CROSS_VERSION": "v1.38.0-go1.27.1-bullseye.0"}, {})
    assert plan.argv == ("bash", str(newest.root / "build/release.sh"))
    assert plan.env["KUBE_CROSS_VERSION"] == "v1.38.0-go1.27.1-bullseye.0"


def test_variant_build_scripts_parse_and_source(newest, tmp_path):
    for rel in ("build/common.sh", "build/lib/release.sh", "build/release.sh"):
        subprocess.run(["bash", "-n", str(newest.root / rel)], check=True)
    # package-tarballs.sh (native and direct modes) sources common.sh and lib/release.sh together.
    probe = subprocess.run(["bash", "-c", "source build/common.sh; source build/lib/release.sh; "
                            "declare -F kube::release::package_tarballs kube::build::run_build_command"],
                           cwd=newest.root, capture_output=True, text=True, check=False,
                           env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert probe.returncode == 0, probe.stderr


def test_each_mode_adds_its_own_checks_around_the_engine_row(newest):
    remote = "tcp://build.example:2376"
    rows = {mode: checks_for(newest, ReleaseRequest(mode=mode, docker_host=remote), FakeEngine(), [], env(),
                             check_images=False) for mode in ("script", "direct", "native")}
    for mode, own in (("direct", "local engine"), ("native", "go")):
        got = names(rows[mode])
        assert got[:3] == ["bash", "build/lib/release.sh", "build/package-tarballs.sh"], got
        assert got.index("tar") < got.index("engine") < got.index(own) < got.index("disk"), got
    assert not next(c for c in rows["direct"] if c.name == "local engine").ok
    assert names(rows["script"])[:2] == ["bash", "build/release.sh"]
    assert "local engine" not in names(rows["script"]) + names(rows["native"])
    assert "go" not in names(rows["script"]) + names(rows["direct"])

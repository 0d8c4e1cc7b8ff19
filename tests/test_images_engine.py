"""`inv images` against a real dockerd and a real registry started for the test session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from images.refs import mirror_ref
from images.resolve import resolve
from tests._support import engine as eng
from tests.conftest import inv
from workspace.tree import KubeTree

pytestmark = pytest.mark.engine


def specs_of(tree: Path):
    return resolve(KubeTree(tree), {})


def clear(client, names) -> None:
    """Remove local tags so a test starts with the canonical names absent."""
    for name in names:
        try:
            client.api.remove_image(name, force=True)
        except Exception:  # noqa: BLE001 - absent is what we want
            pass


def seed_mirror(client, registry, prefix: str, specs, layout: str = "nested", skip=(), marker_suffix="") -> dict:
    """Push a small stand-in of each image to the registry under the mirror's name; return {canonical: digest}."""
    digests = {}
    for spec in specs:
        if spec.role in skip:
            continue
        ref = mirror_ref(spec.ref, f"{registry.address}/{prefix}", layout)
        eng.make_image(client, ref.name, spec.ref.name + marker_suffix)
        digests[spec.ref.name] = eng.push(client, ref.name)
        clear(client, [ref.name])
    return digests


def local_digest(client, name: str) -> str | None:
    try:
        image = client.api.inspect_image(name)
    except Exception:  # noqa: BLE001
        return None
    return next(iter(d.split("@")[1] for d in image.get("RepoDigests") or []), "")


@pytest.fixture
def tree(sample_repo):
    return sample_repo("gopath")


def test_mirror_and_retag_then_nothing_to_do(tree, registry, engine_client, docker_host):
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    pushed = seed_mirror(engine_client, registry, "m1", specs)
    first = inv("images", "--kube-root", str(tree), "--mirror", f"{registry.address}/m1", check=True)
    for spec in specs:
        assert local_digest(engine_client, spec.ref.short) == pushed[spec.ref.name], spec.ref.name
        assert spec.ref.name in first.stdout
    assert first.stdout.count("retagged") == len(specs)
    assert "\x1b[" not in first.stderr  # no animation codes off a terminal
    assert "retagged" in first.stderr  # one line per state change
    second = inv("images", "--kube-root", str(tree), "--mirror", f"{registry.address}/m1", check=True)
    rows = [line for line in second.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == len(specs) and all(" present " in r and r.endswith(" 0 B") for r in rows)


def test_falls_through_to_the_next_mirror_and_flat_layout(tree, registry, engine_client, docker_host):
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    seed_mirror(engine_client, registry, "partial", specs, skip=("kube-cross",))
    full = seed_mirror(engine_client, registry, "flatfull", specs, layout="flat")
    result = inv("images", "--kube-root", str(tree), "--layout", "flat", "--mirror", f"{registry.address}/nothing",
                 "--mirror", f"{registry.address}/flatfull", check=True)
    cross = next(s for s in specs if s.role == "kube-cross")
    assert local_digest(engine_client, cross.ref.short) == full[cross.ref.name]
    assert f"{registry.address}/flatfull/kube-cross:" in result.stdout
    # Nested mirror missing only kube-cross: the rest come from it, kube-cross from the next one.
    clear(engine_client, [s.ref.short for s in specs])
    nested_full = seed_mirror(engine_client, registry, "nestedfull", specs)
    result = inv("images", "--kube-root", str(tree), "--mirror", f"{registry.address}/partial",
                 "--mirror", f"{registry.address}/nestedfull", check=True)
    cross_line = next(line for line in result.stdout.splitlines() if line.startswith(cross.ref.name))
    assert f"{registry.address}/nestedfull/build-image/kube-cross" in cross_line
    assert local_digest(engine_client, cross.ref.short) == nested_full[cross.ref.name]


def test_mirror_serving_nothing_and_unreachable(tree, registry, engine_client, docker_host):
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    result = inv("images", "--kube-root", str(tree), "--mirror", f"{registry.address}/empty")
    assert result.returncode == 1
    assert f"{len(specs)} of {len(specs)} images failed" in result.stderr
    assert "not found" in result.stderr and f"{registry.address}/empty/build-image/kube-cross" in result.stderr
    assert "Traceback" not in result.stderr
    for spec in specs:
        assert local_digest(engine_client, spec.ref.short) is None  # nothing half-made
    dead = inv("images", "--kube-root", str(tree), "--only", "pause", "--mirror", "127.0.0.1:1/x")
    assert dead.returncode == 1 and "unreachable" in dead.stderr


def test_only_selects_images(tree, registry, engine_client, docker_host):
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    seed_mirror(engine_client, registry, "only", specs)
    inv("images", "--kube-root", str(tree), "--only", "pause", "--mirror", f"{registry.address}/only", check=True)
    for spec in specs:
        assert (local_digest(engine_client, spec.ref.short) is not None) == (spec.role == "pause")


def test_lock_refuses_a_different_digest_and_keeps_the_old_tag(tree, registry, engine_client, docker_host, tmp_path):
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    seed_mirror(engine_client, registry, "locked", specs)
    lock = tmp_path / "images.lock"
    inv("images", "--kube-root", str(tree), "--mirror", f"{registry.address}/locked", "--lock",
        "--lock-file", str(lock), check=True)
    pins = {i["name"]: i["digest"] for i in json.loads(lock.read_text())["images"]}
    assert set(pins) == {s.ref.name for s in specs}
    # The mirror now serves a different kube-cross under the same tag.
    cross = next(s for s in specs if s.role == "kube-cross")
    seed_mirror(engine_client, registry, "locked", [cross], marker_suffix="-changed")
    old_id = engine_client.api.inspect_image(cross.ref.short)["Id"]
    result = inv("images", "--kube-root", str(tree), "--only", "kube-cross", "--force",
                 "--mirror", f"{registry.address}/locked", "--lock-file", str(lock))
    assert result.returncode == 1 and "lock wants" in result.stderr
    assert engine_client.api.inspect_image(cross.ref.short)["Id"] == old_id
    # Without the lock the new one is taken.
    inv("images", "--kube-root", str(tree), "--only", "kube-cross", "--force",
        "--mirror", f"{registry.address}/locked", "--lock-file", str(tmp_path / "none.lock"), check=True)
    assert engine_client.api.inspect_image(cross.ref.short)["Id"] != old_id


def test_save_and_load_into_a_fresh_engine(tree, registry, engine_client, docker_host, fresh_engine, tmp_path):
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    seed_mirror(engine_client, registry, "saved", specs)
    inv("images", "--kube-root", str(tree), "--mirror", f"{registry.address}/saved", check=True)
    tar = tmp_path / "set.tar"
    inv("images", "--kube-root", str(tree), "--save", str(tar), check=True)
    assert tar.stat().st_size > 0
    env = {**os.environ, "DOCKER_HOST": fresh_engine.host}
    before = inv("images", "--kube-root", str(tree), "--mirror", "127.0.0.1:1/none", env=env)
    assert before.returncode == 1  # the fresh engine has none of them
    loaded = inv("images", "--kube-root", str(tree), "--load", str(tar), env=env, check=True)
    assert loaded.stdout.count(" present ") == len(specs)
    fresh = fresh_engine.client()
    for spec in specs:
        assert fresh.api.inspect_image(spec.ref.short)["Id"] == engine_client.api.inspect_image(spec.ref.short)["Id"]


def test_subtasks_sync_save_and_load_as_the_flags_do(tree, registry, engine_client, docker_host, fresh_engine,
                                                      tmp_path):
    """`inv images.sync`, `inv images.save FILE`, `inv images.load --file FILE`: the same actions as
    `inv images [--save|--load]`, chosen by the task's name instead of a flag."""
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    seed_mirror(engine_client, registry, "subtasks", specs)
    synced = inv("images.sync", "--kube-root", str(tree), "--mirror", f"{registry.address}/subtasks", check=True)
    assert synced.stdout.count("retagged") == len(specs)
    tar = tmp_path / "set.tar"
    inv("images.save", str(tar), "--kube-root", str(tree), check=True)
    assert tar.stat().st_size > 0
    env = {**os.environ, "DOCKER_HOST": fresh_engine.host}
    loaded = inv("images.load", "--file", str(tar), "--kube-root", str(tree), env=env, check=True)
    assert loaded.stdout.count(" present ") == len(specs)
    fresh = fresh_engine.client()
    for spec in specs:
        assert fresh.api.inspect_image(spec.ref.short)["Id"] == engine_client.api.inspect_image(spec.ref.short)["Id"]


def test_save_refuses_when_images_are_missing(tree, engine_client, docker_host, tmp_path):
    specs = specs_of(tree)
    clear(engine_client, [s.ref.short for s in specs])
    result = inv("images", "--kube-root", str(tree), "--save", str(tmp_path / "x.tar"))
    assert result.returncode != 0 and "not present" in result.stderr
    assert not (tmp_path / "x.tar").exists()


def test_real_tree_image_set_through_a_mirror(real_tree, registry, engine_client, docker_host):
    specs = specs_of(real_tree)
    assert {s.role for s in specs} == {"kube-cross", "go-runner", "debian-iptables", "pause"}
    clear(engine_client, [s.ref.short for s in specs])
    pushed = seed_mirror(engine_client, registry, "realtree", specs)
    inv("images", "--kube-root", str(real_tree), "--mirror", f"{registry.address}/realtree", check=True)
    for spec in specs:
        assert local_digest(engine_client, spec.ref.short) == pushed[spec.ref.name]
    assert local_digest(engine_client, "k8s.gcr.io/build-image/kube-cross:v1.15.5-1") is not None

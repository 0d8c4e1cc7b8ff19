"""`inv images --platform`: each base image's variant pulled by digest from the mirror's index."""

from __future__ import annotations

import pytest

from images.refs import mirror_ref
from images.resolve import resolve
from tests._support.index import forget, push_index
from tests.conftest import inv
from workspace.tree import KubeTree

pytestmark = pytest.mark.engine



@pytest.fixture
def seeded(sample_repo, registry, engine_client):
    """The sample tree, and its go-runner on the mirror as a two-variant index only."""
    tree = sample_repo("gopath")
    spec = next(s for s in resolve(KubeTree(tree), {}) if s.role == "go-runner")
    source = mirror_ref(spec.ref, f"{registry.address}/plat", "nested")
    digests = push_index(registry.address, source.path, source.tag,
                         {"linux/amd64": "go-runner amd64", "linux/arm64": "go-runner arm64"})
    forget(engine_client, spec.ref.short)
    yield tree, spec, digests
    forget(engine_client, spec.ref.short)


def _images(tree, registry, *extra: str, check: bool = True):
    return inv("images", "--kube-root", str(tree), "--mirror", f"{registry.address}/plat", "--only", "go-runner",
               *extra, check=check)


def test_each_platforms_variant_is_pulled_by_its_digest(seeded, registry, engine_client, docker_host):
    tree, spec, digests = seeded
    arm = _images(tree, registry, "--platform", "linux/arm64")
    image = engine_client.api.inspect_image(spec.ref.short)
    assert image["Architecture"] == "arm64" and image["Os"] == "linux"
    assert any(d.endswith(digests["linux/arm64"]) for d in image["RepoDigests"])
    assert digests["linux/arm64"][:19] in arm.stdout and "(linux/arm64)" in arm.stdout
    # The other platform: the tag moves to that variant (one tag holds one variant).
    _images(tree, registry, "--platform", "linux/amd64")
    image = engine_client.api.inspect_image(spec.ref.short)
    assert image["Architecture"] == "amd64"
    # Asked again for amd64: present, nothing pulled.
    again = _images(tree, registry, "--platform", "linux/amd64")
    assert " present " in again.stdout


def test_a_platform_the_index_lacks_is_one_error_naming_image_platform_and_mirror(seeded, registry, engine_client,
                                                                                  docker_host):
    tree, spec, _ = seeded
    got = _images(tree, registry, "--platform", "linux/s390x", check=False)
    assert got.returncode != 0 and "Traceback" not in got.stderr
    error = [line for line in got.stderr.splitlines() if line.startswith("ERROR")]
    assert len(error) == 1, got.stderr
    assert "linux/s390x" in error[0] and registry.address in error[0] and "go-runner" in error[0]
    assert "linux/arm64" in error[0] and "linux/amd64" in error[0]  # what the index does list
    with pytest.raises(Exception):  # noqa: B017 - nothing was tagged
        engine_client.api.inspect_image(spec.ref.short)


def test_bad_platform_and_lock_with_platform_are_refused_before_the_engine(seeded, registry):
    tree, _, _ = seeded
    bad = _images(tree, registry, "--platform", "linux", check=False)
    assert bad.returncode == 2 and "--platform 'linux'" in bad.stderr and "Traceback" not in bad.stderr
    both = _images(tree, registry, "--platform", "linux/arm64", "--lock", check=False)
    assert both.returncode == 2 and "--lock" in both.stderr


def test_list_shows_what_each_mirror_holds_per_platform(seeded, registry):
    """`inv images.list --mirror M --json`: the index's digest and each platform's; a mirror without the
    image says so for that image only."""
    import json

    tree, spec, digests = seeded
    got = inv("images.list", "--kube-root", str(tree), "--only", "go-runner", "--json",
              "--mirror", f"{registry.address}/plat", "--mirror", f"{registry.address}/empty")
    (row,) = json.loads(got.stdout)
    held, missing = row["mirrors"]
    assert held["mirror"] == registry.address and held["name"].startswith(f"{registry.address}/plat/")
    assert held["platforms"] == digests and held["digest"].startswith("sha256:")
    assert held["digest"] not in digests.values()  # the index's own digest, not a variant's
    assert "error" in missing and "/empty/" in missing["name"] and "platforms" not in missing
    text = inv("images.list", "--kube-root", str(tree), "--only", "go-runner", "--mirror", f"{registry.address}/plat")
    assert f"linux/arm64 {digests['linux/arm64'][:19]}" in text.stdout
    assert "mirrors" not in inv("images.list", "--kube-root", str(tree), "--only", "go-runner", "--json").stdout

"""Platforms and indexes (pure)."""

from __future__ import annotations

import json

import pytest

from common.errors import KBError, UsageError
from images.platforms import Platform, config_platform, entries, normalise, parse_platform, pick

D = {a: "sha256:" + c * 64 for a, c in (("amd64", "a"), ("arm64", "b"), ("arm", "c"), ("att", "d"))}


def _index(media: str = "application/vnd.oci.image.index.v1+json") -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D["amd64"], "size": 10,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D["arm64"], "size": 11,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D["arm"], "size": 12,
         "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": D["att"], "size": 13,
         "platform": {"os": "unknown", "architecture": "unknown"}},
    ]}).encode()


@pytest.mark.parametrize(("text", "want"), [
    ("linux/amd64", Platform("linux", "amd64")), ("linux/arm64", Platform("linux", "arm64")),
    ("linux/arm64/v8", Platform("linux", "arm64")), ("linux/aarch64", Platform("linux", "arm64")),
    ("linux/x86_64", Platform("linux", "amd64")), ("linux/arm", Platform("linux", "arm")),
    ("linux/arm/v7", Platform("linux", "arm")), ("linux/arm/v6", Platform("linux", "arm", "v6")),
    ("Linux/AMD64", Platform("linux", "amd64")), ("windows/amd64", Platform("windows", "amd64")),
])
def test_platforms_normalise_as_containerd_does(text: str, want: Platform) -> None:
    assert parse_platform(text) == want


@pytest.mark.parametrize("text", ["", "linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64", "linux/$(id)"])
def test_bad_platforms_are_refused_naming_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match="--platform"):
        parse_platform(text)


@pytest.mark.parametrize("media", ["application/vnd.oci.image.index.v1+json",
                                   "application/vnd.docker.distribution.manifest.list.v2+json"])
def test_pick_finds_each_platforms_digest(media: str) -> None:
    found = entries(_index(media), "go-runner")
    assert [str(e.platform) for e in found] == ["linux/amd64", "linux/arm64", "linux/arm"]  # no attestation
    assert pick(found, parse_platform("linux/arm64"), "go-runner", "m:5000").digest == D["arm64"]
    assert pick(found, parse_platform("linux/amd64"), "go-runner", "m:5000").digest == D["amd64"]


def test_a_missing_platform_names_image_platform_and_mirror() -> None:
    found = entries(_index(), "go-runner")
    with pytest.raises(KBError) as err:
        pick(found, parse_platform("linux/s390x"), "registry.k8s.io/go-runner:v1", "mirror.local:5000")
    assert "registry.k8s.io/go-runner:v1" in err.value.message and "linux/s390x" in err.value.message
    assert "mirror.local:5000" in err.value.message and "linux/arm64" in err.value.message


@pytest.mark.parametrize("doc", [b"not json", b"[]", json.dumps({"schemaVersion": 2, "layers": []}).encode(),
                                 json.dumps({"manifests": "x"}).encode()])
def test_not_an_index_is_one_error(doc: bytes) -> None:
    with pytest.raises(KBError, match="go-runner"):
        entries(doc, "go-runner")


def test_hostile_entries_are_skipped() -> None:
    doc = json.dumps({"manifests": [
        {"digest": "sha256:../../etc", "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": D["amd64"], "platform": {"os": ["linux"], "architecture": "amd64"}},
        {"digest": D["amd64"], "platform": "linux/amd64"},
        {"digest": D["amd64"], "platform": {"os": "linux", "architecture": "amd64;rm"}},
        {"digest": D["arm64"], "size": -5, "platform": {"os": "linux", "architecture": "arm64"}},
        7,
    ]}).encode()
    found = entries(doc, "x")
    assert [(str(e.platform), e.digest, e.size) for e in found] == [("linux/arm64", D["arm64"], 0)]


def test_config_platform_reads_config_and_inspect() -> None:
    assert config_platform({"os": "linux", "architecture": "arm64", "variant": "v8"}) == Platform("linux", "arm64")
    assert config_platform({"Os": "linux", "Architecture": "amd64"}) == Platform("linux", "amd64")
    assert config_platform({"os": "linux"}) is None
    assert normalise("linux", "arm", "v7") == Platform("linux", "arm")

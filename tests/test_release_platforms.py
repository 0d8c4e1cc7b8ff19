"""A release for linux/amd64 and linux/arm64 with the base images only on a mirror, as two-variant
indexes (kubernetes/kubernetes#102087): each arch's server images are built FROM that arch's variant.

The sample tree's packaging builds every arch's images FROM the same base names, one arch after the
other, as v1.20's does; the engine (20.10) holds one variant per tag and builds without emulation.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from images.refs import mirror_ref
from images.resolve import resolve
from tests._support.index import _digest, _layer, forget, push_index
from tests.conftest import inv
from tests.test_release import cross, standin  # noqa: F401 - fixtures (the kube-cross stand-in)
from workspace.tree import KubeTree

pytestmark = [pytest.mark.engine, pytest.mark.go]

PLATFORMS = ("linux/amd64", "linux/arm64")


def _release_env() -> dict[str, str]:
    # The sample's kubelet is a cgo binary; static here, so that arm64 needs no C cross compiler.
    return {**os.environ, "KBUILD_MIN_DISK_GB": "1", "KBUILD_MIN_MEMORY_GB": "0.5", "KUBE_STATIC_OVERRIDES": "kubelet"}


def _image_config(tar: Path) -> dict:
    with tarfile.open(tar) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
        return json.load(io.TextIOWrapper(tf.extractfile(manifest[0]["Config"])))  # type: ignore[arg-type]



@pytest.fixture
def mirrored(sample_repo, registry, engine_client, mkimage, docker_host):
    """The sample tree; its base images on the mirror only, as indexes of an amd64 and an arm64 variant
    (distinct one-file layers); locally, go-runner's name holds an unrelated image (to be given back)."""
    tree = sample_repo("gopath")
    mirror = f"{registry.address}/multi"
    bases = [s for s in resolve(KubeTree(tree), {}) if s.used_by and s.role != "pause"]
    markers: dict[str, dict[str, str]] = {}
    for spec in bases:
        variants = {p: f"{spec.role} {p}" for p in PLATFORMS}
        source = mirror_ref(spec.ref, mirror, "nested")
        push_index(registry.address, source.path, source.tag, variants)
        markers[spec.ref.short] = variants
        forget(engine_client, spec.ref.short)
    go_runner = next(s.ref.short for s in bases if s.role == "go-runner")
    before = mkimage(go_runner, "held before the release")
    yield tree, mirror, markers, go_runner, before
    for spec in bases:
        forget(engine_client, spec.ref.short)


def test_each_arch_is_built_on_its_own_variant_of_the_base_images(mirrored, engine_client):
    tree, mirror, markers, go_runner, before = mirrored
    got = inv("release", "--kube-root", str(tree), "--mode", "native", "--quick", "--mirror", mirror, "--json",
              *[a for p in PLATFORMS for a in ("--platform", p)], env=_release_env())
    assert got.returncode == 0, got.stderr[-3000:]
    assert got.stdout.lstrip().startswith("{"), got.stdout[:2000]
    printed = json.loads(got.stdout)  # --json: the report alone on stdout, the scripts' lines on stderr
    assert printed["mode"] == "native" and set(printed["platform_bases"]) == set(PLATFORMS)
    tars = sorted((tree / "_output/release-images").glob("*/*.tar"))
    assert {t.parent.name for t in tars} == {"amd64", "arm64"}
    # Which base each image was built on: its first layer is the variant's one-file layer.
    layer_of = {_digest(_layer(marker)[0]): (name, platform)
                for name, variants in markers.items() for platform, marker in variants.items()}
    for tar in tars:
        arch = tar.parent.name
        config = _image_config(tar)
        assert config["architecture"] == arch and config["os"] == "linux", tar
        base = layer_of.get(config["rootfs"]["diff_ids"][0])
        assert base is not None and base[1] == f"linux/{arch}", (tar, base)
    report = json.loads((tree / "_output/release-tars/release-report.json").read_text())
    for platform in PLATFORMS:
        assert set(report["platform_bases"][platform]) == set(markers)
    assert "PATH" not in report["environment"]  # the shim's PATH is not the user's business
    assert "base images now the linux/arm64 variants" in got.stderr
    # The release's timeline: its phases, and native's go commands inside the build phase.
    events = json.loads((tree / "_output/kbuild/trace.json").read_text())["traceEvents"]
    phases = {e["name"]: e for e in events if e["cat"] == "release"}
    assert {"images", "images-platforms", "build", "package"} <= set(phases)
    build = phases["build"]
    go = [e for e in events if e["cat"] == "go"]
    assert {e["name"].rsplit(" ", 1)[-1] for e in go} == set(PLATFORMS)
    assert all(build["ts"] <= e["ts"] <= build["ts"] + build["dur"] for e in go)
    # report.html beside the JSON report, opened in a real headless browser.
    from tests._support.browser import open_page

    opened = open_page(tree / "_output/release-tars/report.html", tree / "_output/shot.png")
    assert "<h2>timeline</h2>" in opened.dom and "kubernetes-server-linux-arm64.tar.gz" in opened.dom
    assert "platform_bases" in opened.dom and "kube-apiserver kubelet kubectl linux/arm64 (go)" in opened.dom
    assert not [m for m in opened.console if "rror" in m or "Uncaught" in m], opened.console
    png = opened.screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a page drawn, not a blank one
    # The name that held something before the release holds it again.
    assert engine_client.api.inspect_image(go_runner)["Id"] == before


def test_without_the_variants_a_wrong_arch_image_is_refused(mirrored, engine_client):
    """--skip-images: the base names hold the engine's own variant only; the arm64 images come out amd64,
    and the release says so in one line instead of shipping them."""
    tree, mirror, markers, _, _ = mirrored
    for name in markers:
        forget(engine_client, name)
    pulled = inv("images", "--kube-root", str(tree), "--mirror", mirror, "--only", "go-runner",
                 "--only", "debian-iptables", env=_release_env())
    assert pulled.returncode == 0, pulled.stderr
    got = inv("release", "--kube-root", str(tree), "--mode", "native", "--quick", "--skip-images",
              "--platform", "linux/arm64", env=_release_env(), check=False)
    assert got.returncode != 0 and "Traceback" not in got.stderr
    errors = [line for line in got.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1, got.stderr[-2000:]
    assert "release-images/arm64/" in errors[0] and "linux/amd64, not arm64" in errors[0]
    assert not (tree / "_output/release-tars/SHA256SUMS").exists()


@pytest.mark.usefixtures("cross")
def test_script_mode_builds_each_arch_on_its_variant_too(mirrored):
    """release.sh's own packaging (on the host, after its build container) goes through the same shim."""
    tree, mirror, markers, _, _ = mirrored
    got = inv("release", "--kube-root", str(tree), "--mode", "script", "--quick", "--mirror", mirror,
              *[a for p in PLATFORMS for a in ("--platform", p)], env=_release_env())
    assert got.returncode == 0, got.stderr[-3000:]
    layer_of = {_digest(_layer(marker)[0]): platform
                for variants in markers.values() for platform, marker in variants.items()}
    tars = sorted((tree / "_output/release-images").glob("*/*.tar"))
    assert {t.parent.name for t in tars} == {"amd64", "arm64"}
    for tar in tars:
        config = _image_config(tar)
        assert config["architecture"] == tar.parent.name
        assert layer_of[config["rootfs"]["diff_ids"][0]] == f"linux/{tar.parent.name}"

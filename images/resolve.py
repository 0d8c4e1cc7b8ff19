"""The image set a tree's build uses, read from the tree itself (no network, no docker).

kube-cross from build/build-image/cross/VERSION and the Dockerfile's FROM line
(or KUBE_CROSS_IMAGE/KUBE_CROSS_VERSION in newer build/common.sh); the server
base images from build/common.sh's docker-wrapped binaries list; pause from
build/pause/Makefile and the kubelet's runtime default. Overrides in the
environment change the answer exactly where the tree's scripts read them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from common.errors import TreeError, UsageError
from images.refs import ImageRef, parse_ref
from images.shellvars import Vars
from workspace.tree import KubeTree

# Where kubelets of each era keep the default sandbox (pause) image.
PAUSE_DEFAULT_FILES = (
    "cmd/kubelet/app/options/container_runtime.go",
    "pkg/kubelet/dockershim/docker_sandbox.go",
    "pkg/kubelet/dockertools/docker.go",
    "cmd/kubeadm/app/constants/constants.go",
    "cmd/kubeadm/app/constants/constants_unix.go",
)


@dataclass(frozen=True)
class ImageSpec:
    """One image the build expects, by its canonical name, and where that name came from."""

    role: str                      # kube-cross, go-runner, debian-iptables, distroless-iptables, pause, ...
    ref: ImageRef
    source: str                    # file:line (or "environment: VAR") the name was read from
    used_by: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.ref.name

    def as_dict(self) -> dict[str, object]:
        return {"role": self.role, "name": self.ref.name, "source": self.source, "used_by": list(self.used_by)}


def _lineno(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _ref(text: str, where: str) -> ImageRef:
    try:
        return parse_ref(text)
    except UsageError:
        raise TreeError(f"{where}: {text!r} is not an image reference") from None


def _tree_vars(tree: KubeTree, environ: Mapping[str, str]) -> Vars:
    v = Vars(environ, tree.root)
    for rel in ("build/common.sh", "build/lib/release.sh"):
        v.read_file(tree.root / rel, rel)
    return v


def kube_cross(tree: KubeTree, v: Vars) -> ImageSpec | None:
    """The build image: newer trees name it in build/common.sh; older ones in the Dockerfile + VERSION."""
    if _reads(tree, "KUBE_CROSS_IMAGE") and _reads(tree, "KUBE_CROSS_VERSION"):
        image, version = v.values.get("KUBE_CROSS_IMAGE"), v.values.get("KUBE_CROSS_VERSION")
        if image and version:
            where = v.origin.get("KUBE_CROSS_IMAGE", "build/common.sh")
            return ImageSpec("kube-cross", _ref(f"{image}:{version}", where), where)
    # build/common.sh's KUBE_BUILD_IMAGE_CROSS_TAG is what the build uses (v1.2-1.3 hard-code it
    # there and ignore cross/VERSION); later trees set it from cross/VERSION.
    tag_file = tree.read("build/build-image/cross/VERSION")
    tag = v.values.get("KUBE_BUILD_IMAGE_CROSS_TAG") or (tag_file.strip() if tag_file else None)
    tag_source = v.origin.get("KUBE_BUILD_IMAGE_CROSS_TAG", "build/build-image/cross/VERSION") \
        if v.values.get("KUBE_BUILD_IMAGE_CROSS_TAG") else "build/build-image/cross/VERSION"
    dockerfile = tree.read("build/build-image/Dockerfile") or ""
    m = re.search(r"^FROM\s+(\S+)", dockerfile, re.M)
    if not m:
        return None
    image = m.group(1)
    where = f"build/build-image/Dockerfile:{_lineno(dockerfile, m.start())}"
    if ":" in image.rsplit("/", 1)[-1]:
        repo, _, literal = image.rpartition(":")
        if literal == "KUBE_BUILD_IMAGE_CROSS_TAG" or re.fullmatch(r"\$\{?\w+\}?", literal):
            if not tag:
                raise TreeError("build/build-image/cross/VERSION is missing: the kube-cross tag is unknown")
            return ImageSpec("kube-cross", _ref(f"{repo}:{tag}", where), f"{where} + {tag_source}")
        return ImageSpec("kube-cross", _ref(image, where), where)
    return ImageSpec("kube-cross", _ref(f"{image}:{tag}" if tag else image, where), where)


def _reads(tree: KubeTree, name: str) -> bool:
    return name in (tree.read("build/common.sh") or "")


def _wrapped_list(text: str) -> tuple[str, int] | None:
    """The text (and its offset) of the docker-wrapped binaries list: the v1.2 array, the amd64 arm
    of v1.3's per-arch case, or get_docker_wrapped_binaries' body."""
    m = re.search(r"KUBE_DOCKER_WRAPPED_BINARIES=\((.*?)\)", text, re.S)
    if m:
        return m.group(1), m.start(1)
    m = re.search(r"get_docker_wrapped_binaries\(\)\s*\{(.*?)^\}", text, re.M | re.S)
    if not m:
        return None
    arm = re.search(r'"?amd64"?\)(.*?);;', m.group(1), re.S)
    if arm:
        return arm.group(1), m.start(1) + arm.start(1)
    return m.group(1), m.start(1)


def base_images(tree: KubeTree, v: Vars) -> list[ImageSpec]:
    """Server images' bases from the docker-wrapped binaries list ("binary,image" items)."""
    text = tree.read("build/common.sh") or ""
    found_list = _wrapped_list(text)
    if not found_list:
        return []
    body, offset = found_list
    # The function's own assignments (local versions) apply before its list.
    scope = Vars({}, tree.root)
    scope.values, scope.origin = dict(v.values), dict(v.origin)
    fn = re.search(r"get_docker_wrapped_binaries\(\)\s*\{(.*?)^\}", text, re.M | re.S)
    for lm in re.finditer(r"^\s*(?:local\s+(?:-r\s+)?)?([a-z_]\w*)=([^\s(][^\n]*)$", fn.group(1) if fn else "", re.M):
        value = scope.expand_word(lm.group(2).strip())
        if value is not None:
            scope.values[lm.group(1)] = value
    found: dict[str, ImageSpec] = {}
    for im in re.finditer(r"""^\s*["']?([a-z][\w.-]*),([^"'\s)]+)["']?""", body, re.M):
        binary, expr = im.group(1), im.group(2)
        where = f"build/common.sh:{_lineno(text, offset + im.start(1))}"
        try:
            image = scope.expand(expr)
        except ValueError:
            continue  # computed by a shell function we don't evaluate
        if not image:
            continue
        ref = _ref(image, where)
        role = ref.path.rsplit("/", 1)[-1]
        prev = found.get(ref.name)
        used = (*prev.used_by, binary) if prev else (binary,)
        found[ref.name] = ImageSpec(role, ref, prev.source if prev else where, used)
    return list(found.values())


def addon_images(tree: KubeTree) -> list[ImageSpec]:
    """v1.2's KUBE_ADDON_PATHS: images (pause, kube-registry-proxy) the release prepopulates."""
    text = tree.read("build/common.sh") or ""
    m = re.search(r"KUBE_ADDON_PATHS=\((.*?)\)", text, re.S)
    if not m:
        return []
    specs = []
    for im in re.finditer(r"^\s*[\"']?([\w./:-]+:[\w.-]+)[\"']?\s*$", m.group(1), re.M):
        where = f"build/common.sh:{_lineno(text, m.start(1) + im.start(1))}"
        ref = _ref(im.group(1), where)
        specs.append(ImageSpec(ref.path.rsplit("/", 1)[-1], ref, where))
    return specs


def pause_images(tree: KubeTree, v: Vars) -> list[ImageSpec]:
    """The pause image build/pause builds, and the kubelet's default sandbox image."""
    specs: list[ImageSpec] = []
    makefile = tree.read("build/pause/Makefile") or ""
    tag_m = re.search(r"^TAG\s*\??[:]?=\s*(\S+)", makefile, re.M)
    if tag_m:
        prefix_m = re.search(r"^PREFIX\s*\??[:]?=\s*(\S+)", makefile, re.M)
        registry = prefix_m.group(1) if prefix_m and "$" not in prefix_m.group(1) else _registry_of_era(tree, v)
        where = f"build/pause/Makefile:{_lineno(makefile, tag_m.start())}"
        specs.append(ImageSpec("pause", _ref(f"{registry}/pause:{tag_m.group(1)}", where), where))
    for rel in PAUSE_DEFAULT_FILES:
        text = tree.read(rel)
        if not text:
            continue
        full = re.search(r'"((?:[\w.-]+(?::\d+)?/)+pause(?:-amd64)?:[\w.-]+)"', text)
        if full:
            where = f"{rel}:{_lineno(text, full.start())}"
            specs.append(ImageSpec("pause", _ref(full.group(1), where), where, ("kubelet",)))
            break
        name_m = re.search(r'(?:PodSandboxImageName|PauseImageName)\w*\s*=\s*"([^"]+)"', text)
        ver_m = re.search(r'(?:PodSandboxImageVersion|PauseVersion)\w*\s*=\s*"([^"]+)"', text)
        if ver_m:
            name = name_m.group(1) if name_m else f"{_registry_of_era(tree, v)}/pause"
            where = f"{rel}:{_lineno(text, ver_m.start())}"
            specs.append(ImageSpec("pause", _ref(f"{name}:{ver_m.group(1)}", where), where, ("kubelet",)))
            break
    merged: dict[str, ImageSpec] = {}
    for spec in specs:
        if spec.ref.name in merged:
            prev = merged[spec.ref.name]
            merged[spec.ref.name] = ImageSpec(prev.role, prev.ref, f"{prev.source}, {spec.source}",
                                              prev.used_by + spec.used_by)
        else:
            merged[spec.ref.name] = spec
    return list(merged.values())


def _registry_of_era(tree: KubeTree, v: Vars) -> str:
    """The registry the tree promotes to, from where its kube-cross lives."""
    cross = kube_cross(tree, v)
    if cross and cross.ref.registry == "gcr.io":
        return "gcr.io/google_containers"
    return cross.ref.registry if cross else "registry.k8s.io"


def resolve(tree: KubeTree, environ: Mapping[str, str]) -> list[ImageSpec]:
    """Every image the tree's build expects, deduplicated, in a stable order."""
    v = _tree_vars(tree, environ)
    specs: list[ImageSpec] = []
    cross = kube_cross(tree, v)
    if cross:
        specs.append(cross)
    specs += base_images(tree, v)
    specs += addon_images(tree)
    specs += pause_images(tree, v)
    seen: set[str] = set()
    out = []
    for spec in specs:
        if spec.ref.name not in seen:
            seen.add(spec.ref.name)
            out.append(spec)
    if not out:
        raise TreeError(f"{tree.root}: no image pins found (no build/build-image, build/common.sh or build/pause)")
    return out


def as_json(specs: list[ImageSpec]) -> str:
    return json.dumps([s.as_dict() for s in specs], indent=2)

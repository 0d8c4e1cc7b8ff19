"""The image set a tree's build uses, read from the tree itself (no network, no docker).

kube-cross from build/build-image/cross/VERSION and the Dockerfile's FROM line
(or KUBE_CROSS_IMAGE/KUBE_CROSS_VERSION in newer build/common.sh); the server
base images from build/common.sh's docker-wrapped binaries list, with the
newest trees' ``__default_base_image`` evaluated as bash would (statically
linked → KUBE_GORUNNER_IMAGE, else the dynamic base); the setcap image where
build/lib/release.sh passes it to the server image builds; pause from
build/pause/Makefile and the kubelet's runtime default. Overrides in the
environment change the answer exactly where the tree's scripts read them.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from common.errors import TreeError, UsageError
from images.refs import ImageRef, parse_ref
from workspace import shell
from workspace.shell import Call, Vars, single_ref
from workspace.targetlists import statically_linked
from workspace.tree import KubeTree

# Where kubelets of each era keep the default sandbox (pause) image.
PAUSE_DEFAULT_FILES = (
    "cmd/kubelet/app/options/container_runtime.go",
    "pkg/kubelet/dockershim/docker_sandbox.go",
    "pkg/kubelet/dockertools/docker.go",
    "cmd/kubeadm/app/constants/constants.go",
    "cmd/kubeadm/app/constants/constants_unix.go",
)
# The package path common.sh hands to __default_base_image for a binary.
CMD_PACKAGE = "k8s.io/kubernetes/cmd/{}"
WRAPPED_FUNCTION = "kube::build::get_docker_wrapped_binaries"
# A docker-wrapped binaries item: "<binary>,<base image>".
_WRAPPED_ITEM = re.compile(r"([a-z][\w.-]*),(\S+)")


@dataclass(frozen=True)
class ImageSpec:
    """One image the build expects, by its canonical name, and where that name came from."""

    role: str                      # kube-cross, go-runner, debian-iptables, distroless-iptables, pause, ...
    ref: ImageRef
    source: str                    # file:line (or "environment: VAR") the name was read from
    used_by: tuple[str, ...] = field(default_factory=tuple)
    via: tuple[str, ...] = ()      # per binary: how its base image was chosen (newest trees)
    environment: tuple[str, ...] = ()  # environment variables that shaped the name
    files: tuple[str, ...] = ()    # tree files the name was read from
    carries: tuple[str, ...] = ()  # binaries that go into each image built on this one (kube-log-runner)
    notes: tuple[str, ...] = ()
    mismatch: str = ""             # set by images.declared: disagrees with build/dependencies.yaml

    @property
    def name(self) -> str:
        return self.ref.name

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"role": self.role, "name": self.ref.name, "source": self.source,
                                  "used_by": list(self.used_by)}
        for key in ("via", "environment", "files", "carries", "notes"):
            value = getattr(self, key)
            if value:
                out[key] = list(value)
        if self.mismatch:
            out["mismatch"] = self.mismatch
        return out


def _ref(text: str, where: str) -> ImageRef:
    try:
        return parse_ref(text)
    except UsageError:
        raise TreeError(f"{where}: {text!r} is not an image reference") from None


def _tree_vars(tree: KubeTree, environ: Mapping[str, str], host_os: str | None = None) -> Vars:
    v = Vars(environ, tree.root)
    common = tree.read("build/common.sh") or ""
    for chooser in static_choosers(common):
        v.functions[chooser.function] = _chooser_impl(tree, chooser, environ, host_os or sys.platform)
    for rel in ("build/common.sh", "build/lib/release.sh"):
        v.read_file(tree.root / rel, rel)
    return v


@dataclass(frozen=True)
class StaticChooser:
    """A build/common.sh function shaped like __default_base_image: one echo per linking mode."""

    function: str
    static: str          # the word echoed for a statically linked package
    dynamic: str
    static_line: int
    dynamic_line: int


# The test of such a function: is the package it was given statically linked?
_STATIC_TEST = re.compile(r"kube::golang::is_statically_linked\s+\"?\$\{?1\}?\"?")


def static_choosers(common: str) -> list[StaticChooser]:
    """The functions that pick an image by kube::golang::is_statically_linked (v1.35+ __default_base_image)."""
    found = []
    for fn in shell.functions(common).values():
        choice = shell.conditional_echo(common, fn)
        if choice and _STATIC_TEST.fullmatch(choice.test):
            found.append(StaticChooser(fn.name, choice.then, choice.otherwise, choice.then_line,
                                       choice.otherwise_line))
    return found


def _chooser_impl(tree: KubeTree, chooser: StaticChooser, environ: Mapping[str, str], host_os: str
                  ) -> Callable[[Vars, list[str]], tuple[str, Call]]:
    statics = tree.static_binaries
    fn = shell.function(tree.golang_sh, "kube::golang::is_statically_linked")
    body = shell.code(fn.body) if fn else ""
    darwin_rule = "GOHOSTOS" in body and "darwin" in body

    def impl(v: Vars, args: list[str]) -> tuple[str, Call]:
        if not args:
            raise ValueError(f"{chooser.function} without a package")
        static, why, decided_by = statically_linked(args[0], statics, environ,
                                                    darwin_kubectl_rule=darwin_rule, host_os=host_os)
        if decided_by:
            v.note_env(decided_by)
        word, line = (chooser.static, chooser.static_line) if static else (chooser.dynamic, chooser.dynamic_line)
        value = v.expand_word(word)
        if value is None:
            raise ValueError(f"{chooser.function}: cannot expand {word}")
        chose = single_ref(word) or word
        return value, Call(chooser.function, tuple(args), chose, why, f"build/common.sh:{line}")

    return impl


def kube_cross(tree: KubeTree, v: Vars) -> ImageSpec | None:
    """The build image: newer trees name it in build/common.sh; older ones in the Dockerfile + VERSION."""
    if _reads(tree, "KUBE_CROSS_IMAGE") and _reads(tree, "KUBE_CROSS_VERSION"):
        image, version = v.values.get("KUBE_CROSS_IMAGE"), v.values.get("KUBE_CROSS_VERSION")
        if image and version:
            where = v.origin.get("KUBE_CROSS_IMAGE", "build/common.sh")
            _, env, read, _ = v.trace("${KUBE_CROSS_IMAGE}:${KUBE_CROSS_VERSION}")
            return ImageSpec("kube-cross", _ref(f"{image}:{version}", where), where,
                             environment=tuple(sorted(env)), files=tuple(sorted(read)))
    # build/common.sh's KUBE_BUILD_IMAGE_CROSS_TAG is what the build uses (v1.2-1.3 hard-code it
    # there and ignore cross/VERSION); later trees set it from cross/VERSION.
    tag_file = tree.read("build/build-image/cross/VERSION")
    tag = v.values.get("KUBE_BUILD_IMAGE_CROSS_TAG") or (tag_file.strip() if tag_file else None)
    tag_source = v.origin.get("KUBE_BUILD_IMAGE_CROSS_TAG", "build/build-image/cross/VERSION") \
        if v.values.get("KUBE_BUILD_IMAGE_CROSS_TAG") else "build/build-image/cross/VERSION"
    tag_files = tuple(sorted(v.file_deps.get("KUBE_BUILD_IMAGE_CROSS_TAG", frozenset())
                             | {tag_source.rsplit(":", 1)[0]}))
    dockerfile = tree.read("build/build-image/Dockerfile") or ""
    m = re.search(r"^FROM\s+(\S+)", dockerfile, re.M)
    if not m:
        return None
    image = m.group(1)
    where = f"build/build-image/Dockerfile:{shell.lineno(dockerfile, m.start())}"
    files = ("build/build-image/Dockerfile",)
    if ":" in image.rsplit("/", 1)[-1]:
        repo, _, literal = image.rpartition(":")
        if literal == "KUBE_BUILD_IMAGE_CROSS_TAG" or re.fullmatch(r"\$\{?\w+\}?", literal):
            if not tag:
                raise TreeError("build/build-image/cross/VERSION is missing: the kube-cross tag is unknown")
            return ImageSpec("kube-cross", _ref(f"{repo}:{tag}", where), f"{where} + {tag_source}",
                             files=files + tag_files)
        return ImageSpec("kube-cross", _ref(image, where), where, files=files)
    return ImageSpec("kube-cross", _ref(f"{image}:{tag}" if tag else image, where), where,
                     files=files + (tag_files if tag else ()))


def _reads(tree: KubeTree, name: str) -> bool:
    """build/common.sh's code (not a comment) names the variable."""
    return name in shell.code(tree.read("build/common.sh") or "")


def _wrapped_list(text: str) -> list[tuple[str, str, int]] | None:
    """The docker-wrapped binaries list as (binary, image expression, offset in ``text``): the v1.2
    array, or the targets get_docker_wrapped_binaries echoes (v1.3: those of its amd64 case arm)."""
    span = shell.array_span(text, "KUBE_DOCKER_WRAPPED_BINARIES")
    if span is None:
        fn = shell.function(text, WRAPPED_FUNCTION)
        if fn is None:
            return None
        arm = shell.case_arm(fn.span, "amd64") or fn.span
        span = shell.array_span(arm.text, "targets", arm.offset) or arm
    return [(m.group(1), m.group(2), offset) for word, offset in shell.array_words(span)
            if (m := _WRAPPED_ITEM.fullmatch(word))]


def _how(binary: str, var: str, v: Vars, where: str) -> str:
    """In words, how ``var`` (a docker-wrapped binary's base image variable) got its value."""
    if var in v.from_env or v.origin.get(var) == "environment":
        return f"{binary}: {v.from_env.get(var, var)} from the environment"
    call = v.calls.get(var)
    if call:
        return f"{binary}: {var} = $({call.function} {' '.join(call.args)}): {call.why} -> {call.chose} ({where})"
    if var in v.alias:
        return f"{binary}: {var} -> {v.alias[var]} ({where})"
    return f"{binary}: {var} ({where})"


def base_images(tree: KubeTree, v: Vars) -> list[ImageSpec]:
    """Server images' bases from the docker-wrapped binaries list ("binary,image" items)."""
    text = tree.read("build/common.sh") or ""
    items = _wrapped_list(text)
    if not items:
        return []
    # The function's own assignments (local versions) apply before its list.
    scope = v.copy()
    fn = shell.function(text, WRAPPED_FUNCTION)
    for assignment in shell.assignments(fn.body if fn else ""):
        if not re.match(r"[a-z_]", assignment.name):
            continue
        value = scope.expand_word(assignment.word)
        if value is not None:
            scope.values[assignment.name] = value
    carried = _carried_into_server_images(tree)
    found: dict[str, ImageSpec] = {}
    for binary, expr, offset in items:
        where = f"build/common.sh:{shell.lineno(text, offset)}"
        try:
            image, env, files, _ = scope.trace(expr)
        except ValueError:
            continue  # computed by a shell function we don't evaluate
        if not image:
            continue
        var = single_ref(expr)
        via: tuple[str, ...] = ()
        if var:
            _, named_at = scope.source_of(var)
            where = named_at or where
            via = (_how(binary, var, scope, where),)
        ref = _ref(image, where)
        role = ref.path.rsplit("/", 1)[-1]
        prev = found.get(ref.name)
        if prev:
            found[ref.name] = ImageSpec(role, ref, prev.source, (*prev.used_by, binary), prev.via + via,
                                        tuple(sorted(set(prev.environment) | env)),
                                        tuple(sorted(set(prev.files) | files | {"build/common.sh"})), prev.carries)
        else:
            found[ref.name] = ImageSpec(role, ref, where, (binary,), via, tuple(sorted(env)),
                                        tuple(sorted(files | {"build/common.sh"})), carried)
    return list(found.values())


def _carried_into_server_images(tree: KubeTree) -> tuple[str, ...]:
    """kube-log-runner, where kube::golang::server_image_targets lists it (v1.36+): it is no image
    of its own but goes into every server image."""
    targets = shell.function_targets(tree.golang_sh, "kube::golang::server_image_targets") or []
    return ("kube-log-runner",) if any(t.rsplit("/", 1)[-1] == "kube-log-runner" for t in targets) else ()


def setcap_image(tree: KubeTree, v: Vars, bases: list[ImageSpec]) -> ImageSpec | None:
    """KUBE_BUILD_SETCAP_IMAGE, where build/lib/release.sh passes it to the server image builds."""
    lib = shell.code(tree.read("build/lib/release.sh") or "")
    m = re.search(r"""--build-arg[ =]+["']?(\w+)=["']?\$\{?KUBE_BUILD_SETCAP_IMAGE\}?""", lib)
    if not m or not v.values.get("KUBE_BUILD_SETCAP_IMAGE"):
        return None
    image, env, files, _ = v.trace("${KUBE_BUILD_SETCAP_IMAGE}")
    _, where = v.source_of("KUBE_BUILD_SETCAP_IMAGE")
    where = where or "build/common.sh"
    order = [b for s in bases for b in s.used_by]
    wrapped = _wrapped_list(tree.read("build/common.sh") or "")
    if wrapped:
        listed = [binary for binary, _, _ in wrapped]
        order.sort(key=lambda b: listed.index(b) if b in listed else len(listed))
    used: dict[str, None] = dict.fromkeys(order)
    note = f"--build-arg {m.group(1)} of every server image build (build/lib/release.sh:{shell.lineno(lib, m.start())})"
    return ImageSpec("setcap", _ref(image, where), where, tuple(used), (), tuple(sorted(env)),
                     tuple(sorted(files | {"build/lib/release.sh"})), (), (note,))


def addon_images(tree: KubeTree) -> list[ImageSpec]:
    """v1.2's KUBE_ADDON_PATHS: images (pause, kube-registry-proxy) the release prepopulates."""
    text = tree.read("build/common.sh") or ""
    span = shell.array_span(text, "KUBE_ADDON_PATHS")
    if span is None:
        return []
    specs = []
    for word, offset in shell.array_words(span):
        if not re.fullmatch(r"[\w./:-]+:[\w.-]+", word):
            continue
        where = f"build/common.sh:{shell.lineno(text, offset)}"
        ref = _ref(word, where)
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
        where = f"build/pause/Makefile:{shell.lineno(makefile, tag_m.start())}"
        specs.append(ImageSpec("pause", _ref(f"{registry}/pause:{tag_m.group(1)}", where), where,
                               files=("build/pause/Makefile",)))
    for rel in PAUSE_DEFAULT_FILES:
        text = tree.read(rel)
        if not text:
            continue
        full = re.search(r'"((?:[\w.-]+(?::\d+)?/)+pause(?:-amd64)?:[\w.-]+)"', text)
        if full:
            where = f"{rel}:{shell.lineno(text, full.start())}"
            specs.append(ImageSpec("pause", _ref(full.group(1), where), where, ("kubelet",), files=(rel,)))
            break
        name_m = re.search(r'(?:PodSandboxImageName|PauseImageName)\w*\s*=\s*"([^"]+)"', text)
        ver_m = re.search(r'(?:PodSandboxImageVersion|PauseVersion)\w*\s*=\s*"([^"]+)"', text)
        if ver_m:
            name = name_m.group(1) if name_m else f"{_registry_of_era(tree, v)}/pause"
            where = f"{rel}:{shell.lineno(text, ver_m.start())}"
            specs.append(ImageSpec("pause", _ref(f"{name}:{ver_m.group(1)}", where), where, ("kubelet",),
                                   files=(rel,)))
            break
    merged: dict[str, ImageSpec] = {}
    for spec in specs:
        if spec.ref.name in merged:
            prev = merged[spec.ref.name]
            merged[spec.ref.name] = ImageSpec(prev.role, prev.ref, f"{prev.source}, {spec.source}",
                                              prev.used_by + spec.used_by, files=prev.files + spec.files)
        else:
            merged[spec.ref.name] = spec
    return list(merged.values())


def _registry_of_era(tree: KubeTree, v: Vars) -> str:
    """The registry the tree promotes to, from where its kube-cross lives."""
    cross = kube_cross(tree, v)
    if cross and cross.ref.registry == "gcr.io":
        return "gcr.io/google_containers"
    return cross.ref.registry if cross else "registry.k8s.io"


def resolve(tree: KubeTree, environ: Mapping[str, str], host_os: str | None = None) -> list[ImageSpec]:
    """Every image the tree's build expects, deduplicated, in a stable order.
    ``host_os`` (default: this machine's) matters only to the newest trees' darwin kubectl rule."""
    v = _tree_vars(tree, environ, host_os)
    specs: list[ImageSpec] = []
    cross = kube_cross(tree, v)
    if cross:
        specs.append(cross)
    bases = base_images(tree, v)
    specs += bases
    setcap = setcap_image(tree, v, bases)
    if setcap:
        specs.append(setcap)
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


def as_json(specs: list[ImageSpec], extra: Mapping[str, Mapping[str, object]] | None = None) -> str:
    """The image set as JSON; ``extra`` adds fields to the image of that name (e.g. what mirrors hold)."""
    return json.dumps([{**s.as_dict(), **(extra or {}).get(s.ref.name, {})} for s in specs], indent=2)

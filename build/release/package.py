"""The tree's own packaging, run on the host (as kubernetes/release stages releases with
`make package-tarballs`), and what happens to the server images after it: load, push."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import KBError, UsageError
from workspace.tree import KubeTree

# release-images.sh after its build: the tree's own functions, nothing of the user's in the text.
IMAGES_ONLY_SCRIPT = ("set -o errexit -o nounset -o pipefail; source build/common.sh; source build/lib/release.sh; "
                      "kube::version::get_version_vars; kube::release::build_server_images")


def packaging_argv(tree: KubeTree, images_only: bool) -> tuple[str, ...]:
    """`bash build/package-tarballs.sh`, or the tree's build_server_images alone."""
    lib = tree.read("build/lib/release.sh")
    if lib is None:
        raise UsageError(f"{tree.root} has no build/lib/release.sh: native and direct modes package with it",
                         hint="use --mode script (the tree's build/release.sh)")
    if images_only:
        if "kube::release::build_server_images" not in lib:
            raise UsageError("this tree's build/lib/release.sh has no kube::release::build_server_images",
                             hint="use --mode script (build/release-images.sh)")
        return ("bash", "-c", IMAGES_ONLY_SCRIPT)
    if not (tree.root / "build" / "package-tarballs.sh").is_file():
        raise UsageError(f"{tree.root} has no build/package-tarballs.sh: native and direct modes package with it",
                         hint="use --mode script (the tree's build/release.sh)")
    return ("bash", str(tree.root / "build" / "package-tarballs.sh"))


def run_packaging(tree: KubeTree, argv: tuple[str, ...], environ: Mapping[str, str], overlay: Mapping[str, str],
                  log: Path, out: Callable[[str], None]) -> None:
    from build.release.process import failed, run_logged

    code = run_logged(argv, cwd=tree.root, env={**environ, **overlay}, overlay=overlay, log=log, out=out,
                      label="packaging")
    if code != 0:
        raise failed(f"the tree's packaging ({' '.join(argv[:2])}) failed", code, log)


def image_tars(tree: KubeTree) -> list[Path]:
    """_output/release-images/<arch>/*.tar, as the packaging left them."""
    return sorted((tree.root / "_output" / "release-images").glob("*/*.tar"))


def repo_tags(tar: Path) -> list[str]:
    """The RepoTags a docker-save archive carries (manifest.json)."""
    try:
        with tarfile.open(tar) as tf:
            member = tf.extractfile("manifest.json")
            data = json.load(io.TextIOWrapper(member)) if member else []
    except (OSError, KeyError, tarfile.TarError, ValueError) as exc:
        raise KBError(f"{tar}: not a docker-save archive ({exc})") from None
    return sorted({t for item in data for t in item.get("RepoTags") or []})


@dataclass
class ImageResult:
    tar: str
    tags: list[str]
    loaded: bool = False
    pushed: dict[str, str] | None = None     # pushed name -> digest
    errors: list[str] | None = None


def load_and_push(engine: Any, tars: list[Path], registries: list[str],
                  say: Callable[[str], None]) -> list[ImageResult]:
    """Load each image tar into the engine under its own tags; push each tag to every registry under the
    same path and tag. Push failures are per image: the others still go."""
    from images.refs import parse_ref

    results = []
    for tar in tars:
        tags = repo_tags(tar)
        res = ImageResult(str(tar), tags, pushed={}, errors=[])
        with tar.open("rb") as fh:
            engine.load(iter(lambda: fh.read(1 << 20), b""))
        res.loaded = True
        say(f"loaded {tar.name}: {', '.join(tags)}")
        for tag in tags:
            ref = parse_ref(tag)
            for reg in registries:
                target = f"{reg}/{ref.path}"
                try:
                    engine.tag(tag, target, ref.tag)
                    digest = engine.push(target, ref.tag)
                except KBError as exc:
                    res.errors.append(f"{target}:{ref.tag}: {exc.message}")  # type: ignore[union-attr]
                    say(f"FAILED push {target}:{ref.tag}: {exc.message}")
                    continue
                res.pushed[f"{target}:{ref.tag}"] = digest  # type: ignore[index]
                say(f"pushed {target}:{ref.tag} {digest}")
        results.append(res)
    return results

"""The tree's own packaging, run on the host (as kubernetes/release stages releases with
`make package-tarballs`), and what happens to the server images after it: load, push."""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import KBError, UsageError
from common.outputs import remove_quietly
from workspace.tree import KubeTree

if TYPE_CHECKING:
    from images.engine import Engine

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
    """The tree's packaging; if it fails (a full disk included), the tarballs it started are removed."""
    from build.release.process import Command, failed, run_logged

    with no_partial_tarballs(tree):
        code = run_logged(Command(argv, tree.root, environ, overlay, "packaging",
                                  writes=tree.root / "_output" / "release-tars"), log=log, out=out)
        if code != 0:
            raise failed(f"the tree's packaging ({' '.join(argv[:2])}) failed", code, log)


# Partial outputs a packaging run can leave in release-tars (tar writes straight to the final name).
_PARTIAL_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tmp")


def remove_new_tarballs(tree: KubeTree, since: float) -> list[Path]:
    """Remove what a failed packaging wrote to _output/release-tars since ``since`` (a time.time()):
    a tarball cut short by a full disk must not look like a release. Older files are left alone."""
    tars = tree.root / "_output" / "release-tars"
    if not tars.is_dir() or tars.is_symlink():
        return []
    removed = []
    try:
        entries = list(tars.iterdir())
    except OSError:
        return []
    for entry in entries:
        try:
            info = entry.lstat()
        except OSError:
            continue
        if entry.is_file() and not entry.is_symlink() and info.st_mtime >= since \
                and (entry.name.endswith(_PARTIAL_SUFFIXES) or ".tmp-" in entry.name):
            remove_quietly(entry)
            if not entry.exists():
                removed.append(entry)
    return sorted(removed)


@contextmanager
def no_partial_tarballs(tree: KubeTree) -> Iterator[None]:
    """On any failure inside (Ctrl-C included), remove the tarballs started inside; a KBError then also
    says which it removed."""
    since = time.time() - 1.0  # file times come from a coarse kernel clock that can lag time.time()
    try:
        yield
    except KBError as exc:
        removed = remove_new_tarballs(tree, since)
        if not removed:
            raise
        names = ", ".join(p.name for p in removed)
        raise KBError(f"{exc.message}; removed the partial tarballs ({names})", hint=exc.hint,
                      code=exc.code) from None
    except BaseException:
        remove_new_tarballs(tree, since)
        raise


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


def load_and_push(engine: Engine, tars: list[Path], registries: list[str],
                  say: Callable[[str], None]) -> list[ImageResult]:
    """Load each image tar into the engine under its own tags; push each tag to every registry under the
    same path and tag. Push failures are per image: the others still go."""
    from images.engine import EngineGone
    from images.refs import parse_ref

    results = []
    for tar in tars:
        tags = repo_tags(tar)
        res = ImageResult(str(tar), tags, pushed={}, errors=[])
        with tar.open("rb") as fh:
            engine.load(iter(lambda: fh.read(1 << 20), b""), what=str(tar))
        res.loaded = True
        say(f"loaded {tar.name}: {', '.join(tags)}")
        for tag in tags:
            ref = parse_ref(tag)
            for reg in registries:
                target = f"{reg}/{ref.path}"
                try:
                    engine.tag(tag, target, ref.tag)
                    digest = engine.push(target, ref.tag)
                except EngineGone:
                    raise  # the next push would only wait for it too
                except KBError as exc:
                    res.errors.append(f"{target}:{ref.tag}: {exc.message}")  # type: ignore[union-attr]
                    say(f"FAILED push {target}:{ref.tag}: {exc.message}")
                    continue
                res.pushed[f"{target}:{ref.tag}"] = digest  # type: ignore[index]
                say(f"pushed {target}:{ref.tag} {digest}")
        results.append(res)
    return results

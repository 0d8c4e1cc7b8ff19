"""Each server platform's base images during a release's packaging (kubernetes/kubernetes#102087).

The tree's packaging builds every arch's server images FROM the same base image names, one arch after
the other; an engine's tag holds one variant. When the release's server platforms are more than the
engine's own, kbuild pulls each base image's variant for each platform by its digest from the mirror's
index (`images.sync` with a platform), and puts `build/release/docker_shim.py` first on the
packaging's PATH: before an arch's first `docker build` it points the base names at that arch's
variants. Afterwards the names get back what they held before. `check_arches` then reads every server
image tar the packaging wrote and refuses one whose config names another arch than its directory.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from build.release.plan import ReleaseRequest
from common.errors import KBError

if TYPE_CHECKING:
    from images.engine import Engine
    from images.resolve import ImageSpec
    from workspace.tree import KubeTree

SHIM_DIR = "_output/kbuild/docker-shim"
_CONFIG_LIMIT = 4 << 20   # an image config is a few KB; a tar that says more is not trusted


@dataclass(frozen=True)
class PlatformBases:
    """What the packaging's docker shim reads: per platform, each base name and the id of its variant."""

    images: dict[str, dict[str, str]]              # platform -> {base name: image id}
    digests: dict[str, dict[str, str]]             # platform -> {base name: the index entry's digest}
    before: dict[str, str] = field(default_factory=dict)  # base name -> the id it held before ("" none)

    def report(self) -> dict[str, object]:
        return {p: {name: {"digest": self.digests[p].get(name, ""), "id": image_id}
                    for name, image_id in names.items()} for p, names in self.images.items()}


def server_platforms(tree: KubeTree, environ: Mapping[str, str], req: ReleaseRequest) -> list[str]:
    """The platforms the packaging builds server images for (KUBE_SERVER_PLATFORMS under the release's
    environment); none when the tree lists no server image targets."""
    from build.release.plan import base_env, platforms_by_kind, release_groups

    env = {**environ, **base_env(req, {})}
    if not release_groups(tree, env, images_only=True, conformance=False):
        return []
    return list(platforms_by_kind(tree, env)["SERVER"])


def engine_platform(engine: Engine) -> str:
    """The engine's own os/arch, normalised (x86_64 is amd64)."""
    from images.platforms import normalise

    info = engine.info()
    return str(normalise(str(info.get("OSType") or "linux"), str(info.get("Architecture") or "")))


def needs_variants(platforms: list[str], own: str) -> bool:
    """Variants are pulled when the server images are for anything but the engine's own platform alone."""
    return bool(platforms) and set(platforms) != {own}


def pull(tree: KubeTree, environ: Mapping[str, str], req: ReleaseRequest, engine: Engine,
         specs: list[ImageSpec], platforms: list[str]) -> PlatformBases:
    """Each base image's variant for each platform, by digest from the mirror's index (or the canonical
    registry without mirrors); any failure is one error naming the image, the platform and the mirror."""
    from images.driver import ImagesRequest, sync_images
    from images.refs import parse_ref

    names = [s.ref.short for s in specs]
    before = {n: str((engine.image(n) or {}).get("Id", "")) for n in names}
    outcomes = sync_images(tree, environ, ImagesRequest(
        mirrors=req.mirrors, layout=req.layout, only=tuple(s.ref.name for s in specs),
        docker_host=req.docker_host, platforms=tuple(platforms)))
    images: dict[str, dict[str, str]] = {p: {} for p in platforms}
    digests: dict[str, dict[str, str]] = {p: {} for p in platforms}
    for o in outcomes:
        short = parse_ref(o.name).short
        images[o.platform][short] = o.image_id
        digests[o.platform][short] = o.digest
    return PlatformBases(images, digests, before)


def shim_env(tree: KubeTree, environ: Mapping[str, str], bases: PlatformBases) -> dict[str, str]:
    """Write the shim and its state under _output; the packaging's PATH and the state's variable."""
    from build.release.docker_shim import STATE_VARIABLE
    from common.outputs import write_file

    real = shutil.which("docker", path=environ.get("PATH"))
    if real is None:
        raise KBError("no docker CLI on PATH: the tree's packaging builds the server images with it",
                      hint="apt-get install docker.io (the CLI)")
    where = tree.root / SHIM_DIR
    where.mkdir(parents=True, exist_ok=True)
    state = where / "bases.json"
    write_file(state, json.dumps({"docker": real, "platforms": bases.images}, indent=1) + "\n",
               step="the docker shim's state")
    (where / "bases.json.current").unlink(missing_ok=True)
    kbuild_root = Path(__file__).resolve().parents[2]
    program = (f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(kbuild_root)!r})\n"
               "from build.release.docker_shim import main\nsys.exit(main())\n")
    write_file(where / "docker", program, step="the docker shim")
    (where / "docker").chmod(0o755)
    return {"PATH": f"{where}{os.pathsep}{environ.get('PATH', '')}", STATE_VARIABLE: str(state)}


def restore(engine: Engine, bases: PlatformBases) -> None:
    """Give each base name back what it held before the release (a name that held nothing keeps the
    last platform's variant: there is nothing to give back)."""
    from images.refs import parse_ref

    for name, image_id in bases.before.items():
        if image_id:
            ref = parse_ref(name)
            engine.tag(image_id, ref.short.rsplit(":", 1)[0], ref.tag)


def _config_of(tar: Path) -> dict[str, object]:
    """The image config a docker-save archive names in its manifest.json (sizes checked, not trusted)."""
    def read(tf: tarfile.TarFile, name: str) -> bytes:
        member = tf.getmember(name)
        if not member.isfile() or member.size > _CONFIG_LIMIT:
            raise ValueError(f"{name} is not a small regular file")
        fh = tf.extractfile(member)
        return fh.read(_CONFIG_LIMIT + 1) if fh else b""

    try:
        with tarfile.open(tar) as tf:
            manifest = json.load(io.BytesIO(read(tf, "manifest.json")))
            config = json.loads(read(tf, str(manifest[0]["Config"])))
    except (OSError, KeyError, IndexError, TypeError, ValueError, tarfile.TarError) as exc:
        said = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise KBError(f"{tar}: not a docker-save archive with a config ({said})") from None
    if not isinstance(config, dict):
        raise KBError(f"{tar}: its image config is not a JSON object")
    return config


def check_arches(tars: list[Path]) -> list[str]:
    """Every server image tar under release-images/<arch>/ must be an image for that arch: one line per
    tar that is not (its config names another arch, so it was built FROM another arch's base)."""
    from images.platforms import config_platform

    wrong = []
    for tar in tars:
        arch = tar.parent.name
        found = config_platform(_config_of(tar))
        if found is None or found.arch != arch:
            wrong.append(f"{tar}: an image for {found or 'no platform'}, not {arch}")
    return wrong

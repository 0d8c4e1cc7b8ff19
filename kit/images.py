"""The kit's images: which to save (with their ids and registry digests), and loading them back with
each image id checked (`docker save`/`load` keep the id, the sha256 of the image's config; registry
digests are not kept by a load, so the id is what can be checked on the far side).

``python -m kit.images IMAGES_TAR MANIFEST`` is how install.sh loads them, through the venv it made.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from common.errors import KBError
from images.engine import Engine, repo_digests
from images.resolve import ImageSpec
from kit.plan import CHUNK, ImageRecord, KitError, Manifest


def records(engine: Engine, specs: list[ImageSpec]) -> tuple[ImageRecord, ...]:
    """Each image as present in the engine; absent ones are refused all at once, with the fix."""
    found, missing = [], []
    for spec in specs:
        image = engine.image(spec.ref.short)
        if image is None:
            missing.append(spec.ref.name)
            continue
        digests = tuple(f"{repo}@{digest}" for repo, digest in sorted(repo_digests(image).items()))
        found.append(ImageRecord(spec.ref.name, str(image["Id"]), digests))
    if missing:
        raise KBError(f"not present, cannot save: {', '.join(missing)}",
                      hint="run `inv images` (with --mirror where the canonical registry is out of reach) first, "
                           "or save without images (--no-images)")
    return tuple(found)


def load_and_check(engine: Engine, images_tar: Path, manifest: Manifest,
                   on_bytes: Callable[[int], None] = lambda n: None) -> list[str]:
    """`docker load` the tar, then check that every recorded name is there with the recorded id."""
    def chunks() -> Iterator[bytes]:
        with images_tar.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                on_bytes(len(chunk))
                yield chunk

    lines = engine.load(chunks())
    wrong = []
    for record in manifest.images:
        image = engine.image(record.name)
        if image is None:
            wrong.append(f"{record.name} is not in the engine after the load")
        elif image["Id"] != record.id:
            wrong.append(f"{record.name} loaded as {image['Id'][:19]}…, the kit recorded {record.id[:19]}…")
    if wrong:
        raise KitError("images: " + "; ".join(wrong), part="images",
                       hint="the engine already held other images under these names: remove them and load again")
    return lines


def main(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    import os

    if len(argv) != 2:
        print("usage: python -m kit.images IMAGES_TAR MANIFEST", file=sys.stderr)
        return 2
    try:
        manifest = Manifest.from_json(Path(argv[1]).read_bytes())
        engine = Engine.connect(os.environ if environ is None else environ)
        for line in load_and_check(engine, Path(argv[0]), manifest):
            print(line, file=sys.stderr)
    except (KBError, KitError) as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        hint = getattr(exc, "hint", None)
        if hint:
            print(f"TIP {hint}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ERROR {exc.filename or argv[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"loaded {len(manifest.images)} images, ids as recorded", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""images.lock: canonical names pinned to registry digests."""

from __future__ import annotations

import json
import os
from pathlib import Path

from common.errors import UsageError

DEFAULT_LOCK = "images.lock"


def read_lock(path: Path) -> dict[str, str]:
    """{canonical name: digest}; {} when the file doesn't exist."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {item["name"]: item["digest"] for item in data["images"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not an images.lock file ({exc})",
                         hint="regenerate it with `inv images --lock`") from None


def write_lock(path: Path, pins: dict[str, str]) -> None:
    body = {"version": 1, "images": [{"name": n, "digest": d} for n, d in sorted(pins.items())]}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(body, indent=2) + "\n")
    os.replace(tmp, path)

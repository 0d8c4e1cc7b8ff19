"""The `docker` the tree's packaging finds first on PATH during a multi-platform release.

Kubernetes' packaging builds each arch's server images `FROM` one base image name for every arch
(v1.20: `FROM --platform=linux/${arch} ${base_image}`), one arch after the other, and an engine's tag
holds one variant. So before the first `docker build` of an arch, this shim points each base image's
name at that arch's variant (pulled by digest beforehand; `build/release/bases.py` writes the state),
then hands the command to the real docker unchanged. Every other command passes straight through.

Only the standard library here: it runs once per docker call of the packaging.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence

STATE_VARIABLE = "KBUILD_DOCKER_BASES"

# docker's global options that take a value (`docker --host H build …`).
_GLOBAL_WITH_VALUE = frozenset({"-H", "--host", "--config", "-c", "--context", "-l", "--log-level",
                                "--tlscacert", "--tlscert", "--tlskey"})


def _command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the command words, the arguments after them), global options skipped."""
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in _GLOBAL_WITH_VALUE else 1
    rest = list(argv[i:])
    if rest[:1] == ["build"]:
        return rest[:1], rest[1:]
    if rest[:2] in (["image", "build"], ["buildx", "build"], ["builder", "build"]):
        return rest[:2], rest[2:]
    return rest[:1], rest[1:]


def _option(args: Sequence[str], names: tuple[str, ...]) -> list[str]:
    """Every value given to one of ``names`` (`--tag X`, `--tag=X`, `-tX`)."""
    values = []
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                values.append(args[i + 1])
            elif name.startswith("--") and arg.startswith(name + "="):
                values.append(arg[len(name) + 1:])
            elif not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                values.append(arg[len(name):])
    return values


def build_platform(argv: Sequence[str], platforms: Sequence[str]) -> str | None:
    """The platform (one of ``platforms``, os/arch) a `docker build` is for: its --platform, else the
    `-<arch>` suffix of its tag's repository (`k8s.gcr.io/kube-apiserver-arm64:v1.20.2`). None for
    any other command, or a build that names none of them."""
    words, args = _command(argv)
    if words[-1:] != ["build"]:
        return None
    for value in _option(args, ("--platform",)):
        if value in platforms:
            return value
    by_arch = {p.split("/")[1]: p for p in platforms}
    for tag in _option(args, ("-t", "--tag")):
        repo = re.sub(r"[:@].*$", "", tag.rsplit("/", 1)[-1])
        for arch, platform in by_arch.items():
            if repo.endswith(f"-{arch}"):
                return platform
    return None


def _retag(real: str, platform: str, images: dict[str, str], state_path: str) -> int:
    """Point each base name at ``platform``'s variant, once per change of arch (the arch's builds run in
    parallel and all find it done)."""
    import fcntl
    import subprocess

    with open(state_path + ".lock", "a+", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = state_path + ".current"
        try:
            with open(current, encoding="utf-8") as fh:
                if fh.read().strip() == platform:
                    return 0
        except FileNotFoundError:
            pass
        for name, image_id in sorted(images.items()):
            done = subprocess.run([real, "tag", image_id, name], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, check=False, timeout=120)
            if done.returncode != 0:
                print(f"kbuild: cannot point {name} at its {platform} variant {image_id}: "
                      f"{done.stderr.strip() or done.returncode}", file=sys.stderr)
                return done.returncode or 1
        with open(current, "w", encoding="utf-8") as fh:
            fh.write(platform)
        print(f"kbuild: base images now the {platform} variants ({', '.join(sorted(images))})", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    state_path = os.environ.get(STATE_VARIABLE, "")
    try:
        with open(state_path, encoding="utf-8") as fh:
            state = json.load(fh)
        real = str(state["docker"])
        bases = {str(p): {str(k): str(v) for k, v in m.items()} for p, m in state["platforms"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        print(f"kbuild: the docker shim's state {state_path or '(unset)'} is unreadable: {exc}", file=sys.stderr)
        return 1
    platform = build_platform(args, list(bases))
    if platform is not None:
        code = _retag(real, platform, bases[platform], state_path)
        if code != 0:
            return code
    os.execv(real, [real, *args])


if __name__ == "__main__":
    sys.exit(main())

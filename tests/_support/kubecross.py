"""A stand-in kube-cross image made offline: busybox, this machine's bash and make (with the shared
libraries they load), and its Go toolchain at /usr/local/go: enough to run a tree's own `make cross`."""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tests._support.engine import BUSYBOX, OperationError, _json_lines, split_ref

APPLETS = ("sh", "mkdir", "cat", "ls", "rm", "cp", "mv", "env", "sleep", "uname", "tar", "gzip", "true",
           "dirname", "basename", "readlink", "ln", "sort", "uniq", "head", "tail", "date", "sed", "tr", "grep",
           "id", "find", "xargs", "echo", "printf", "wc")
HOST_PROGRAMS = ("/bin/bash", "/usr/bin/make")
_SKIP = {"testdata", "test", "api"}  # parts of GOROOT a build never reads


def _goroot() -> Path:
    from build.golang import find_go

    return find_go(os.environ).goroot


def cross_rootfs(goroot: Path | None = None) -> bytes:
    """Tar bytes of the root filesystem: /bin/busybox (+ applets), /usr/local/go, /go, /tmp."""
    goroot = goroot or _goroot()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        for d in ("bin", "etc", "usr", "usr/local", "go", "go/src", "root"):
            add_dir(d)
        add_dir("tmp", 0o1777)
        tar.add(str(BUSYBOX), "bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname, link.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(link)
        add_dir("usr/bin")
        env_link = tarfile.TarInfo("usr/bin/env")
        env_link.type, env_link.linkname, env_link.mode = tarfile.SYMTYPE, "/bin/busybox", 0o777
        tar.addfile(env_link)
        added: set[str] = {"bin", "etc", "usr", "usr/local", "usr/bin", "go", "go/src", "root", "tmp"}
        for program in HOST_PROGRAMS:
            for path in (program, *_shared_libraries(program)):
                real = os.path.realpath(path)
                name = path.lstrip("/")
                if name in added:
                    continue
                for parent in reversed(Path(name).parents):
                    if str(parent) not in (".", *added):
                        add_dir(str(parent))
                        added.add(str(parent))
                tar.add(real, name)
                added.add(name)

        def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            parts = set(Path(info.name).parts[3:])
            return None if parts & _SKIP or info.name.endswith("_test.go") else info

        tar.add(str(goroot), "usr/local/go", filter=keep)
    return buf.getvalue()


def _shared_libraries(program: str) -> list[str]:
    """What the dynamic loader maps for ``program`` (from ldd), loader included."""
    out = subprocess.run(["ldd", program], capture_output=True, text=True, check=True).stdout
    return [m.group(1) for m in re.finditer(r"(/\S+\.so[.\d]*)", out)]


def make_kube_cross(client: Any, repo_tag: str, goroot: Path | None = None) -> str:
    """Import the stand-in as ``repo_tag``; returns the image id."""
    repo, tag = split_ref(repo_tag)
    raw = client.api.import_image_from_data(
        cross_rootfs(goroot), repository=repo, tag=tag,
        changes=["ENV PATH=/usr/local/go/bin:/bin:/usr/bin", "ENV GOPATH=/go", "ENV GOROOT=/usr/local/go",
                 "WORKDIR /go", 'CMD ["/bin/sh"]'])
    for event in _json_lines(raw):
        if "error" in event or "errorDetail" in event:
            raise OperationError.from_event("import", repo_tag, event)
    return str(client.api.inspect_image(f"{repo}:{tag}")["Id"])

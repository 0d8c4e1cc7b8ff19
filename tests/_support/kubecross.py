"""A stand-in kube-cross image made offline: busybox plus this machine's Go toolchain at /usr/local/go."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

from tests._support.engine import BUSYBOX, OperationError, _json_lines, split_ref

APPLETS = ("sh", "mkdir", "cat", "ls", "rm", "cp", "mv", "env", "sleep", "uname", "tar", "gzip", "true")
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

        def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            parts = set(Path(info.name).parts[3:])
            return None if parts & _SKIP or info.name.endswith("_test.go") else info

        tar.add(str(goroot), "usr/local/go", filter=keep)
    return buf.getvalue()


def make_kube_cross(client: Any, repo_tag: str, goroot: Path | None = None) -> str:
    """Import the stand-in as ``repo_tag``; returns the image id."""
    repo, tag = split_ref(repo_tag)
    raw = client.api.import_image_from_data(
        cross_rootfs(goroot), repository=repo, tag=tag,
        changes=["ENV PATH=/usr/local/go/bin:/bin", "ENV GOPATH=/go", "ENV GOROOT=/usr/local/go",
                 "WORKDIR /go", 'CMD ["/bin/sh"]'])
    for event in _json_lines(raw):
        if "error" in event or "errorDetail" in event:
            raise OperationError.from_event("import", repo_tag, event)
    return str(client.api.inspect_image(f"{repo}:{tag}")["Id"])

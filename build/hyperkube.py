"""hyperkube-era trees (up to v1.18): one binary that becomes any server by the name it is called with."""

from __future__ import annotations

import os
import re
from pathlib import Path

from common.errors import TreeError
from common.treefiles import read_text
from workspace.tree import KubeTree

KNOWN = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet", "kubectl",
         "cloud-controller-manager")
_KUBECTL_IMPORTS = ("k8s.io/kubectl/pkg/cmd", "k8s.io/kubernetes/pkg/kubectl/cmd")


def server_names(tree: KubeTree) -> list[str]:
    """The servers the tree's cmd/hyperkube knows: the cmd/<name>/app packages it imports, or names it spells out."""
    directory = tree.root / "cmd" / "hyperkube"
    text = "\n".join(read_text(p, root=tree.root) or "" for p in sorted(directory.glob("*.go"))
                     if not p.name.endswith("_test.go"))
    if not text:
        raise TreeError(f"{directory} has no Go sources: this tree has no hyperkube")
    found: dict[str, None] = {}
    for m in re.finditer(r'"k8s\.io/kubernetes/cmd/([\w-]+)/app"', text):
        if m.group(1) in KNOWN:
            found.setdefault(m.group(1), None)
    if any(f'"{imp}"' in text for imp in _KUBECTL_IMPORTS):
        found.setdefault("kubectl", None)
    for m in re.finditer(r'"([\w-]+)"', text):
        if m.group(1) in KNOWN:
            found.setdefault(m.group(1), None)
    return [name for name in KNOWN if name in found]


def make_links(binary: Path, names: list[str]) -> list[Path]:
    """``<name> -> hyperkube`` next to the binary (relative links; a real file of that name is left alone)."""
    made = []
    for name in names:
        link = binary.parent / name
        if link.exists() and not link.is_symlink():
            raise TreeError(f"{link} is a real file; not replacing it with a hyperkube link",
                            hint="remove it (or `inv clean`) and build again")
        tmp = link.with_name(f".{name}.tmp-{os.getpid()}")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(binary.name)
        os.replace(tmp, link)
        made.append(link)
    return made

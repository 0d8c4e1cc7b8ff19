"""The target lists of a tree's hack/lib/golang.sh, read as bash evaluates them on Linux, and
which of them are statically linked (``kube::golang::is_statically_linked``).

``kube::golang::server_targets`` and friends echo a ``local targets=(...)`` array (plus
``targets+=(...)`` lines, some only under ``OSTYPE == linux*``); older trees and the client
list use plain ``readonly KUBE_*_TARGETS=(...)`` arrays; ``KUBE_ALL_TARGETS`` (what ``make``
builds with no WHAT) is a literal list or the concatenation of the others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from workspace import shell
from workspace.shell import function_targets

# golang.sh's lists, in the order hack/make-rules/cross.sh builds them.
GROUPS = (
    ("server", ("kube::golang::server_targets",), "KUBE_SERVER_TARGETS", "SERVER"),
    ("node", ("kube::golang::node_targets",), "KUBE_NODE_TARGETS", "NODE"),
    ("client", ("kube::golang::client_targets",), "KUBE_CLIENT_TARGETS", "CLIENT"),
    ("test", ("kube::golang::test_targets",), "KUBE_TEST_TARGETS", "TEST"),
    ("test-server", ("kube::golang::server_test_targets",), "KUBE_TEST_SERVER_TARGETS", "SERVER"),
)


def group_targets(text: str, functions: tuple[str, ...], array: str) -> list[str]:
    """A list as golang.sh makes it: what its ``*_targets`` function echoes, else its ``KUBE_*_TARGETS`` array."""
    for fn in functions:
        found = function_targets(text, fn)
        if found is not None:
            return found
    return shell.array(text, array) or []


GROUP_NAMES: tuple[str, ...] = tuple(g[0] for g in GROUPS)
_ARRAY_OF = {array: (functions, array) for _, functions, array, _ in GROUPS}


def named_group(text: str, name: str) -> list[str]:
    """One of the lists by its kbuild name (server, node, client, test, test-server)."""
    for group, functions, array, _ in GROUPS:
        if group == name:
            return group_targets(text, functions, array)
    raise KeyError(name)


def all_targets(text: str) -> list[str]:
    """``KUBE_ALL_TARGETS``: its literal items, with ``${KUBE_*_TARGETS[@]}`` expanded; first-seen order."""
    items = shell.array(text, "KUBE_ALL_TARGETS")
    if items is None:
        return []
    out: dict[str, None] = {}
    for item in items:
        ref = shell.array_ref(item)
        if ref in _ARRAY_OF:
            functions, array = _ARRAY_OF[ref]
            out.update(dict.fromkeys(group_targets(text, functions, array)))
        elif ref and re.fullmatch(r"KUBE_\w+_TARGETS", ref):
            out.update(dict.fromkeys(shell.array(text, ref) or []))
        else:
            out.setdefault(item, None)
    return list(out)


def _words(value: str | None) -> list[str]:
    """What `IFS=" " read -ra LIST <<< "$VALUE"` leaves in LIST: the first line, split on spaces."""
    return [w for w in (value or "").split("\n", 1)[0].split(" ") if w]


def statically_linked(package: str, statics: tuple[str, ...], environ: Mapping[str, str], *,
                      darwin_kubectl_rule: bool = False, host_os: str = "linux") -> tuple[bool, str, str]:
    """kube::golang::is_statically_linked on a package path: (static?, why, the env variable that decided).

    Each list item matches as the glob `*/<item>` (a suffix after a slash); KUBE_CGO_OVERRIDES is
    tried first (→ not static), then the tree's static list, then KUBE_STATIC_OVERRIDES."""
    if darwin_kubectl_rule and host_os == "darwin" and (environ.get("GOOS") or host_os) == "darwin" \
            and package.endswith("/kubectl"):
        return False, "kubectl built on and for darwin uses cgo", ""
    for item in _words(environ.get("KUBE_CGO_OVERRIDES")):
        if package.endswith(f"/{item}"):
            return False, f"not statically linked: {item} in KUBE_CGO_OVERRIDES", "KUBE_CGO_OVERRIDES"
    for item in statics:
        if package.endswith(f"/{item}"):
            return True, "statically linked: in KUBE_STATIC_BINARIES", ""
    for item in _words(environ.get("KUBE_STATIC_OVERRIDES")):
        if package.endswith(f"/{item}"):
            return True, f"statically linked: {item} in KUBE_STATIC_OVERRIDES", "KUBE_STATIC_OVERRIDES"
    return False, "not statically linked: not in KUBE_STATIC_BINARIES", ""

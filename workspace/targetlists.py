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

from workspace.tree import _bash_array

# golang.sh's lists, in the order hack/make-rules/cross.sh builds them.
GROUPS = (
    ("server", ("kube::golang::server_targets",), "KUBE_SERVER_TARGETS", "SERVER"),
    ("node", ("kube::golang::node_targets",), "KUBE_NODE_TARGETS", "NODE"),
    ("client", ("kube::golang::client_targets",), "KUBE_CLIENT_TARGETS", "CLIENT"),
    ("test", ("kube::golang::test_targets",), "KUBE_TEST_TARGETS", "TEST"),
    ("test-server", ("kube::golang::server_test_targets",), "KUBE_TEST_SERVER_TARGETS", "SERVER"),
)
def _function_body(text: str, function: str) -> str | None:
    m = re.search(rf"{re.escape(function)}\(\)\s*\{{(.*?)^\}}", text, re.M | re.S)
    return m.group(1) if m else None


def _items(block: str) -> list[str]:
    out: list[str] = []
    for line in block.splitlines():
        out += [tok.strip("\"'") for tok in line.split("#", 1)[0].split()]
    return out


def function_targets(text: str, function: str) -> list[str] | None:
    """The targets a `*_targets` function echoes on Linux: its `local targets=(...)` plus the
    `targets+=(...)` lines that apply (unconditional, or under an `OSTYPE == linux*` test)."""
    body = _function_body(text, function)
    if body is None:
        return None
    m = re.search(r"local\s+targets=\((.*?)\)", body, re.S)
    if not m:
        return None
    targets = _items(m.group(1))
    condition: list[str] = []
    for line in body[m.end():].splitlines():
        s = line.strip()
        if s.startswith("if "):
            condition.append(s)
        elif s == "fi" and condition:
            condition.pop()
        elif am := re.match(r"targets\+=\((.*)\)", s):
            if all(re.search(r"OSTYPE.*==\s*\"?linux", c) for c in condition):
                targets += _items(am.group(1))
    return targets


def group_targets(text: str, functions: tuple[str, ...], array: str) -> list[str]:
    for fn in functions:
        found = function_targets(text, fn)
        if found is not None:
            return found
    return _bash_array(text, array) or []



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
    items = _bash_array(text, "KUBE_ALL_TARGETS")
    if items is None:
        return []
    out: dict[str, None] = {}
    for item in items:
        ref = re.fullmatch(r"\$\{(KUBE_\w+_TARGETS)\[@\]\}", item)
        if ref and ref.group(1) in _ARRAY_OF:
            functions, array = _ARRAY_OF[ref.group(1)]
            out.update(dict.fromkeys(group_targets(text, functions, array)))
        elif ref:
            out.update(dict.fromkeys(_bash_array(text, ref.group(1)) or []))
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

"""Just enough shell to read image names out of build/common.sh: assignments and ${VAR:-default}.

Kubernetes keeps its image pins in shell variables. Rather than run the
scripts (slow, and they need docker), read the assignments in file order and
expand ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and
``$(cat "${KUBE_ROOT}/some/file")``, with the environment as the starting
values, as bash would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_ASSIGN = re.compile(r"^\s*(?:(?:readonly|export|local|declare)(?:\s+-[a-zA-Z]+)*\s+)?([A-Za-z_]\w*)=(.*)$")
_CAT = re.compile(r"""^\$\(\s*cat\s+("([^"]*)"|'([^']*)'|(\S+))\s*\)""")


class Vars:
    """Shell variables: the environment first, then the file's assignments as they are read."""

    def __init__(self, environ: Mapping[str, str], kube_root: Path) -> None:
        self.values: dict[str, str] = dict(environ)
        self.values["KUBE_ROOT"] = str(kube_root)
        self.kube_root = kube_root
        self.origin: dict[str, str] = {k: "environment" for k in environ}
        self.origin["KUBE_ROOT"] = "tree"

    def read_file(self, path: Path, label: str) -> None:
        """Apply every simple assignment in ``path`` in order (functions included, as if called)."""
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            return
        for lineno, line in enumerate(lines, 1):
            m = _ASSIGN.match(line)
            if not m:
                continue
            name, raw = m.group(1), first_word(m.group(2))
            if raw is None or raw.startswith("("):
                continue  # arrays and anything we can't delimit
            value = self.expand_word(raw)
            if value is None:
                continue
            self.values[name] = value
            self.origin[name] = f"{label}:{lineno}"

    def expand_word(self, raw: str) -> str | None:
        """Expand one shell word (quotes removed); None if it uses something we don't evaluate."""
        if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
            return raw[1:-1]
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = raw[1:-1]
        try:
            return self.expand(raw)
        except ValueError:
            return None

    def expand(self, text: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 2
            elif ch == "$" and text.startswith("$(", i):
                m = _CAT.match(text[i:])
                if not m:
                    raise ValueError("command substitution")
                rel = self.expand(next(g for g in m.groups()[1:] if g is not None))
                path = Path(rel)
                try:
                    out.append(path.read_text().strip())
                except OSError as exc:
                    raise ValueError(f"cannot read {path}") from exc
                i += m.end()
            elif ch == "$" and text.startswith("${", i):
                end = _matching_brace(text, i + 1)
                out.append(self._param(text[i + 2:end]))
                i = end + 1
            elif ch == "$" and i + 1 < len(text) and (text[i + 1].isalpha() or text[i + 1] == "_"):
                m = re.match(r"[A-Za-z_]\w*", text[i + 1:])
                assert m
                out.append(self.values.get(m.group(0), ""))
                i += 1 + m.end()
            elif ch == "`":
                raise ValueError("command substitution")
            elif ch == '"':
                i += 1  # quote removal, as in ${VAR:-"default"}
            else:
                out.append(ch)
                i += 1
        return "".join(out)

    def _param(self, body: str) -> str:
        m = re.match(r"([A-Za-z_]\w*)(?:(:?[-=+])(.*))?$", body, re.S)
        if not m:
            raise ValueError(f"unsupported expansion ${{{body}}}")
        name, op, word = m.group(1), m.group(2), m.group(3)
        value = self.values.get(name)
        if op is None:
            return value or ""
        empty_counts = op.startswith(":")
        unset = value is None or (empty_counts and value == "")
        if op.endswith("+"):
            return "" if unset else self.expand(word)
        if unset:
            result = self.expand(word)
            if op.endswith("="):
                self.values[name] = result
            return result
        return value or ""


def first_word(text: str) -> str | None:
    """The first shell word of ``text`` (quotes kept), honouring quotes nested in $(...) and ${...}."""
    i, depth, quote = 0, 0, ""
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if quote == "'":
            if ch == "'":
                quote = ""
        elif ch == "'" and not quote and depth == 0:
            quote = "'"
        elif ch == '"':
            if quote == '"' and depth == 0:
                quote = ""
            elif not quote and depth == 0:
                quote = '"'
        elif text.startswith("$(", i) or text.startswith("${", i):
            depth += 1
            i += 2
            continue
        elif ch in ")}" and depth:
            depth -= 1
        elif ch in " \t;#" and not quote and depth == 0:
            return text[:i]
        i += 1
    return None if quote or depth else text


def _matching_brace(text: str, open_index: int) -> int:
    depth = 0
    for j in range(open_index, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced ${")

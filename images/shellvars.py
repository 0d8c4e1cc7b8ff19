"""Just enough shell to read image names out of build/common.sh: assignments and ${VAR:-default}.

Kubernetes keeps its image pins in shell variables. Rather than run the
scripts (slow, and they need docker), read the assignments in file order and
expand ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
``$(cat "${KUBE_ROOT}/some/file")`` and ``$(fn args)`` for the few shell
functions a caller models (``functions``), with the environment as the
starting values, as bash would.

Each variable also keeps its provenance: which environment variables and which
tree files its value was made from (``env_deps``, ``file_deps``), and, when
its value is another variable's or a modelled function's, which (``alias``,
``calls``) - so a caller can say where an image name really came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from common.treefiles import read_text

_ASSIGN = re.compile(r"^\s*(?:(?:readonly|export|local|declare)(?:\s+-[a-zA-Z]+)*\s+)?([A-Za-z_]\w*)=(.*)$")
_CAT = re.compile(r"""^\$\(\s*cat\s+("([^"]*)"|'([^']*)'|(\S+))\s*\)""")
# A whole word that is one parameter expansion: ${NAME}, ${NAME:-word}, ${NAME-word}.
_SINGLE_PARAM = re.compile(r"^\$\{([A-Za-z_]\w*)(?:(:?-)(.*))?\}$", re.S)
_SINGLE_REF = re.compile(r"^\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))$")


@dataclass(frozen=True)
class Call:
    """One evaluated ``$(fn args)``: which variable the function echoed, and why."""

    function: str
    args: tuple[str, ...]
    chose: str          # the variable whose value was echoed
    why: str            # the decision, in words ("statically linked: in KUBE_STATIC_BINARIES")
    where: str          # file:line of the echo that ran


# fn(vars, args) -> (value, Call); raise ValueError when it can't be evaluated.
Function = Callable[["Vars", list[str]], tuple[str, Call]]


class Vars:
    """Shell variables: the environment first, then the file's assignments as they are read."""

    def __init__(self, environ: Mapping[str, str], kube_root: Path) -> None:
        self.values: dict[str, str] = dict(environ)
        self.values["KUBE_ROOT"] = str(kube_root)
        self.kube_root = kube_root
        self.origin: dict[str, str] = {k: "environment" for k in environ}
        self.origin["KUBE_ROOT"] = "tree"
        self.environ = dict(environ)
        self.functions: dict[str, Function] = {}
        self.env_deps: dict[str, frozenset[str]] = {}
        self.file_deps: dict[str, frozenset[str]] = {}
        self.alias: dict[str, str] = {}
        self.from_env: dict[str, str] = {}
        self.calls: dict[str, Call] = {}
        self._acc: list[tuple[set[str], set[str], list[Call]]] = []

    def copy(self) -> Vars:
        """An independent copy (values, provenance and functions), for a function's local scope."""
        other = Vars({}, self.kube_root)
        other.values, other.origin, other.environ = dict(self.values), dict(self.origin), dict(self.environ)
        other.functions = dict(self.functions)
        other.env_deps, other.file_deps = dict(self.env_deps), dict(self.file_deps)
        other.alias, other.from_env, other.calls = dict(self.alias), dict(self.from_env), dict(self.calls)
        return other

    def read_file(self, path: Path, label: str) -> None:
        """Apply every simple assignment in ``path`` in order (functions included, as if called)."""
        try:
            text = read_text(path, root=self.kube_root)
        except OSError:
            return
        lines = (text or "").splitlines()
        for lineno, line in enumerate(lines, 1):
            m = _ASSIGN.match(line)
            if not m:
                continue
            name, raw = m.group(1), first_word(m.group(2))
            if raw is None or raw.startswith("("):
                continue  # arrays and anything we can't delimit
            before = self.values.get(name), self.origin.get(name)
            self._acc.append((set(), set(), []))
            try:
                value = self.expand_word(raw)
            finally:
                env, files, calls = self._acc.pop()
            if value is None:
                continue
            self._record(name, raw, before, value, env, files | {label}, calls)
            self.values[name] = value
            self.origin[name] = f"{label}:{lineno}"

    def _record(self, name: str, raw: str, before: tuple[str | None, str | None], value: str,
                env: set[str], files: set[str], calls: list[Call]) -> None:
        """Keep where ``name``'s new value came from (see the module docstring)."""
        self.env_deps[name], self.file_deps[name] = frozenset(env), frozenset(files)
        for table in (self.alias, self.from_env, self.calls):
            table.pop(name, None)
        word = _unquote(raw)
        single = _SINGLE_PARAM.match(word)
        ref = _SINGLE_REF.match(word)
        if single:
            param, op, default = single.group(1), single.group(2), single.group(3)
            current = before[0] if param == name else self.values.get(param)
            source = before[1] if param == name else self.origin.get(param)
            default_taken = op is not None and (current is None or (op == ":-" and current == ""))
            if not default_taken:
                if source == "environment":
                    self.from_env[name] = param
                elif param != name:
                    self.alias[name] = param
                return
            inner = _SINGLE_REF.match(_unquote(default or ""))
            if inner:
                self.alias[name] = inner.group(1) or inner.group(2)
            elif len(calls) == 1 and _unquote(default or "").startswith("$("):
                self.calls[name], self.alias[name] = calls[0], calls[0].chose
        elif ref:
            target = ref.group(1) or ref.group(2)
            if self.origin.get(target) == "environment":
                self.from_env[name] = target
            else:
                self.alias[name] = target
        elif len(calls) == 1 and word.startswith("$(") and word.endswith(")"):
            self.calls[name], self.alias[name] = calls[0], calls[0].chose

    def trace(self, text: str) -> tuple[str, frozenset[str], frozenset[str], tuple[Call, ...]]:
        """Expand ``text``; also return the environment variables, files and calls it used."""
        self._acc.append((set(), set(), []))
        try:
            value = self.expand(text)
        finally:
            env, files, calls = self._acc.pop()
        return value, frozenset(env), frozenset(files), tuple(calls)

    def source_of(self, name: str) -> tuple[str, str]:
        """Follow ``name``'s aliases to the variable that really names the value: (variable, where),
        where is ``environment: VAR`` for a value the environment gave, else the file:line."""
        seen: set[str] = set()
        while name not in seen:
            seen.add(name)
            if name in self.from_env:
                return self.from_env[name], f"environment: {self.from_env[name]}"
            if self.origin.get(name) == "environment":
                return name, f"environment: {name}"
            if name not in self.alias:
                break
            name = self.alias[name]
        return name, self.origin.get(name, "")

    def _note(self, name: str) -> None:
        """``name``'s value was used: its provenance joins the expansion in progress."""
        if not self._acc:
            return
        env, files, _ = self._acc[-1]
        if self.origin.get(name) == "environment":
            env.add(name)
        else:
            env |= self.env_deps.get(name, frozenset())
            files |= self.file_deps.get(name, frozenset())

    def note_env(self, name: str) -> None:
        """A modelled function read ``name`` from the environment and it decided the result."""
        if self._acc:
            self._acc[-1][0].add(name)

    def _note_file(self, path: Path) -> None:
        if self._acc:
            try:
                self._acc[-1][1].add(str(path.resolve().relative_to(self.kube_root.resolve())))
            except ValueError:
                self._acc[-1][1].add(str(path))

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
                    end = _matching_paren(text, i + 1)
                    out.append(self._call(text[i + 2:end]))
                    i = end + 1
                    continue
                rel = self.expand(next(g for g in m.groups()[1:] if g is not None))
                path = Path(rel)
                try:
                    content = read_text(path, root=self.kube_root)
                except OSError as exc:
                    raise ValueError(f"cannot read {path}") from exc
                if content is None:
                    raise ValueError(f"cannot read {path}")
                out.append(content.strip())
                self._note_file(path)
                i += m.end()
            elif ch == "$" and text.startswith("${", i):
                end = _matching_brace(text, i + 1)
                out.append(self._param(text[i + 2:end]))
                i = end + 1
            elif ch == "$" and i + 1 < len(text) and (text[i + 1].isalpha() or text[i + 1] == "_"):
                m = re.match(r"[A-Za-z_]\w*", text[i + 1:])
                assert m
                out.append(self.values.get(m.group(0), ""))
                self._note(m.group(0))
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
            self._note(name)
            return value or ""
        empty_counts = op.startswith(":")
        unset = value is None or (empty_counts and value == "")
        if op.endswith("+"):
            if unset:
                return ""
            self._note(name)
            return self.expand(word)
        if unset:
            result = self.expand(word)
            if op.endswith("="):
                self.values[name] = result
            return result
        self._note(name)
        return value or ""

    def _call(self, body: str) -> str:
        """``$(fn args)`` for a modelled function; anything else is not evaluated (ValueError)."""
        words = body.split()
        if not words or words[0] not in self.functions:
            raise ValueError("command substitution")
        args = [self.expand(_unquote(w)) for w in words[1:]]
        value, call = self.functions[words[0]](self, args)
        if self._acc:
            self._acc[-1][2].append(call)
        return value


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


def single_ref(word: str) -> str | None:
    """The variable a word is nothing but (``$X``, ``${X}``, ``"$X"``), else None."""
    m = _SINGLE_REF.match(_unquote(word.strip()))
    return (m.group(1) or m.group(2)) if m else None


def _unquote(word: str) -> str:
    """One level of surrounding double or single quotes removed."""
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "\"'":
        return word[1:-1]
    return word


def _matching_paren(text: str, open_index: int) -> int:
    """The index of the ``)`` closing the ``(`` at ``open_index`` (quotes are not parsed)."""
    depth = 0
    for j in range(open_index, len(text)):
        if text[j] == "(":
            depth += 1
        elif text[j] == ")":
            depth -= 1
            if depth == 0:
                return j
    raise ValueError("unbalanced $(")


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

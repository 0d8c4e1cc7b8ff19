"""The tree's shell, read as bash would: the one reader of its bash files.

Kubernetes states its build facts in bash (hack/lib/golang.sh, hack/lib/version.sh,
build/common.sh, build/lib/release.sh). Rather than run the scripts (slow, and some
need docker), kbuild reads them with this module, as bash would:

- text: ``code`` (comments dropped, lines kept), ``lineno``;
- functions: ``functions``/``function`` (name, body, where it starts), ``function_targets``
  (the words a ``*_targets`` function echoes on Linux), ``conditional_echo`` (a function that
  echoes one word or another after a test), ``case_arm``;
- arrays: ``array`` (its items, as bash splits them), ``array_span``/``array_words`` (where
  each item is, for a file:line);
- variables: ``assignments`` (each ``NAME=word`` with its declaration keyword), ``unsets``,
  ``Vars`` (every assignment of a file in order, expanded with the environment as the starting
  values: ``$VAR``, ``${VAR:-default}``, ``$(cat file)``, modelled ``$(fn args)``) and
  ``echo_sed`` (``$(echo "${VAR:-}" | sed 's|re|repl|')``).

Each ``Vars`` variable also keeps its provenance: which environment variables and which
tree files its value was made from (``env_deps``, ``file_deps``), and, when its value is
another variable's or a modelled function's, which (``alias``, ``calls``) - so a caller can
say where an image name really came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from common.treefiles import read_text

_ASSIGN = re.compile(r"^\s*(?:(?P<keyword>readonly|export|local|declare|typeset)(?:\s+-[a-zA-Z]+)*\s+)?"
                     r"(?P<name>[A-Za-z_]\w*)=(?P<rest>.*)$")
_CAT = re.compile(r"""^\$\(\s*cat\s+("([^"]*)"|'([^']*)'|(\S+))\s*\)""")
# A whole word that is one parameter expansion: ${NAME}, ${NAME:-word}, ${NAME-word}.
_SINGLE_PARAM = re.compile(r"^\$\{([A-Za-z_]\w*)(?:(:?-)(.*))?\}$", re.S)
_SINGLE_REF = re.compile(r"^\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))$")
# Where a word may start: a `#` there begins a comment.
_WORD_START = " \t;&|()"


# --------------------------------------------------------------------------- text

def lineno(text: str, index: int) -> int:
    """The 1-based line of ``text`` that ``index`` falls on."""
    return text.count("\n", 0, index) + 1


def _comment_at(line: str) -> int:
    """Where the comment of one line starts (a ``#`` beginning a word, outside quotes), else its length."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in _WORD_START):
            return i
        i += 1
    return len(line)


def code(text: str) -> str:
    """``text`` without its comments (whole comment lines and trailing ones), every line kept, so a
    line number in it is one in ``text``: what bash runs, for a search that a comment must not satisfy."""
    return "\n".join(line[:_comment_at(line)].rstrip() for line in text.split("\n"))


# --------------------------------------------------------------------------- words and arrays

@dataclass(frozen=True)
class Span:
    """A piece of a file's text and where it starts in the file (for a file:line)."""

    text: str
    offset: int


def _close(text: str, start: int, closer: str) -> int | None:
    """Index of the ``closer`` ending what opens before ``start``: quotes, comments, ``$(...)``
    and ``${...}`` are skipped, as bash reads an array literal or a case pattern."""
    quote, depth, i = "", 0, start
    while i < len(text):
        ch = text[i]
        if ch == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and text[i - 1] in _WORD_START + "\n":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        elif text.startswith("$(", i) or text.startswith("${", i):
            depth += 1
            i += 1
        elif ch in ")}" and depth:
            depth -= 1
        elif ch == closer:
            return i
        i += 1
    return None


def array_words(span: Span) -> list[tuple[str, int]]:
    """The words of ``span`` as bash splits an array literal: (word without its quotes, offset in
    the file). A ``#`` beginning a word starts a comment; quoted spaces stay in the word."""
    out: list[tuple[str, int]] = []
    text = span.text
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        if text[i] == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        start, word, quote = i, [], ""
        while i < len(text) and (quote or not text[i].isspace()):
            ch = text[i]
            if ch == "\\" and quote != "'" and i + 1 < len(text):
                word.append(text[i:i + 2] if quote else text[i + 1])
                i += 2
                continue
            if quote and ch == quote:
                quote = ""
            elif not quote and ch in "\"'":
                quote = ch
            else:
                word.append(ch)
            i += 1
        out.append(("".join(word), span.offset + start))
    return out


def _array_head(name: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*(?:(?:readonly|local|declare|export|typeset)(?:[ \t]+-\w+)*[ \t]+)*"
                      rf"{re.escape(name)}=\(", re.M)


def array_span(text: str, name: str, offset: int = 0) -> Span | None:
    """The inside of ``[readonly|local|declare -a ]NAME=( ... )`` (the first one), up to its closing
    parenthesis as bash finds it (not one in a comment, a quote or a ``$(...)``)."""
    m = _array_head(name).search(text)
    if not m:
        return None
    end = _close(text, m.end(), ")")
    if end is None:
        return None
    return Span(text[m.end():end], offset + m.end())


def array(text: str, name: str) -> list[str] | None:
    """Items of ``NAME=( ... )`` as bash has them (comments dropped, quotes removed); None when absent."""
    span = array_span(text, name)
    return None if span is None else [w for w, _ in array_words(span)]


def array_ref(word: str) -> str | None:
    """The array a word expands item by item (``${NAME[@]}``, quotes removed), else None."""
    m = re.fullmatch(r"\$\{([A-Za-z_]\w*)\[@\]\}", word)
    return m.group(1) if m else None


# --------------------------------------------------------------------------- functions

@dataclass(frozen=True)
class Function:
    """A function definition: its name, its body and where the body starts in the file."""

    name: str
    body: str
    offset: int

    @property
    def span(self) -> Span:
        return Span(self.body, self.offset)


_FUNCTION_HEAD = re.compile(
    r"^([ \t]*)(?:function[ \t]+([\w:.-]+)[ \t]*(?:\(\))?|([\w:.-]+)[ \t]*\(\))\s*\{", re.M)
_ONE_LINE = re.compile(r"[ \t](.*;)[ \t]*\}[ \t]*(?:#.*)?$")


def functions(text: str) -> dict[str, Function]:
    """Every function defined in ``text`` (nested ones too), by name; the first definition of a name
    wins. A body ends at the ``}`` that stands alone at the definition's own indentation."""
    return dict(_functions(text))


@lru_cache(maxsize=16)  # golang.sh is asked for one function after another
def _functions(text: str) -> dict[str, Function]:
    found: dict[str, Function] = {}
    for m in _FUNCTION_HEAD.finditer(text):
        name = m.group(2) or m.group(3)
        start = m.end()
        line_end = text.find("\n", start)
        line_end = len(text) if line_end < 0 else line_end
        one = _ONE_LINE.match(text, start, line_end)
        if one:
            found.setdefault(name, Function(name, one.group(1), start + 1))
            continue
        close = re.compile(rf"^{re.escape(m.group(1))}\}}", re.M).search(text, start)
        if close:
            found.setdefault(name, Function(name, text[start:close.start()], start))
    return found


def function(text: str, name: str) -> Function | None:
    """The function ``name`` (its full name, ``kube::golang::server_targets``), or None."""
    return _functions(text).get(name)


def function_targets(text: str, name: str) -> list[str] | None:
    """The words a ``*_targets`` function echoes on Linux: its ``local targets=(...)`` plus the
    ``targets+=(...)`` lines that apply (unconditional, or under an ``OSTYPE == linux*`` test)."""
    fn = function(text, name)
    if fn is None:
        return None
    span = array_span(fn.body, "targets")
    if span is None:
        return None
    targets = [w for w, _ in array_words(span)]
    condition: list[str] = []
    for line in fn.body[span.offset + len(span.text) + 1:].splitlines():
        s = line[:_comment_at(line)].strip()
        if s.startswith("if "):
            condition.append(s)
        elif s in ("else", "else;") and condition:
            condition[-1] = f"! {condition[-1]}"
        elif s == "fi" and condition:
            condition.pop()
        elif s.startswith("targets+=("):
            end = _close(s, len("targets+=("), ")")
            linux = all(re.search(r"OSTYPE.*==\s*\"?linux", c) and not c.startswith("!") for c in condition)
            if end is not None and linux:
                targets += [w for w, _ in array_words(Span(s[len("targets+=("):end], 0))]
    return targets


@dataclass(frozen=True)
class Choice:
    """``if TEST; then echo A; else echo B; fi``: the test and the word (and file line) of each branch."""

    test: str
    then: str
    otherwise: str
    then_line: int
    otherwise_line: int


_IF_ECHO = re.compile(r"\bif\s+(?P<test>[^\n;]+?)\s*;\s*then\s+echo\s+(?P<then>\S+)\s+"
                      r"else\s+echo\s+(?P<otherwise>\S+)\s+fi\b", re.S)


def conditional_echo(text: str, fn: Function) -> Choice | None:
    """The choice ``fn`` makes, when its body (in the file ``text``) is one if/else of two echoes."""
    body = code(fn.body)  # comments gone, lines kept: a line of ``body`` is one of ``text``
    m = _IF_ECHO.search(body)
    if not m:
        return None
    first = lineno(text, fn.offset)
    return Choice(m.group("test"), m.group("then"), m.group("otherwise"),
                  first + body.count("\n", 0, m.start("then")), first + body.count("\n", 0, m.start("otherwise")))


def case_arm(span: Span, pattern: str) -> Span | None:
    """The commands of the ``case`` arm for ``pattern`` (``"amd64")`` ... ``;;``) inside ``span``."""
    m = re.search(rf'(?:^|[\s|(])"?{re.escape(pattern)}"?\)', span.text)
    if not m:
        return None
    end = span.text.find(";;", m.end())
    end = len(span.text) if end < 0 else end
    return Span(span.text[m.end():end], span.offset + m.end())


# --------------------------------------------------------------------------- variables

@dataclass(frozen=True)
class Assignment:
    """One ``[keyword ]NAME=word`` line: the word as written (quotes kept), where it is."""

    name: str
    word: str
    keyword: str      # readonly, export, local, declare, typeset or ""
    line: int

    @property
    def value(self) -> str:
        """The word with one level of quotes removed (no expansion)."""
        return _unquote(self.word)


def _prefixes_a_command(keyword: str, after: str) -> bool:
    """``NAME=word command ...``: the assignment is only the command's environment, not the shell's."""
    rest = after.strip()
    if keyword or not rest or rest[0] in "#;&|)":
        return False
    return not re.match(r"[A-Za-z_]\w*=", rest)


def assignments(text: str, name: str | None = None) -> list[Assignment]:
    """Every simple assignment at the start of a line, in file order; of ``name`` only if given. Arrays,
    words that never end and ``NAME=word command`` (the command's environment only) are left out."""
    out: list[Assignment] = []
    for number, line in enumerate(text.splitlines(), 1):
        m = _ASSIGN.match(line)
        if not m or (name is not None and m.group("name") != name):
            continue
        word = first_word(m.group("rest"))
        if word is None or word.startswith("(") or _prefixes_a_command(m.group("keyword") or "",
                                                                        m.group("rest")[len(word):]):
            continue
        out.append(Assignment(m.group("name"), word, m.group("keyword") or "", number))
    return out


def unsets(text: str) -> list[str]:
    """The variables ``unset`` removes in ``text`` (``unset -f`` names functions: left out), in order."""
    out: list[str] = []
    for line in code(text).splitlines():
        words = line.split()
        if not words or words[0] != "unset" or "-f" in words[1:]:
            continue
        out += [w for w in words[1:] if not w.startswith("-")]
    return out


# $(echo "${VAR:-}" | sed [-n] [-e] 's|RE|REPL|[p]'): a variable's value filtered by one sed substitution.
_ECHO_SED = re.compile(r"""\$\(echo\s+"\$\{(?P<var>[A-Za-z_]\w*):-\}"\s*\|\s*"""
                       r"""sed\s+(?P<flags>-n\s+-e|-ne|-n|-e)\s*'s(?P<sep>.)(?P<re>.*?)(?P=sep)(?P<repl>.*?)(?P=sep)"""
                       r"""(?P<p>p?)'\)""")


def _bre_to_python(bre: str) -> str:
    """A sed basic regular expression as a Python one (\\( \\) group; ( ) + ? { } | are literal)."""
    out, i = [], 0
    while i < len(bre):
        c = bre[i]
        if c == "\\" and i + 1 < len(bre):
            nxt = bre[i + 1]
            out.append(nxt if nxt in "(){}" else "\\" + nxt)
            i += 2
            continue
        out.append("\\" + c if c in "()+?{}|" else c)
        i += 1
    return "".join(out)


def _sed_s(value: str, print_all: bool, pattern: str, replacement: str, print_match: bool) -> str:
    """What `echo "$value" | sed [-n] 's|pattern|replacement|[p]'` prints, inside $(...)."""
    regex = re.compile(_bre_to_python(pattern))
    template = re.sub(r"\\(\d)", r"\\g<\1>", replacement.replace("&", "\\g<0>"))
    lines = []
    for line in value.split("\n"):
        m = regex.search(line)
        if m:
            line = line[:m.start()] + m.expand(template) + line[m.end():]
        if print_all or (m and print_match):
            lines.append(line)
    return "\n".join(lines).rstrip("\n")


def echo_sed(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its first ``$(echo "${VAR:-}" | sed ... 's|re|repl|[p]')`` replaced by what it
    prints, VAR's value taken from ``values``; unchanged when there is none, or VAR is not in ``values``."""
    m = _ECHO_SED.search(text)
    if not m or m.group("var") not in values:
        return text
    printed = _sed_s(values[m.group("var")], "-n" not in m.group("flags"), m.group("re"),
                     m.group("repl"), bool(m.group("p")))
    return text[:m.start()] + printed + text[m.end():]


# --------------------------------------------------------------------------- expansion

@dataclass(frozen=True)
class Call:
    """One evaluated ``$(fn args)``: which variable the function echoed, and why."""

    function: str
    args: tuple[str, ...]
    chose: str          # the variable whose value was echoed
    why: str            # the decision, in words ("statically linked: in KUBE_STATIC_BINARIES")
    where: str          # file:line of the echo that ran


# fn(vars, args) -> (value, Call); raise ValueError when it can't be evaluated.
Modelled = Callable[["Vars", list[str]], tuple[str, Call]]


class Vars:
    """Shell variables: the environment first, then the file's assignments as they are read."""

    def __init__(self, environ: Mapping[str, str], kube_root: Path) -> None:
        self.values: dict[str, str] = dict(environ)
        self.values["KUBE_ROOT"] = str(kube_root)
        self.kube_root = kube_root
        self.origin: dict[str, str] = {k: "environment" for k in environ}
        self.origin["KUBE_ROOT"] = "tree"
        self.environ = dict(environ)
        self.functions: dict[str, Modelled] = {}
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
        for assignment in assignments(text or ""):
            name, raw, number = assignment.name, assignment.word, assignment.line
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
            self.origin[name] = f"{label}:{number}"

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
                    end = _matching(text, i + 1)
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
                end = _matching(text, i + 1, "{", "}")
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


def _matching(text: str, open_index: int, opener: str = "(", closer: str = ")") -> int:
    """The index of the ``closer`` closing the ``opener`` at ``open_index`` (quotes are not parsed)."""
    depth = 0
    for j in range(open_index, len(text)):
        if text[j] == opener:
            depth += 1
        elif text[j] == closer:
            depth -= 1
            if depth == 0:
                return j
    raise ValueError(f"unbalanced ${opener}")

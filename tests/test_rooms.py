"""The product's shape: no import cycles among its modules (function-level imports included) and no
release mode compared as a bare string."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("build", "cache", "common", "engines", "images", "kit", "ops", "registry", "reports", "workspace")


def _modules() -> dict[str, Path]:
    mods = {"tasks": ROOT / "tasks.py"}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every product module ``path`` imports, at any depth of the file (``from a import b`` may name a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            subs = {f"{base}.{alias.name}" for alias in node.names}
            named.update(subs)
            if not subs <= known.keys():  # `from pkg import module` needs the module, not what pkg defines
                named.add(base)
    found = set()
    for module in named:
        while module and module not in known:
            module = module.rpartition(".")[0]
        if module and module != name:
            found.add(module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    mods = _modules()
    graph = {name: _imports(name, path, mods) for name, path in mods.items()}
    assert _cycles(graph) == []


def _mode_comparisons(source: str) -> list[int]:
    """Lines comparing something named ``mode`` (or ``….mode``) with a string literal or a tuple of them."""

    def named_mode(node: ast.expr) -> bool:
        return (isinstance(node, ast.Name) and node.id == "mode") or (
            isinstance(node, ast.Attribute) and node.attr == "mode")

    def literal(node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, str)
        return isinstance(node, ast.Tuple | ast.List | ast.Set) and any(literal(e) for e in node.elts)

    return [node.lineno for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Compare)
            and any(named_mode(a) for a in [node.left, *node.comparators])
            and any(literal(a) for a in [node.left, *node.comparators])]


def test_mode_comparison_finder() -> None:
    found = _mode_comparisons('if mode == "native": pass\nif req.mode in ("a", "b"): pass\n'
                              'x = "mode in invoke.yaml"\nif mode is Mode.NATIVE: pass\n')
    assert found == [1, 2]


def test_no_release_mode_compared_as_a_string() -> None:
    hits = [f"{path.relative_to(ROOT)}:{n}"
            for path in [ROOT / "tasks.py", *(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]
            for n in _mode_comparisons(path.read_text())]
    assert hits == []

"""The toy world is a plug-in: no core module names it, and the core imports form no cycle.

Both checks read the source with ``ast`` (nothing is imported): a string constant equal to or
starting with "toy" outside ``mixsd/toyworld/`` is a special case of the toy world in the core
(docstrings and prose inside help texts are fine), and so is any import of mixsd.toyworld.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mixsd

SRC = Path(mixsd.__file__).parent
TOYWORLD = SRC / "toyworld"
# Public option names kept as they were (``--toy-items``, ``eval.toy_items``): renaming them
# would break existing configs; the toy world's suite kind reads the value.
KEPT_NAMES = {"toy_items"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()
NAMES = {path: name for name, path in MODULES.items()}


def _core() -> list[Path]:
    return [p for p in MODULES.values() if TOYWORLD not in p.parents]


def _imported(node: ast.AST, module: str, path: Path) -> list[str]:
    """The mixsd modules an import statement names (``from a import b``: a.b when that is a
    module, else a)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (prose) of a module and its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)):
            found.add(id(body[0].value))
    return found


def test_no_core_module_names_the_toy_world():
    found = []
    for path in _core():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        prose = _docstrings(tree)
        for node in ast.walk(tree):
            where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', '?')}"
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in prose):
                text = node.value.strip().lower()
                if text.startswith("toy") and node.value not in KEPT_NAMES:
                    found.append(f"{where} string {node.value[:40]!r}")
                if "mixsd.toyworld" in node.value and path.name != "registry.py":
                    found.append(f"{where} names mixsd.toyworld")
            for name in _imported(node, NAMES[path], path):  # lazy imports too
                if name.startswith("mixsd.toyworld"):
                    found.append(f"{where} imports {name}")
    assert not found, "the toy world is named outside mixsd/toyworld/:\n" + "\n".join(found)


def test_the_only_core_mention_of_the_plugin_is_the_builtin_list():
    from mixsd.registry import BUILTIN_PLUGINS

    assert "mixsd.toyworld.plugin" in BUILTIN_PLUGINS
    text = (SRC / "registry.py").read_text(encoding="utf-8")
    assert text.count("mixsd.toyworld") == 1


def _module_level_imports(module: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            out.update(_imported(node, module, path))
            if isinstance(node, ast.If) and not (isinstance(node.test, ast.Name)
                                                 and node.test.id == "TYPE_CHECKING"):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return {m for m in out if m in MODULES and m != module}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_module_level_imports_form_no_cycle():
    """Package ``__init__`` modules importing their submodules are not counted as edges
    from the submodules back (Python runs the package first, which is no cycle)."""
    graph = {m: _module_level_imports(m, p) for m, p in MODULES.items()}
    assert len(graph) > 50  # the scan sees the package
    assert "mixsd.registry" in graph["mixsd.prompts"]  # and module-level edges
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_registry_imports_nothing_of_mixsd_but_errors():
    assert _module_level_imports("mixsd.registry", MODULES["mixsd.registry"]) == {
        "mixsd.errors"}


def _all_imports(module: str, path: Path) -> set[str]:
    """Every mixsd module ``module`` imports, at its head or inside a function (an import
    under ``if TYPE_CHECKING:`` is for annotations only and runs never)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree)
               if isinstance(node, ast.If) and isinstance(node.test, ast.Name)
               and node.test.id == "TYPE_CHECKING" for n in ast.walk(node)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) not in skipped:
            out.update(_imported(node, module, path))
    return {m for m in out if m in MODULES and m != module}


def test_no_import_cycle_even_through_imports_inside_functions():
    """A lazy import hides a dependency but does not remove it: the graph of every import,
    wherever it stands, has no cycle either (who depends on whom reads one way)."""
    graph = {m: _all_imports(m, p) for m, p in MODULES.items()}
    assert "mixsd.compare.loop" in graph["mixsd.compare"]
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)

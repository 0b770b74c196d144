"""The shape the code keeps (docs/architecture.md), read with ``ast``: short functions with
few parameters, a compare package of small modules importing at their heads, and docstrings
that point only at files that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mixsd

SRC = Path(mixsd.__file__).parent
ROOT = SRC.parent.parent
MAX_LINES, MAX_PARAMS = 60, 8
# The fused mixing loop keeps its steps in one place beside its slow reference
# (design.md); ``option`` is a declarative field helper whose parameters are the field's
# metadata.
EXEMPT = {("targets/engine.py", "_fused_loop"), ("config.py", "option")}


def _functions():
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(SRC).as_posix(), node


def _params(node: ast.FunctionDef) -> int:
    a = node.args
    names = [*a.posonlyargs, *a.args, *a.kwonlyargs]
    n = len(names) + (a.vararg is not None) + (a.kwarg is not None)
    return n - (1 if names and names[0].arg in ("self", "cls") else 0)


def test_functions_are_short_and_take_few_parameters():
    found = []
    for where, node in _functions():
        if (where, node.name) in EXEMPT:
            continue
        lines = node.end_lineno - node.lineno + 1
        if lines > MAX_LINES:
            found.append(f"{where}:{node.lineno} {node.name}: {lines} lines")
        if _params(node) > MAX_PARAMS:
            found.append(f"{where}:{node.lineno} {node.name}: {_params(node)} parameters")
    assert not found, "\n".join(found)


def test_the_compare_package_is_small_modules_importing_at_their_heads():
    for path in sorted((SRC / "compare").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 250, path.name
        tree = ast.parse(text)
        inner = [n.lineno for f in ast.walk(tree)
                 if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not inner, f"compare/{path.name}: imports inside functions at lines {inner}"


# "docs/method.md", "README.md", "docs/x/y.md" in a docstring or comment.
_DOC = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
# Markdown files the code writes (outputs, not documents it points a reader to).
WRITTEN = {"report.md", "model-card.md", "FILE.md", "STEM.md"}


def test_every_document_a_docstring_names_exists():
    """A reference such as ``docs/method.md`` resolves from the repository root (or from
    ``docs/``)."""
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in _DOC.findall(line):
                if name in WRITTEN or name.startswith("OUT/"):
                    continue
                candidates = [ROOT / name, ROOT / "docs" / name]
                if not any(c.exists() for c in candidates):
                    missing.append(f"{path.relative_to(SRC)}:{lineno} {name}")
    assert not missing, "docstrings name documents that do not exist:\n" + "\n".join(missing)


def test_the_document_check_sees_references():
    assert _DOC.findall("see method.md, 'Baselines', and docs/scale.md.") == [
        "method.md", "docs/scale.md"]

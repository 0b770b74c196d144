"""pyproject.toml declares exactly what the library imports (CI installs from a clean clone)."""

import ast
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
# import name -> distribution name, where they differ
DISTRIBUTION = {"yaml": "pyyaml", "lm_eval": "lm-eval", "math_verify": "math-verify"}


def _imports(folder: Path) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    third_party = found - set(sys.stdlib_module_names) - {"mixsd", "__future__"}
    return {DISTRIBUTION.get(name, name) for name in third_party}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() for req in requirements}


def test_every_import_is_declared_and_every_declared_package_is_imported():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = _names(project["dependencies"])
    optional = {name: _names(reqs) for name, reqs in project["optional-dependencies"].items()}
    dev_only = {"pytest", "ruff", "trl"}  # trl: tests read its chat templates, train on exports
    used = _imports(ROOT / "src" / "mixsd")
    declared = required | set().union(*optional.values())
    assert used - declared == set(), "imported by src/ but not declared in pyproject.toml"
    assert declared - dev_only - used == set(), \
        "declared in pyproject.toml but nothing in src/ imports it"
    assert optional["dev"] >= set().union(*optional.values()) - dev_only, \
        "the dev extra (make test) installs every optional dependency"

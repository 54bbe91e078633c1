"""Every module says what it offers: `__all__` lists exactly its public names.

A public name is one a module defines at top level (function, class, constant) without a
leading underscore; loggers and type variables are plumbing, not offers. Re-exporting
packages list what they re-export, and every listed name must exist.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import TypeVar

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "agents", "herald", "bench")
MODULES = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
    for package in PACKAGES
    for path in (REPO / package).rglob("*.py")
    if path.name != "__main__.py"
)


def defined_names(module_name: str) -> set[str]:
    """Public names bound at the top level of the module's source."""
    module = importlib.import_module(module_name)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_") and not is_plumbing(getattr(module, n, None))}


def is_plumbing(value: object) -> bool:
    return isinstance(value, TypeVar) or "Logger" in type(value).__name__


@pytest.mark.parametrize("module_name", MODULES)
def test_all_lists_every_public_name_and_only_real_ones(module_name: str) -> None:
    module = importlib.import_module(module_name)
    defined = defined_names(module_name)
    exported = set(getattr(module, "__all__", ()))
    assert defined <= exported, f"missing from __all__: {sorted(defined - exported)}"
    assert all(hasattr(module, n) for n in exported), "__all__ names a name that is not there"
    if not defined and not exported:
        return  # a module of side-effect-free wiring only (e.g. an empty package)
    assert exported, f"{module_name} defines public names but has no __all__"


def test_the_list_of_modules_is_the_whole_house() -> None:
    assert "pipeline.domain.planning" in MODULES and "herald.topology" in MODULES
    assert len(MODULES) > 60

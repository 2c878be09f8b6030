"""The tree shows the roles, and imports go one way: commands → runtime → addons → credentials → settings → policy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "proxy_addon"
LAYERS = ["policy", "settings", "credentials", "addons", "runtime", "commands"]


def imported_layers(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("proxy_addon."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("proxy_addon."))
    return names & set(LAYERS)


def modules(layer: str) -> list[Path]:
    """Every module of a role, its sub-packages' (`policy/boundaries/`) included."""
    return sorted((PACKAGE / layer).rglob("*.py"))


def role_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0]


def test_sub_packages_are_walked():
    assert PACKAGE / "policy" / "boundaries" / "judge.py" in modules("policy")


@pytest.mark.parametrize("path", [p for layer in LAYERS for p in modules(layer)], ids=str)
def test_no_module_imports_a_higher_role(path):
    mine = LAYERS.index(role_of(path))
    higher = {layer for layer in imported_layers(path) if LAYERS.index(layer) > mine}
    assert not higher, f"{path.relative_to(PACKAGE)} imports {higher}"


def test_pure_decisions_never_import_mitmproxy():
    for path in modules("policy"):
        tree = ast.parse(path.read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if m.startswith("mitmproxy")], str(path.relative_to(PACKAGE))


def test_every_module_sits_in_a_role_folder():
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "addon.py"}, "addon.py is what `mitmdump -s` loads; the rest lives by role"

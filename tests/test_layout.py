"""The tree shows the roles, imports go one way (commands → runtime → addons → credentials → state → settings → policy),
and the tests mirror the tree, each in its lane."""

from __future__ import annotations

import ast
import socket
import subprocess
from pathlib import Path

import pytest

from support.lanes import FOLDER_LANES, NotAUnitTest, confined, lane_of

PACKAGE = Path(__file__).resolve().parent.parent / "proxy_addon"
LAYERS = ["policy", "settings", "state", "credentials", "addons", "runtime", "commands"]


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


# The tests mirror the package: each module's fast tests in tests/<role>/test_<module>.py, the
# end-to-end ones in tests/e2e/, the image, install and deployment ones in tests/deploy/.

TESTS = Path(__file__).resolve().parent
WITHOUT_A_TEST_FILE = {
    # A package's __init__.py holds its docstring only.
    *(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("__init__.py")),
    # What `mitmdump -s` loads, the root addon in a list: e2e/test_lifecycle.py loads it into mitmdump.
    "addon.py",
    # The judge's answer types, no code: policy/boundaries/test_judge.py checks each as the judge answers it.
    "policy/boundaries/judgements.py",
}


OTHER_UNIT_FOLDERS = {"docs"}
"""Unit tests that mirror no module: `docs/` checks the documentation against the code."""


def unit_file_of(module: Path) -> Path:
    relative = module.relative_to(PACKAGE)
    return TESTS / relative.parent / f"test_{relative.name}"


@pytest.mark.parametrize("module", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_has_its_test_file(module):
    if str(module.relative_to(PACKAGE)) in WITHOUT_A_TEST_FILE:
        return
    assert unit_file_of(module).is_file(), f"add {unit_file_of(module).relative_to(TESTS.parent)} (see CONTRIBUTING.md)"


def test_every_unit_test_file_is_named_after_its_module():
    for test_file in sorted(p for layer in LAYERS for p in (TESTS / layer).rglob("test_*.py")):
        relative = test_file.relative_to(TESTS)
        module = PACKAGE / relative.parent / (relative.name.removeprefix("test_"))
        assert module.is_file(), f"{relative}: no proxy_addon/{module.relative_to(PACKAGE)} (tests mirror the package)"


def test_every_test_file_sits_in_a_lane_folder():
    loose = sorted(p.name for p in TESTS.glob("test_*.py"))
    assert loose == ["test_layout.py"], "end-to-end tests go to tests/e2e/, image and install ones to tests/deploy/"
    folders = {p.relative_to(TESTS).parts[0] for p in TESTS.rglob("test_*.py")} - {"test_layout.py"}
    assert folders <= {*LAYERS, *FOLDER_LANES, *OTHER_UNIT_FOLDERS}


def test_no_test_name_is_defined_twice():
    seen: dict[str, str] = {}
    twice = []
    for path in sorted(TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
                where = str(path.relative_to(TESTS))
                if node.name in seen:
                    twice.append(f"{node.name}: {seen[node.name]} and {where}")
                seen.setdefault(node.name, where)
    assert twice == []


def test_each_folder_gives_its_lane():
    assert lane_of(TESTS / "e2e" / "test_injection.py") == "e2e"
    assert lane_of(TESTS / "deploy" / "test_container.py") == "deploy"
    assert lane_of(TESTS / "policy" / "boundaries" / "test_judge.py") == "unit"
    assert lane_of(Path(__file__)) == "unit"


def test_a_unit_test_may_not_start_a_process_or_reach_past_loopback():
    violations: list[str] = []
    with confined(violations):
        with pytest.raises(NotAUnitTest):
            subprocess.run(["true"], check=False)
        with socket.socket() as remote, pytest.raises(NotAUnitTest):
            remote.connect(("192.0.2.1", 80))
        with socket.socket() as local:
            local.bind(("127.0.0.1", 0))
    assert violations == [
        "started a process (subprocess)",
        "called socket.connect(('192.0.2.1', 80)), which is not loopback",
    ]

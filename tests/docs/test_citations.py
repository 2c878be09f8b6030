"""Every test, file and module the documentation cites exists: `tests/…` paths, `tests/…::test_…` functions,
`proxy_addon/…` paths, and each `test_…` name in a code span."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
DOCUMENTS = sorted(
    [
        *(REPO / name for name in ("README.md", "CONTRIBUTING.md", "SECURITY.md", "CHANGELOG.md")),
        *(REPO / "docs").rglob("*.md"),
    ]
)
TEST_REFERENCE = re.compile(r"\btests/([\w./-]+\.py)(?:::(\w+))?")
PATH = re.compile(r"\b(tests|proxy_addon)/[\w./-]*")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
TEST_NAME = re.compile(r"\btest_\w+")


@cache
def functions(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text())
    return frozenset(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


@cache
def known_test_names() -> frozenset[str]:
    """Every test function and test module name in tests/ (a code span may name either)."""
    files = [p for p in TESTS.rglob("test_*.py") if "node_modules" not in p.parts]
    return frozenset({p.stem for p in files} | {name for p in files for name in functions(p)})


def cited(document: Path) -> list[str]:
    return [f"tests/{f}::{name}" if name else f"tests/{f}" for f, name in TEST_REFERENCE.findall(document.read_text())]


def test_there_are_documents_to_check():
    assert all(path.is_file() for path in DOCUMENTS), [p for p in DOCUMENTS if not p.is_file()]
    assert len(DOCUMENTS) > 10


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_cited_test_exists(document):
    missing = []
    for reference in cited(document):
        file, _, name = reference.partition("::")
        path = REPO / file
        if not path.is_file() or (name and name not in functions(path)):
            missing.append(reference)
    assert missing == [], f"{document.relative_to(REPO)} cites tests that do not exist"


def paths_in(text: str) -> set[str]:
    """Each `tests/…` and `proxy_addon/…` path, but not a template such as `tests/<role>/test_<module>.py`."""
    return {m[0].rstrip(".") for m in PATH.finditer(text) if text[m.end() : m.end() + 1] not in ("<", "{", "*")}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_cited_path_exists(document):
    paths = paths_in(document.read_text())
    assert sorted(path for path in paths if not (REPO / path).exists()) == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_test_name_in_a_code_span_exists(document):
    names = {name for span in CODE_SPAN.findall(document.read_text()) for name in TEST_NAME.findall(span)}
    assert sorted(names - known_test_names()) == [], f"{document.relative_to(REPO)} names tests that do not exist"

"""docs/architecture.md lists the root's chain as the code builds it: each class, its module and role, in order."""

from __future__ import annotations

import re
from pathlib import Path

from proxy_addon.runtime.root import HOOK_ORDER, AtlassianAuthProxy

DOC = Path(__file__).parents[2] / "docs" / "architecture.md"
ROW = re.compile(r"\| (\d+) \| `(\w+)` \| `([\w.]+)` \| (.+) \|")


def documented_order() -> list[tuple[str, str, str]]:
    section = DOC.read_text().partition("## The hook order")[2].partition("\n## ")[0]
    rows = [ROW.fullmatch(line) for line in section.splitlines() if line.startswith("| ")]
    found = [row for row in rows if row is not None]
    assert [int(row[1]) for row in found] == list(range(1, len(found) + 1)), "numbered 1, 2, 3, ..."
    return [(row[2], row[3], row[4]) for row in found]


def test_the_document_lists_exactly_the_chain_in_the_codes_order():
    code = [(link.addon.__name__, link.addon.__module__.removeprefix("proxy_addon."), link.role) for link in HOOK_ORDER]
    assert documented_order() == code


def test_the_root_chains_one_child_of_each_class_in_that_order():
    root = AtlassianAuthProxy()
    assert [type(child) for child in root.children] == [link.addon for link in HOOK_ORDER]

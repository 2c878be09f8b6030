"""The client recipes of the docs, read from the pages themselves, so that a test runs exactly what a reader copies.

A recipe is a fenced code block right under an HTML comment, which mkdocs does not show:
`<!-- recipe: NAME -->` over the command (run in sh after `eval "$(atlassian-auth-proxy env)"`)
and `<!-- recipe: NAME FILE -->` over a file the command uses, written beside it. A name is used
once across the pages. `recipes_read_by_tests()` finds, without running anything, which recipes
each test reads, so that tests/e2e/test_client_recipes.py can check that every recipe on a page is
run by a test the page names.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
E2E = REPO / "tests" / "e2e"
CLIENTS = "how-to/clients.md"
MCP_AND_EXEC = "how-to/mcp-and-exec.md"
PAGES = (CLIENTS, MCP_AND_EXEC)
BLOCK = re.compile(
    r"^<!-- recipe: (?P<name>[\w.-]+)(?: (?P<file>[\w.-]+))? -->\n+```[\w-]*\n(?P<body>.*?)^```$", re.M | re.S
)
MARKER = re.compile(r"<!-- recipe:")


@dataclass(frozen=True)
class Recipe:
    page: str
    name: str
    command: str = ""
    files: dict[str, str] = field(default_factory=dict)

    def write_files(self, where: Path) -> None:
        for name, text in self.files.items():
            (where / name).write_text(text)


def recipes(page: str) -> dict[str, Recipe]:
    """Every recipe on `page` (relative to docs/) by name; a marker without its block is an error."""
    text = (DOCS / page).read_text()
    commands: dict[str, str] = {}
    files: dict[str, dict[str, str]] = {}
    blocks = list(BLOCK.finditer(text))
    assert len(blocks) == len(MARKER.findall(text)), f"{page}: a `<!-- recipe: ... -->` is not right above a block"
    for block in blocks:
        name, file, body = block["name"], block["file"], block["body"]
        if file:
            assert file not in files.setdefault(name, {}), f"{page}: recipe {name} has {file} twice"
            files[name][file] = body
        else:
            assert name not in commands, f"{page}: recipe {name} has two commands"
            commands[name] = body.strip()
    return {name: Recipe(page, name, commands.get(name, ""), files.get(name, {})) for name in {*commands, *files}}


def recipe(page: str, name: str) -> Recipe:
    found = recipes(page)
    assert name in found, f"docs/{page} has no recipe {name!r} (it has: {', '.join(sorted(found))})"
    return found[name]


def recipes_read_by_tests() -> dict[str, set[str]]:
    """`tests/e2e/FILE::TEST` -> the recipe names the test passes to `recipe(...)` as literals.

    A test that reads the recipe its parameter names (`recipe(CLIENTS, name)`) has, besides, one
    `tests/e2e/FILE::TEST[ID]` for each string in its decorators, which reads recipe ID.
    """
    read: dict[str, set[str]] = {}
    for path in sorted(E2E.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
                continue
            test = f"tests/e2e/{path.name}::{node.name}"
            calls = [c for part in node.body for c in ast.walk(part) if isinstance(c, ast.Call)]
            names = [c.args[1] for c in calls if getattr(c.func, "id", None) == "recipe" and len(c.args) == 2]
            read[test] = {n.value for n in names if isinstance(n, ast.Constant)}
            if any(not isinstance(n, ast.Constant) for n in names):
                for decorator in node.decorator_list:
                    for value in ast.walk(decorator):
                        if isinstance(value, ast.Constant) and isinstance(value.value, str):
                            read[f"{test}[{value.value}]"] = {value.value}
    return read

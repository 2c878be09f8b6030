"""The client pages agree with the tests: every recipe on them is run by a test that the page names.

The tests read each recipe from the page (support/recipes.py), so what runs is what a reader
copies; this checks, without running them, that no recipe is left without its test and that
every test a page cites exists and reads what the page says it does.
"""

from __future__ import annotations

import re

import pytest

from support.recipes import DOCS, PAGES, recipes, recipes_read_by_tests

CITED = re.compile(r"`(tests/e2e/test_\w+\.py::test_\w+(?:\[[\w.-]+\])?)`")


@pytest.mark.parametrize("page", PAGES)
def test_every_recipe_on_the_page_is_run_by_a_test_it_names(page):
    read = recipes_read_by_tests()
    cited = CITED.findall((DOCS / page).read_text())
    assert cited, f"docs/{page} names no test"
    unknown = [test for test in cited if test not in read]
    assert unknown == [], f"docs/{page} names tests that do not exist (or do not read that recipe): {unknown}"
    run = set().union(*(read[test] for test in cited))
    on_the_page = set(recipes(page))
    assert on_the_page - run == set(), f"docs/{page}: recipes no test it names runs"
    assert run - on_the_page == set(), f"docs/{page} names tests for recipes it does not have"


def test_a_recipe_name_is_used_once_across_the_pages():
    names = [name for page in PAGES for name in recipes(page)]
    assert len(names) == len(set(names))


def test_a_marker_must_sit_right_above_its_block(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("<!-- recipe: loose -->\ntext\n\n```sh\ncurl x\n```\n")
    monkeypatch.setattr("support.recipes.DOCS", tmp_path)
    with pytest.raises(AssertionError, match="is not right above a block"):
        recipes("page.md")

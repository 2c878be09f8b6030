"""The reference pages say what the code does: the generated tables are the code's, every setting is described,
and the metrics page names exactly the metrics the proxy registers."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from proxy_addon.runtime.root import AtlassianAuthProxy
from proxy_addon.settings.model import Settings
from proxy_addon.settings.tables import ClientSettings, SiteSettings

from support.docs_reference import BLOCK, COMMAND, DOCS, GENERATED, REPO, pages, regenerated


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_generated_table_is_what_the_code_says_now(page):
    text = page.read_text()
    assert regenerated(text) == text, f"{page.relative_to(REPO)} disagrees with the code: run {COMMAND}"


def test_each_generated_table_sits_on_its_page():
    found = {m[2]: path.relative_to(DOCS).as_posix() for path in pages() for m in BLOCK.finditer(path.read_text())}
    assert found == {
        "settings": "reference/settings.md",
        "toml-top-level": "reference/toml.md",
        "toml-sites": "reference/toml.md",
        "toml-clients": "reference/toml.md",
        "decisions": "reference/decisions.md",
        "other-answers": "reference/decisions.md",
    }
    assert set(found) == set(GENERATED)


@pytest.mark.parametrize("model", [Settings, SiteSettings, ClientSettings], ids=lambda m: m.__name__)
def test_every_setting_and_key_says_what_it_is_for(model: type[BaseModel]):
    undescribed = [name for name, field in model.model_fields.items() if not (field.description or "").strip()]
    assert undescribed == [], f"give each a description= on its Field in {model.__module__}, then run {COMMAND}"


METRICS = DOCS / "reference" / "metrics.md"
TABLE_ROW = re.compile(r"^\| `(atlassian_proxy_\w+)` \|", re.M)


def registered_metrics() -> set[str]:
    """The names `/metrics` shows for each metric the root addon registers (a counter with `_total`)."""
    registry = AtlassianAuthProxy().metrics.registry
    return {f"{family.name}_total" if family.type == "counter" else family.name for family in registry.collect()}


def test_the_metrics_page_names_only_metrics_the_proxy_registers():
    documented = set(TABLE_ROW.findall(METRICS.read_text()))
    assert documented, "the metrics table lost its rows"
    assert documented - registered_metrics() == set()


def test_every_metric_the_proxy_registers_is_in_the_reference():
    reference = "".join(path.read_text() for path in sorted((DOCS / "reference").glob("*.md")))
    assert {name for name in registered_metrics() if f"`{name}`" not in reference} == set()

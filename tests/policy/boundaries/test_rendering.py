"""When a request has the site render: a representation parameter, a path segment, a judged body's `expand`.
boundaries/test_judge.py checks that the judge refuses each for a bounded client, before any lookup."""

from __future__ import annotations

import pytest

from proxy_addon.policy.boundaries.paths import Unjudgeable
from proxy_addon.policy.boundaries.rendering import body_renders, query_renders, segments_render


@pytest.mark.parametrize(
    ("query", "renders"),
    [
        ("expand=renderedFields", True),
        ("expand=names,RENDEREDFIELDS,changelog", True),
        ("Expand=%72enderedBody", True),
        ("expand%5B%5D=renderedFields", True),
        ("expand[]=renderedFields", True),
        ("body-format=view", True),
        ("body_format=export_view", True),
        ("bodyFormat=editor2", True),
        ("expand=body.storage,version,space", False),
        ("body-format=atlas_doc_format", False),
        ("expand=names,schema,changelog,transitions", False),
        ("jql=project%3DVIEW&fields=renderedFields", False),
        ("expanded=renderedFields", False),
        ("", False),
    ],
)
def test_a_query_renders_when_a_representation_parameter_asks_for_a_rendered_one(query, renders):
    assert query_renders(query) is renders


def test_a_query_that_is_not_utf8_cannot_be_judged():
    with pytest.raises(Unjudgeable, match="not UTF-8"):
        query_renders("expand=%ff")


def spans(route: str, *segments: str) -> list[tuple[int, int]]:
    """The spans of `segments` in `route`, as a row's named groups capture them."""
    found = []
    for segment in segments:
        start = route.index(f"/{segment}") + 1
        found.append((start, start + len(segment)))
    return found


@pytest.mark.parametrize(
    ("route", "captured", "renders"),
    [
        ("/wiki/rest/api/content/1/history/1/macro/id/0f5a/convert/view", (), True),
        ("/wiki/rest/api/content/1/history/1/macro/id/0f5a/convert/storage", (), True),
        ("/wiki/rest/api/content/1/version/2/VIEW", (), True),
        ("/wiki/rest/api/content/1/child/comment/editor2", (), True),
        ("/rest/api/2/issue/OPS-1/render", (), True),
        ("/rest/api/2/issue/OPS-1/renderedFields", (), True),
        ("/wiki/rest/api/space/VIEW/content", ("VIEW",), False),
        ("/wiki/rest/api/space/Editor2", ("Editor2",), False),
        ("/rest/api/3/project/RENDER", ("RENDER",), False),
        ("/wiki/rest/api/content/1/history/1/macro/id/0f5a", (), False),
        ("/rest/api/3/project/OPS/versions", (), False),
    ],
)
def test_a_segment_naming_a_conversion_or_a_rendered_representation_renders_unless_it_is_data(route, captured, renders):
    assert segments_render(route, spans(route, *captured)) is renders


@pytest.mark.parametrize(
    ("document", "renders"),
    [
        ({"jql": "project = OPS", "expand": ["renderedFields"]}, True),
        ({"jql": "project = OPS", "expand": "names,renderedFields"}, True),
        ({"jql": "project = OPS", "Expand": "RenderedFields"}, True),
        ({"jql": "", "expand": ["names", ["renderedBody"]]}, True),
        ({"fields": {"project": {"key": "OPS"}}, "expand": "renderedFields"}, True),
        ({"issueUpdates": [{"body-format": {"view": 1}}]}, True),
        ({"jql": "project = OPS", "expand": ["names"]}, False),
        ({"jql": "summary ~ renderedFields", "fields": ["renderedFields"]}, False),
        ({"body": {"storage": {"value": "<p>view</p>", "representation": "storage"}}}, False),
        ([], False),
        ("expand=renderedFields", False),
    ],
)
def test_a_judged_body_renders_when_an_expand_at_any_depth_asks_for_a_rendered_representation(document, renders):
    assert body_renders(document) is renders

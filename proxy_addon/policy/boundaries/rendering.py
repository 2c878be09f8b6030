"""Rendering: a request that has the site render shows whatever the renderer pulls in, which no bound judges.

Confluence renders a body's macros: `jira` shows issues of any project, `include` and
`excerpt-include` pages of any space. Jira renders each issue key in a text field as a link titled
with that issue's summary, struck through once resolved, whatever its project. So a request that
renders reaches every project and every space, and is refused for any bounded client.

A request renders when its route does (a row whose `renders` is `Renders.ALWAYS`: a body or macro
conversion, Jira's render endpoint), or when it asks to, in any of the ways Atlassian's APIs let a
client choose a representation:

- a parameter `expand` or `body-format` (any case; `-`, `_` and other punctuation in the name
  ignored, as `body_format`, `bodyFormat` or `expand[]` may be read too) whose value, anywhere in
  its comma list, mentions `view` (`body.view`, `export_view`, `styled_view`,
  `anonymous_export_view`), `editor` (`editor`, `editor2`) or `render` (`renderedFields`,
  `renderedBody`);
- a path segment that names a rendered representation or a conversion (`view`, `export_view`,
  `styled_view`, `anonymous_export_view`, `editor`, `editor2`, `convert`, `render...`), such as
  `/content/{id}/history/{version}/macro/id/{macroId}/convert/view`; a segment a row captures as a
  key or id (`{space}` = `VIEW`) is data, not a representation;
- a judged body's `expand` (a POST search's `"expand": ["renderedFields"]`), under the same rules.

The unrendered forms hold the source, macros and keys as written, and pass: `storage`,
`atlas_doc_format`, `raw`, `wiki`, `plain`, and Jira's fields without `renderedFields`.
"""

from __future__ import annotations

import re
from typing import Any

from proxy_addon.policy.boundaries.paths import parameters

REPRESENTATION_PARAMETERS = frozenset({"expand", "bodyformat"})
"""Names of the parameters (and body keys) that choose a representation, in lower case, letters and digits only."""
RENDERED = re.compile(r"view|editor|render", re.IGNORECASE)
"""What a representation parameter's value mentions when it asks for a rendered one."""
RENDERING_SEGMENTS = frozenset({"convert", "view", "export_view", "styled_view", "anonymous_export_view"})
"""Path segments, in lower case, naming a conversion or a rendered representation; and `RENDERING_BEGINNINGS`."""
RENDERING_BEGINNINGS = ("editor", "render")
_PUNCTUATION = re.compile(r"[^0-9a-z]+")


def _chooses_representation(name: str) -> bool:
    return _PUNCTUATION.sub("", name.lower()) in REPRESENTATION_PARAMETERS


def query_renders(query: str) -> bool:
    """Does a query ask for a rendered representation? Raises `Unjudgeable` for a query that is not UTF-8."""
    if not query:
        return False
    return any(_chooses_representation(name) and RENDERED.search(value) for name, value in parameters(query))


def segments_render(route: str, captured: list[tuple[int, int]]) -> bool:
    """Does a path segment of `route` (decoded, canonical) name a conversion or a rendered representation?

    `captured`: the spans of the segments a row's template names as a key or id, which are data.
    """
    start = 0
    for segment in route.split("/"):
        end = start + len(segment)
        if (start, end) not in captured:
            lowered = segment.lower()
            if lowered in RENDERING_SEGMENTS or lowered.startswith(RENDERING_BEGINNINGS):
                return True
        start = end + 1
    return False


def body_renders(document: Any) -> bool:
    """Does a judged JSON body ask for a rendered representation: an `expand` (or `body-format`), at any depth
    and in any case, with a string anywhere in its value that asks for one?"""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if _chooses_representation(key) and _mentions_rendering(item):
                    return True
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    return False


def _mentions_rendering(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and RENDERED.search(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False

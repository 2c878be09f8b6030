"""The route table: what each row reaches and what judges it, as docs/reference/boundaries.md lists it."""

from __future__ import annotations

import re
from pathlib import Path

from proxy_addon.policy.boundaries.routes import ALL, ROUTES, Action, Renders, Route
from proxy_addon.policy.layouts import Product


def example_path(template: str) -> str:
    return re.sub(r"\{[a-z*]+\}", "X1", template.replace("{v}", "3").replace("/**", ""))


def test_no_refusal_in_the_table_is_shadowed_by_an_earlier_row():
    for route in ROUTES:
        if route.action is Action.REFUSE:
            path = example_path(route.template)
            for method in route.methods:
                first = next(r for r in ROUTES if r.product is route.product and r.allows(method, path))
                assert first is route, (method, route.template, first.template)


DOC = Path(__file__).resolve().parents[3] / "docs" / "reference" / "boundaries.md"


def table_row(route: Route) -> str:
    methods = (
        "any" if route.methods == ALL else ", ".join(sorted(route.methods, key=["GET", "HEAD", "POST", "PUT"].index))
    )
    reaches = ", ".join(p for p in (Product.JIRA, Product.CONFLUENCE) if p in route.reaches) or "nothing"
    return f"| {route.product} | {methods} | `{route.template}` | {reaches} | {route.renders} | {route.action} |"


def test_the_documented_route_table_is_the_modules():
    text = DOC.read_text()
    start = text.index("| product | methods | route | reaches | renders | what the boundary does |")
    table = text[start:].split("\n\n")[0].splitlines()[2:]
    assert table == [table_row(route) for route in ROUTES]


def test_every_row_judges_at_most_the_product_it_reaches():
    for route in ROUTES:
        judged = route.action.judges
        if route.action is Action.NEUTRAL:
            assert route.reaches == frozenset(), route.template
        elif judged is None:
            assert route.action in (Action.REFUSE, Action.UNJUDGED), route.template
        else:
            assert judged in route.reaches, route.template
        assert route.template.startswith("/wiki/" if route.product is Product.CONFLUENCE else "/rest/"), route.template


def test_no_family_shadows_a_judged_row():
    for index, route in enumerate(ROUTES):
        if route.action.judges is None:
            continue
        path = example_path(route.template)
        for method in route.methods:
            first = next(r for r in ROUTES if r.product is route.product and r.allows(method, path))
            assert first.action.judges is route.action.judges, (method, route.template, first.template)
            assert ROUTES.index(first) <= index


def test_every_row_says_when_it_renders_and_the_rows_that_always_render_judge_nothing():
    for route in ROUTES:
        assert route.renders in Renders, route.template
        if route.renders is Renders.ALWAYS:
            assert route.action is Action.REFUSE, route
            assert route.reaches == {Product.JIRA, Product.CONFLUENCE}, route
    always = {route.template for route in ROUTES if route.renders is Renders.ALWAYS}
    assert always == {
        "/rest/api/1.0/render",
        "/wiki/rest/api/content/{content}/history/{*}/macro/**/convert/**",
        "/wiki/rest/api/contentbody/**",
    }

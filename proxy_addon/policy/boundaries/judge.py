"""The judge: one credentialed request of a bounded client, judged against the route table.

A client with `jira_projects` reaches only those projects, one with `confluence_spaces` only
those spaces; an API token cannot be narrowed like that, so the proxy judges every request of
such a client against `routes.ROUTES`, the one table (docs/reference/boundaries.md lists it).
Default deny: a bounded client may use only the table's routes, in either product, and a row
only if its action judges every bound the client has in what the row reaches:

- a project-neutral read passes;
- a route naming an issue, project, page or space in its path is judged by that key; a numeric
  id is looked up once (with the site's credentials) and judged by the key it belongs to;
- a search has its JQL/CQL confined: `project in ("OPS") AND (<the client's query>)`;
- a create (or edit) is judged by the project or space its body names;
- a request that has the site render reaches what the renderer pulls in (issues of any project,
  pages of any space), which no bound can judge (`rendering`): refused, whatever the row.

Before anything is judged, a target that URL parsers read in different ways is refused
(`policy.targets`): the site must read the target the judge read.

The product comes from the site (`policy.layouts`): a path is placed in canonical form, Cloud's,
before it is judged (`paths`), and lookups go back to the site's own layout (`lookups`).
`judge()` is pure: lookups and the body are asked for (`NeedsLookup`, `NeedsBody`) and the
caller calls again with them.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast
from urllib.parse import quote

from proxy_addon.policy.boundaries.body import check_body, json_object
from proxy_addon.policy.boundaries.judgements import (
    ALLOWED,
    NEEDS_BODY,
    Judgement,
    Malformed,
    NeedsLookup,
    OutOfBounds,
    Refused,
    Rewritten,
)
from proxy_addon.policy.boundaries.lookups import Known, RefKind
from proxy_addon.policy.boundaries.paths import CanonicalPath, Unjudgeable, parameters, raw_parameters, split_path
from proxy_addon.policy.boundaries.references import ReferenceCheck
from proxy_addon.policy.boundaries.rendering import body_renders, query_renders, segments_render
from proxy_addon.policy.boundaries.routes import BODY_ACTIONS, IDENTITY, ROUTES, Action, Renders, Route
from proxy_addon.policy.clients import Client
from proxy_addon.policy.layouts import CLOUD, Layout, Product
from proxy_addon.policy.query_language import BadQuery, confine
from proxy_addon.policy.record import Decision
from proxy_addon.policy.targets import ambiguous_target

RENDERED = (
    "has the site render (a rendered body or field: `body.view`, `body-format=view`, `renderedFields`, "
    "`renderedBody`; a conversion; a render endpoint), which shows issues and pages of any project or space; "
    "ask for `storage`, `atlas_doc_format` or the fields as stored instead"
)
BOUND_NAMES = {Product.JIRA: "jira_projects", Product.CONFLUENCE: "confluence_spaces"}


def judge(
    method: str,
    path: str,
    client: Client,
    body: bytes | None = None,
    known: Known | None = None,
    layout: Layout = CLOUD,
) -> Judgement:
    """The judgement of one credentialed request of `client` to a site of this `layout`.

    Call with `body=None` first (at the request head); on `NeedsBody` again with the body, on
    `NeedsLookup` again with those refs in `known`.
    """
    if not client.bounded:
        return ALLOWED
    method = method.upper()
    if (ambiguous := ambiguous_target(path, judged=True)) is not None:
        return Refused(400, Decision.BAD_QUERY, f"client {client.name}: the request target holds {ambiguous}")
    try:
        route, raw, query = split_path(path)
        asks_to_render = query_renders(query)
    except (Unjudgeable, UnicodeDecodeError) as e:
        return Refused(400, Decision.BAD_QUERY, f"client {client.name}: {e}; it cannot be judged against its bounds")
    if asks_to_render:
        return _refused(client, method, raw, RENDERED, _bounds(client))
    placed = layout.place(route)
    if placed is None:
        if not layout.known and IDENTITY.allows(method, route):
            return ALLOWED
        return _refused(client, method, raw, _unplaced(layout), _bounds(client))
    target = CanonicalPath(placed.product, placed.route, placed.base, raw, query)
    row = next((r for r in ROUTES if r.product is target.product and r.allows(method, target.route)), None)
    if row is None:
        return _refused(client, method, raw, f"is in no {target.product} route family of the table", _bounds(client))
    if row.renders is Renders.ALWAYS or segments_render(target.route, _captured(row, target.route)):
        return _refused(client, method, raw, RENDERED, _bounds(client))
    judged = row.action.judges
    bounded = frozenset(product for product in row.reaches if _bound(client, product) is not None)
    if not bounded:
        return ALLOWED
    if bounded != {judged}:
        reach = " and ".join(product for product in Product if product in row.reaches)
        unjudged = bounded - {judged}
        why = f"is in route family `{row.template}`, which reaches {reach} but does not judge {_names(unjudged)}"
        return _refused(client, method, raw, why, unjudged)
    return _Judge(client, target, method, row, body, known or {}).run()


def _captured(row: Route, route: str) -> list[tuple[int, int]]:
    """The spans of `route`'s segments that `row` names as a key or id (`{issue}`, `{space}`...): data, not
    a representation."""
    match = row.pattern.fullmatch(route)
    if match is None:
        return []
    return [match.span(name) for name, value in match.groupdict().items() if value is not None]


def _bound(client: Client, product: Product) -> frozenset[str] | None:
    return client.jira_projects if product is Product.JIRA else client.confluence_spaces


def _bounds(client: Client) -> frozenset[Product]:
    return frozenset(product for product in Product if _bound(client, product) is not None)


def _names(bounds: frozenset[Product]) -> str:
    return " and ".join(BOUND_NAMES[product] for product in Product if product in bounds)


def _refused(client: Client, method: str, raw: str, why: str, bounds: frozenset[Product]) -> Refused:
    return Refused(
        403,
        Decision.OUT_OF_BOUNDS,
        f"client {client.name} has {_names(bounds)}: {method} {raw} {why} (see docs/reference/boundaries.md)",
    )


def _unplaced(layout: Layout) -> str:
    if not layout.known:
        return (
            "goes to a site whose product is not known (not Atlassian Cloud, and its [[sites]] table sets no "
            "`product`), where only GET /rest/api/{2,3}/myself passes"
        )
    return f"is on no product this site serves ({layout})"


class _Judge:
    """One request's judgement by its route's action: what the path, the query and the body name."""

    def __init__(
        self, client: Client, target: CanonicalPath, method: str, route: Route, body: bytes | None, known: Known
    ) -> None:
        self.client, self.target, self.method, self.route, self.body = client, target, method, route, body
        self.match = cast(re.Match[str], route.pattern.fullmatch(target.route))  # the route was found by it
        version = re.match(r"/rest/api/([23])/", target.route)
        self.refs = ReferenceCheck(client, target.base, version[1] if version else "3", known)

    def run(self) -> Judgement:
        try:
            return self._run()
        except OutOfBounds as out:
            return Refused(403, Decision.OUT_OF_BOUNDS, f"client {self.client.name}: {out}")
        except (Malformed, Unjudgeable) as bad:
            return Refused(400, Decision.BAD_QUERY, f"client {self.client.name}: {bad}")

    def _run(self) -> Judgement:
        action = self.route.action
        if action is Action.NEUTRAL:
            return ALLOWED
        if action in (Action.JQL, Action.CQL):
            return self._search(action)
        for kind in ("issue", "project", "content", "space", "spaceid"):
            if (value := self.match.groupdict().get(kind)) is not None:
                self._path_reference(kind, value)
        if action is Action.SPACE_PARAM:
            self._space_param()
        if self.refs.missing:
            return NeedsLookup(frozenset(self.refs.missing))
        if action not in BODY_ACTIONS:
            return ALLOWED
        if self.body is None:
            return NEEDS_BODY
        check_body(action, self.target.route, self._document(self.body), self.refs)
        return NeedsLookup(frozenset(self.refs.missing)) if self.refs.missing else ALLOWED

    def _path_reference(self, kind: str, value: str) -> None:
        if kind == "issue":
            self.refs.issue(value, "the path")
        elif kind == "project":
            self.refs.project(value, "the path")
        elif kind == "content":
            self.refs.content(value, "the path")
        elif kind == "space":
            self.refs.space_key(value, "the path")
        else:
            self.refs.space_id(value, "the path")

    def _space_param(self) -> None:
        pairs = parameters(self.target.query)
        if any(name.lower() == "spacekey" and name != "spaceKey" for name, _ in pairs):
            raise Malformed("spaceKey is spelt `spaceKey` (Confluence reads no other spelling)")
        values = [value for name, value in pairs if name == "spaceKey"]
        if len(values) != 1:
            raise OutOfBounds("GET /wiki/rest/api/content needs exactly one spaceKey parameter")
        self.refs.space_key(values[0], "the spaceKey parameter")

    def _search(self, action: Action) -> Judgement:
        jql = action is Action.JQL
        name, field, kind = ("jql", "project", RefKind.PROJECT) if jql else ("cql", "space", RefKind.SPACE)
        keys = self.refs.bound(kind)
        if not keys:
            raise OutOfBounds(f"a search cannot be confined to {self.refs.bound_text(kind)}")
        pairs = parameters(self.target.query)
        named = [i for i, (key, _) in enumerate(pairs) if key.lower() == name]
        if self.method != "POST":
            if len(named) > 1 or any(pairs[i][0] != name for i in named):
                raise Malformed(f"a search needs at most one `{name}` parameter, in lower case")
            query = pairs[named[0]][1] if named else ""
            confined = self._confine(query, field, keys, name)
            rest = [part for i, part in enumerate(raw_parameters(self.target.query)) if i not in named]
            parts = [f"{name}={quote(confined, safe='')}", *rest]
            return Rewritten(path=f"{self.target.raw}?{'&'.join(parts)}")
        if named:
            raise Malformed(f"a POST search takes its `{name}` in the body, not in the URL")
        if self.body is None:
            return NEEDS_BODY
        document = self._document(self.body)
        if any(key.lower() == name and key != name for key in document):
            raise Malformed(
                f"the body spells `{name}` another way too; a search takes exactly one `{name}`, in lower case"
            )
        query = document.get(name, "")
        if query is None:
            query = ""
        if not isinstance(query, str):
            raise Malformed(f"the body's `{name}` is not a string")
        document[name] = self._confine(query, field, keys, name)
        return Rewritten(body=json.dumps(document).encode())

    def _document(self, body: bytes) -> dict[str, Any]:
        """The judged body as a JSON object; raises `OutOfBounds` when it asks for a rendered representation."""
        document = json_object(body)
        if body_renders(document):
            raise OutOfBounds(f"{self.method} {self.target.raw}: the body's `expand` {RENDERED}")
        return document

    def _confine(self, query: str, field: str, keys: frozenset[str], name: str) -> str:
        try:
            return confine(query, field, keys)
        except BadQuery as e:
            raise Malformed(f"the {name.upper()} cannot be confined to its bounds: {e}") from None

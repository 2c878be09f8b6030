"""Jira-project and Confluence-space boundaries: which routes a bounded client may use, and how each is judged.

A client with `jira_projects` reaches only those projects, one with `confluence_spaces` only
those spaces; an API token cannot be narrowed like that, so the proxy judges every request of
such a client against `ROUTES`, the one table (README, "Agents and boundaries", lists it).
Default deny: a bounded client may use only the table's routes, in either product.

Each row says which products' data its routes can reach (`reaches`) and what its action judges.
A bounded client may use a row only if the action judges every bound the client has in what
the row reaches; a row reaching only products the client is not bounded in passes unjudged:

- a project-neutral read passes;
- a route naming an issue, project, page or space in its path is judged by that key; a numeric
  id is looked up once (with the site's credentials) and judged by the key it belongs to;
- a search has its JQL/CQL confined: `project in ("OPS") AND (<the client's query>)`;
- a create (or edit) is judged by the project or space its body names;
- a rendered Confluence body reaches what its macros pull in (issues of any project, pages of any
  space), which no bound can judge;
- every other route (unknown roots, plugin servlets, GraphQL, the gateway's other APIs) is in no
  row, and refused.

The product comes from the site (`policy.layouts`): a path is placed in canonical form, Cloud's,
before it is judged, and lookups go back to the site's own layout. Paths are judged in canonical
form only (no dot segments, empty segments, `;` parameters, backslashes or encoded separators);
anything else is refused rather than normalized, because the site might normalize it
differently. `judge()` is pure: lookups and the body are asked for (`NeedsLookup`, `NeedsBody`)
and the caller calls again with them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from proxy_addon.policy.clients import Client
from proxy_addon.policy.layouts import CLOUD, Layout, Product
from proxy_addon.policy.query_language import BadQuery, confine
from proxy_addon.policy.record import Decision

MAX_BODY = 1 << 20
"""Bodies judged by a boundary are buffered up to this size; larger ones get 413."""


class RefKind(StrEnum):
    """What a key names; with an id, what is looked up."""

    ISSUE = "issue"
    PROJECT = "project"
    CONTENT = "content"
    SPACE = "space"


class Action(StrEnum):
    """What a route needs; the value is the README's description of it."""

    NEUTRAL = "passes: reads nothing of any project or space"
    ISSUE = "judged by the issue: a key by its project prefix, an id by a lookup of its project"
    EDIT_ISSUE = "judged by the issue, and by `fields.project`/`fields.parent` if the body names them"
    PROJECT = "judged by the project: its key, or an id looked up"
    CREATE_ISSUES = "judged by `fields.project` (key or id) of every issue in the body"
    JQL = "JQL confined: the `jql` parameter (GET) or body field (POST) is wrapped"
    CONTENT = "judged by the space of the page, blog post, comment or attachment (id looked up)"
    EDIT_CONTENT = "judged by the content's space, and by the `space`/`ancestors` the body names"
    CREATE_CONTENT = "judged by the body's `space.key`, and the space of its `ancestors` and `container`"
    SPACE_PARAM = "judged by the `spaceKey` parameter, which must be given"
    SPACE = "judged by the space key in the path"
    SPACE_ID = "judged by the space, its id looked up"
    CREATE_PAGE = "judged by the body's `spaceId` and `parentId` (looked up)"
    EDIT_PAGE = "judged by the page's space, and by the `spaceId`/`parentId` the body names"
    CQL = "CQL confined: the `cql` parameter is wrapped"
    REFUSE = "judges nothing: it reaches across projects or spaces"
    UNJUDGED = "judges nothing: the rest of this API"

    @property
    def judges(self) -> Product | None:
        """The product whose bound this action judges; None: it judges no bound."""
        return JUDGES.get(self)


JUDGES = {
    **dict.fromkeys((Action.ISSUE, Action.EDIT_ISSUE, Action.PROJECT, Action.CREATE_ISSUES, Action.JQL), Product.JIRA),
    **dict.fromkeys(
        (
            Action.CONTENT,
            Action.EDIT_CONTENT,
            Action.CREATE_CONTENT,
            Action.SPACE_PARAM,
            Action.SPACE,
            Action.SPACE_ID,
            Action.CREATE_PAGE,
            Action.EDIT_PAGE,
            Action.CQL,
        ),
        Product.CONFLUENCE,
    ),
}
ALL = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
READ = frozenset({"GET", "HEAD"})
BODY_ACTIONS = frozenset(
    {
        Action.EDIT_ISSUE,
        Action.CREATE_ISSUES,
        Action.EDIT_CONTENT,
        Action.CREATE_CONTENT,
        Action.CREATE_PAGE,
        Action.EDIT_PAGE,
    }
)
PARAMETERS = {
    "{v}": r"[23]",
    "{issue}": r"(?P<issue>[^/]+)",
    "{project}": r"(?P<project>[^/]+)",
    "{content}": r"(?P<content>[^/]+)",
    "{space}": r"(?P<space>[^/]+)",
    "{spaceid}": r"(?P<spaceid>[^/]+)",
    "{*}": r"[^/]*",
    "/**": r"(?:/.*)?",
}
TEMPLATE_PART = re.compile("|".join(re.escape(p) for p in PARAMETERS))


@dataclass(frozen=True)
class Route:
    product: Product
    """Whose paths these are: the canonical form's `/rest/...` (Jira) or `/wiki/...` (Confluence)."""
    methods: frozenset[str]
    template: str
    """`{v}` is 2 or 3, `{issue}` etc. one path segment, `{*}` any text within one segment, `/**` anything below."""
    reaches: frozenset[Product]
    """Whose data the route can read or change (empty: nobody's project or space)."""
    action: Action
    pattern: re.Pattern[str]

    @classmethod
    def of(
        cls, product: Product, methods: frozenset[str], template: str, reaches: frozenset[Product], action: Action
    ) -> Route:
        parts, last = [], 0
        for match in TEMPLATE_PART.finditer(template):
            parts += [re.escape(template[last : match.start()]), PARAMETERS[match[0]]]
            last = match.end()
        parts.append(re.escape(template[last:]))
        pattern = re.compile("".join(parts), re.IGNORECASE | re.ASCII)
        return cls(product, methods, template, reaches, action, pattern)

    def allows(self, method: str, route: str) -> bool:
        return method in self.methods and self.pattern.fullmatch(route) is not None


J, C = Product.JIRA, Product.CONFLUENCE
NOTHING, JIRA, WIKI, BOTH = frozenset(), frozenset({J}), frozenset({C}), frozenset({J, C})
GET_POST, POST, PUT = frozenset({"GET", "POST"}), frozenset({"POST"}), frozenset({"PUT"})
A = Action
ROUTES: tuple[Route, ...] = tuple(
    Route.of(*row)
    for row in (
        # Jira: project-neutral reads.
        (J, READ, "/rest/api/{v}/myself", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/serverInfo", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/field", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/issuetype", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/priority", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/status", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/statuscategory", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/resolution", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/issueLinkType", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/configuration", NOTHING, A.NEUTRAL),
        (J, READ, "/rest/api/{v}/jql/autocompletedata", NOTHING, A.NEUTRAL),
        # Jira: searches.
        (J, GET_POST, "/rest/api/{v}/search", JIRA, A.JQL),
        (J, GET_POST, "/rest/api/{v}/search/jql", JIRA, A.JQL),
        (J, POST, "/rest/api/{v}/search/approximate-count", JIRA, A.JQL),
        # Jira: issues.
        (J, POST, "/rest/api/{v}/issue", JIRA, A.CREATE_ISSUES),
        (J, POST, "/rest/api/{v}/issue/bulk", JIRA, A.CREATE_ISSUES),
        (J, ALL, "/rest/api/{v}/issue/picker", JIRA, A.REFUSE),
        (J, ALL, "/rest/api/{v}/issue/createmeta", JIRA, A.REFUSE),
        (J, READ, "/rest/api/{v}/issue/createmeta/{project}/issuetypes/**", JIRA, A.PROJECT),
        (J, PUT, "/rest/api/{v}/issue/{issue}", JIRA, A.EDIT_ISSUE),
        (J, POST, "/rest/api/{v}/issue/{issue}/transitions", JIRA, A.EDIT_ISSUE),
        (J, ALL, "/rest/api/{v}/issue/{issue}/**", JIRA, A.ISSUE),
        (J, ALL, "/rest/agile/1.0/issue/{issue}/**", JIRA, A.ISSUE),
        # Jira: projects.
        (J, ALL, "/rest/api/{v}/project/search", JIRA, A.REFUSE),
        (J, ALL, "/rest/api/{v}/project/recent", JIRA, A.REFUSE),
        (J, ALL, "/rest/api/{v}/project/type/**", JIRA, A.REFUSE),
        (J, ALL, "/rest/api/{v}/project/{project}/**", JIRA, A.PROJECT),
        # Service Management's knowledge base searches Confluence, in every form and at any depth.
        (J, ALL, "/rest/servicedeskapi/**/{*}knowledge{*}/**", BOTH, A.REFUSE),
        (J, ALL, "/rest/servicedeskapi/**/{*}article{*}/**", BOTH, A.REFUSE),
        # Jira: the rest of its REST APIs, which reach only Jira.
        (J, ALL, "/rest/api/{v}/**", JIRA, A.UNJUDGED),
        (J, ALL, "/rest/agile/1.0/**", JIRA, A.UNJUDGED),
        (J, ALL, "/rest/servicedeskapi/**", JIRA, A.UNJUDGED),
        # Confluence: space-neutral reads.
        (C, READ, "/wiki/rest/api/user/current", NOTHING, A.NEUTRAL),
        (C, READ, "/wiki/rest/api/settings/systemInfo", NOTHING, A.NEUTRAL),
        # Confluence: searches.
        (C, READ, "/wiki/rest/api/search", WIKI, A.CQL),
        (C, READ, "/wiki/rest/api/content/search", WIKI, A.CQL),
        # Confluence v1: content.
        (C, READ, "/wiki/rest/api/content", WIKI, A.SPACE_PARAM),
        (C, POST, "/wiki/rest/api/content", WIKI, A.CREATE_CONTENT),
        (C, ALL, "/wiki/rest/api/content/{content}/move/**", WIKI, A.REFUSE),
        (C, ALL, "/wiki/rest/api/content/{content}/copy", WIKI, A.REFUSE),
        (C, ALL, "/wiki/rest/api/content/{content}/pagehierarchy/**", WIKI, A.REFUSE),
        (C, PUT, "/wiki/rest/api/content/{content}/child/attachment/**", WIKI, A.REFUSE),
        (C, PUT, "/wiki/rest/api/content/{content}", WIKI, A.EDIT_CONTENT),
        (C, ALL, "/wiki/rest/api/content/{content}/**", WIKI, A.CONTENT),
        (C, ALL, "/wiki/rest/api/space/{space}/**", WIKI, A.SPACE),
        (C, READ, "/wiki/download/attachments/{content}/**", WIKI, A.CONTENT),
        # Confluence v2.
        (C, POST, "/wiki/api/v2/pages", WIKI, A.CREATE_PAGE),
        (C, POST, "/wiki/api/v2/blogposts", WIKI, A.CREATE_PAGE),
        (C, PUT, "/wiki/api/v2/pages/{content}", WIKI, A.EDIT_PAGE),
        (C, PUT, "/wiki/api/v2/blogposts/{content}", WIKI, A.EDIT_PAGE),
        (C, ALL, "/wiki/api/v2/pages/{content}/**", WIKI, A.CONTENT),
        (C, ALL, "/wiki/api/v2/blogposts/{content}/**", WIKI, A.CONTENT),
        (C, ALL, "/wiki/api/v2/footer-comments/{content}/**", WIKI, A.CONTENT),
        (C, ALL, "/wiki/api/v2/inline-comments/{content}/**", WIKI, A.CONTENT),
        (C, ALL, "/wiki/api/v2/spaces/{spaceid}/**", WIKI, A.SPACE_ID),
        # Converting a body renders its macros: `jira` shows issues, `include` pages of any space.
        (C, ALL, "/wiki/rest/api/contentbody/**", BOTH, A.REFUSE),
        # Confluence: the rest of its REST APIs, which reach only Confluence (a rendered body aside).
        (C, ALL, "/wiki/rest/api/**", WIKI, A.UNJUDGED),
        (C, ALL, "/wiki/api/v2/**", WIKI, A.UNJUDGED),
    )
)
"""First match wins; a path that matches no row is refused for any bounded client."""
IDENTITY = Route.of(J, READ, "/rest/api/{v}/myself", NOTHING, A.NEUTRAL)
"""The one route a bounded client may use on a site whose layout is not known: who am I."""
RENDERING_PARAMETERS = frozenset({"expand", "bodyformat"})
"""Confluence's parameters that choose a representation (`expand=body.view`, v2 `body-format=view`), spelt
without `-` or `_` and in lower case."""
RENDERED = (
    "asks for a rendered body (an `expand` or `body-format` naming a view), whose macros show issues and pages "
    "of any project or space; ask for `storage` or `atlas_doc_format` instead"
)
BOUND_NAMES = {Product.JIRA: "jira_projects", Product.CONFLUENCE: "confluence_spaces"}
REFERENCES = frozenset({"project", "parent", "issuelinks", "space", "spaceid", "parentid", "ancestors", "container"})
"""Body keys, in lower case, that name a project, an issue, a space or a page."""
_ISSUE_FIELDS = frozenset({("fields", "project"), ("fields", "parent")})
_CONTENT_FIELDS = frozenset({("space",), ("ancestors",), ("container",)})
_PAGE_FIELDS = frozenset({("spaceId",), ("parentId",)})
READ_WHERE: dict[Action, frozenset[tuple[str, ...]]] = {
    Action.CREATE_ISSUES: _ISSUE_FIELDS | {("issueUpdates", "*", *where) for where in _ISSUE_FIELDS},
    Action.EDIT_ISSUE: _ISSUE_FIELDS,
    Action.CREATE_CONTENT: _CONTENT_FIELDS,
    Action.EDIT_CONTENT: _CONTENT_FIELDS,
    Action.CREATE_PAGE: _PAGE_FIELDS,
    Action.EDIT_PAGE: _PAGE_FIELDS,
}
"""Where a judged body may name one (`*`: any list item), spelt exactly so: the fields the route reads and the
proxy judges. Anywhere else, or in another case, the site might read it too, so it is refused."""

ISSUE_KEY = re.compile(r"(?P<project>[A-Z][A-Z0-9_]*)-[0-9]+", re.IGNORECASE | re.ASCII)
PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]*", re.IGNORECASE | re.ASCII)
SPACE_KEY = re.compile(r"[A-Z0-9]+|~[A-Z0-9:_-]+", re.IGNORECASE | re.ASCII)
NUMBER = re.compile(r"[0-9]{1,18}", re.ASCII)
ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
UNSAFE_DECODED = frozenset("/\\;%?#")


@dataclass(frozen=True, slots=True)
class Ref:
    """Something an id names, to be looked up: the kind, the id, and where the site's API is."""

    kind: RefKind
    id: str
    prefix: str = ""
    """Where the id's product lives on the site, in the site's own layout (`Placed.base`): `/wiki` for
    Cloud's Confluence, `/ex/jira/{cloudId}` on the gateway, a Data Center context path."""
    version: str = "3"
    """The Jira REST version of the request (lookups use the same)."""


type Known = Mapping[Ref, str | None]
"""Looked-up keys: the key an id belongs to, None when the site does not know the id."""


@dataclass(frozen=True, slots=True)
class Allowed:
    pass


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    decision: Decision
    reason: str


@dataclass(frozen=True, slots=True)
class NeedsLookup:
    refs: frozenset[Ref]


@dataclass(frozen=True, slots=True)
class NeedsBody:
    pass


@dataclass(frozen=True, slots=True)
class Rewritten:
    """Send the request with this path (a confined query) or this body instead."""

    path: str | None = None
    body: bytes | None = None


type Judgement = Allowed | Refused | NeedsLookup | NeedsBody | Rewritten
ALLOWED = Allowed()
NEEDS_BODY = NeedsBody()


@dataclass(frozen=True, slots=True)
class CanonicalPath:
    """A request path in canonical form, split for judging."""

    product: Product
    route: str
    """Decoded and placed in canonical form (`/rest/...`, `/wiki/...`) by the site's layout."""
    base: str
    """Where the product lives on the site (`Placed.base`): lookups go there."""
    raw: str
    """The path as sent, without its query: a confined query is appended to it."""
    query: str


class Unjudgeable(ValueError):
    """The path is not in canonical form; the message says what is wrong with it."""


def split_path(path: str) -> tuple[str, str, str]:
    """`(route, raw, query)` of a request path: the route decoded and checked; raises `Unjudgeable`."""
    raw, _, query = path.partition("?")
    if not raw.startswith("/") or not raw.isascii() or "\\" in raw or ";" in raw or ESCAPE.search(raw):
        raise Unjudgeable("the path is not a plain ASCII path without `;` or `\\`")
    segments = raw.split("/")[1:]
    if segments and segments[-1] == "" and len(segments) > 1:
        segments.pop()
    decoded = []
    for segment in segments:
        text = unquote(segment, errors="strict")
        if text in ("", ".", "..") or any(c in UNSAFE_DECODED or not c.isprintable() for c in text):
            raise Unjudgeable("the path has an empty, dot or encoded-separator segment")
        decoded.append(text)
    return "/" + "/".join(decoded), raw, query


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
    try:
        route, raw, query = split_path(path)
    except (Unjudgeable, UnicodeDecodeError) as e:
        return Refused(400, Decision.BAD_QUERY, f"client {client.name}: {e}; it cannot be judged against its bounds")
    placed = layout.place(route)
    if placed is None:
        if not layout.known and IDENTITY.allows(method, route):
            return ALLOWED
        return _refused(client, method, raw, _unplaced(layout), _bounds(client))
    target = CanonicalPath(placed.product, placed.route, placed.base, raw, query)
    row = next((r for r in ROUTES if r.product is target.product and r.allows(method, target.route)), None)
    if row is None:
        return _refused(client, method, raw, f"is in no {target.product} route family of the table", _bounds(client))
    try:
        if target.product is Product.CONFLUENCE and renders(query):
            return _refused(client, method, raw, RENDERED, _bounds(client))
    except _Bad as bad:
        return Refused(400, Decision.BAD_QUERY, f"client {client.name}: {bad}")
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


def renders(query: str) -> bool:
    """Does a Confluence request ask for a body the site renders (`body.view`, `export_view`, v2 `body-format=view`)?

    Rendering runs the page's macros on the site: `jira` shows issues of any project, `include`,
    `excerpt-include` and their kin pages of any space. No bound can judge what they pull in, so
    every value of a representation parameter that mentions `view`, in any case, counts.
    """
    return any(
        name.lower().replace("-", "").replace("_", "") in RENDERING_PARAMETERS and "view" in value.lower()
        for name, value in _parameters(query)
    )


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
        f"client {client.name} has {_names(bounds)}: {method} {raw} {why} (see README, Agents and boundaries)",
    )


def _unplaced(layout: Layout) -> str:
    if not layout.known:
        return (
            "goes to a site whose product is not known (not Atlassian Cloud, and its [[sites]] table sets no "
            "`product`), where only GET /rest/api/{2,3}/myself passes"
        )
    return f"is on no product this site serves ({layout})"


class _Judge:
    """One request's judgement: the references it makes, each checked against the client's bound."""

    def __init__(
        self, client: Client, target: CanonicalPath, method: str, route: Route, body: bytes | None, known: Known
    ) -> None:
        self.client, self.target, self.method, self.route = client, target, method, route
        self.body, self.known = body, known
        self.match = route.pattern.fullmatch(target.route)
        version = re.match(r"/rest/api/([23])/", target.route)
        self.version = version[1] if version else "3"
        self.missing: set[Ref] = set()

    def run(self) -> Judgement:
        try:
            return self._run()
        except _Out as out:
            return Refused(403, Decision.OUT_OF_BOUNDS, f"client {self.client.name}: {out}")
        except _Bad as bad:
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
        if self.missing:
            return NeedsLookup(frozenset(self.missing))
        if action not in BODY_ACTIONS:
            return ALLOWED
        if self.body is None:
            return NEEDS_BODY
        document = _json_object(self.body)
        _only_where_read(document, READ_WHERE[action])
        self._body_references(action, document)
        return NeedsLookup(frozenset(self.missing)) if self.missing else ALLOWED

    # -- references -------------------------------------------------------------------------

    def _path_reference(self, kind: str, value: str) -> None:
        if kind == "issue":
            self._issue(value, "the path")
        elif kind == "project":
            self._project(value, "the path")
        elif kind == "content":
            self._content(value, "the path")
        elif kind == "space":
            self._space_key(value, "the path")
        else:
            self._space_id(value, "the path")

    def _issue(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if key := ISSUE_KEY.fullmatch(text):
            self._check(RefKind.PROJECT, key["project"], f"issue {text}")
        elif NUMBER.fullmatch(text):
            self._by_id(Ref(RefKind.ISSUE, text, self.target.base, self.version), f"issue {text}", RefKind.PROJECT)
        else:
            raise _Out(f"{where} names no issue key or id it can judge")

    def _project(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if NUMBER.fullmatch(text):
            self._by_id(Ref(RefKind.PROJECT, text, self.target.base, self.version), f"project {text}", RefKind.PROJECT)
        elif PROJECT_KEY.fullmatch(text):
            self._check(RefKind.PROJECT, text, f"project {text}")
        else:
            raise _Out(f"{where} names no project key or id it can judge")

    def _content(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not NUMBER.fullmatch(text):
            raise _Out(f"{where} names no content id it can judge")
        self._by_id(Ref(RefKind.CONTENT, text, self.target.base), f"content {text}", RefKind.SPACE)

    def _space_key(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or not SPACE_KEY.fullmatch(value):
            raise _Out(f"{where} names no space key it can judge")
        self._check(RefKind.SPACE, value, f"space {value}")

    def _space_id(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not NUMBER.fullmatch(text):
            raise _Out(f"{where} names no space id it can judge")
        self._by_id(Ref(RefKind.SPACE, text, self.target.base), f"space {text}", RefKind.SPACE)

    def _by_id(self, ref: Ref, what: str, kind: RefKind) -> None:
        if not self._bound(kind):  # nothing is inside an empty bound: no lookup spends the token on it
            raise _Out(f"{what} is not in {self._bound_text(kind)}, or does not exist")
        if ref not in self.known:
            self.missing.add(ref)
            return
        key = self.known[ref]
        if key is None:
            raise _Out(f"{what} is not in {self._bound_text(kind)}, or does not exist")
        self._check(kind, key, what)

    def _check(self, kind: RefKind, key: str, what: str) -> None:
        if key.upper() not in self._bound(kind):
            # The same words for "elsewhere" and "nowhere", and no key learned from a lookup.
            raise _Out(f"{what} is not in {self._bound_text(kind)}, or does not exist")

    def _bound(self, kind: RefKind) -> frozenset[str]:
        bound = self.client.jira_projects if kind is RefKind.PROJECT else self.client.confluence_spaces
        return bound or frozenset()

    def _bound_text(self, kind: RefKind) -> str:
        name = "Jira projects" if kind is RefKind.PROJECT else "Confluence spaces"
        return f"its {name} ({', '.join(sorted(self._bound(kind))) or 'none'})"

    # -- query and body -----------------------------------------------------------------------

    def _space_param(self) -> None:
        parameters = _parameters(self.target.query)
        if any(name.lower() == "spacekey" and name != "spaceKey" for name, _ in parameters):
            raise _Bad("spaceKey is spelt `spaceKey` (Confluence reads no other spelling)")
        values = [value for name, value in parameters if name == "spaceKey"]
        if len(values) != 1:
            raise _Out("GET /wiki/rest/api/content needs exactly one spaceKey parameter")
        self._space_key(values[0], "the spaceKey parameter")

    def _search(self, action: Action) -> Judgement:
        jql = action is Action.JQL
        name, field, kind = ("jql", "project", RefKind.PROJECT) if jql else ("cql", "space", RefKind.SPACE)
        keys = self._bound(kind)
        if not keys:
            raise _Out(f"a search cannot be confined to {self._bound_text(kind)}")
        parameters = _parameters(self.target.query)
        named = [i for i, (key, _) in enumerate(parameters) if key.lower() == name]
        if self.method != "POST":
            if len(named) > 1 or any(parameters[i][0] != name for i in named):
                raise _Bad(f"a search needs at most one `{name}` parameter, in lower case")
            query = parameters[named[0]][1] if named else ""
            confined = self._confine(query, field, keys, name)
            rest = [part for i, part in enumerate(_raw_parameters(self.target.query)) if i not in named]
            parts = [*rest, f"{name}={quote(confined, safe='')}"]
            return Rewritten(path=f"{self.target.raw}?{'&'.join(parts)}")
        if named:
            raise _Bad(f"a POST search takes its `{name}` in the body, not in the URL")
        if self.body is None:
            return NEEDS_BODY
        document = _json_object(self.body)
        if any(key.lower() == name and key != name for key in document):
            raise _Bad(f"the body spells `{name}` another way too; a search takes exactly one `{name}`, in lower case")
        query = document.get(name, "")
        if query is None:
            query = ""
        if not isinstance(query, str):
            raise _Bad(f"the body's `{name}` is not a string")
        document[name] = self._confine(query, field, keys, name)
        return Rewritten(body=json.dumps(document).encode())

    def _confine(self, query: str, field: str, keys: frozenset[str], name: str) -> str:
        try:
            return confine(query, field, keys)
        except BadQuery as e:
            raise _Bad(f"the {name.upper()} cannot be confined to its bounds: {e}") from None

    def _body_references(self, action: Action, document: dict[str, Any]) -> None:
        if action is Action.CREATE_ISSUES:
            if self.target.route.lower().endswith("/bulk"):
                updates = document.get("issueUpdates")
                if not isinstance(updates, list) or not updates:
                    raise _Out("a bulk create needs a non-empty `issueUpdates` list")
            else:
                updates = [document]
            for update in updates:
                self._issue_fields(update, create=True)
        elif action is Action.EDIT_ISSUE:
            self._issue_fields(document, create=False)
        elif action in (Action.CREATE_CONTENT, Action.EDIT_CONTENT):
            self._content_fields(document, create=action is Action.CREATE_CONTENT)
        else:
            self._page_fields(document, create=action is Action.CREATE_PAGE)

    def _issue_fields(self, update: Any, create: bool) -> None:
        fields = update.get("fields") if isinstance(update, dict) else None
        if not isinstance(fields, dict) and (create or (isinstance(update, dict) and "fields" in update)):
            raise _Out("an issue in the body has no `fields` object")
        fields = fields or {}
        changes = update.get("update") or {}
        if not isinstance(changes, dict) or any(k in changes for k in ("project", "parent", "issuelinks")):
            raise _Out("`update` may not set the project, the parent or issue links (they cross projects)")
        if "issuelinks" in fields:
            raise _Out("`fields.issuelinks` is not judged (links cross projects)")
        if "project" in fields or create:
            self._reference(fields.get("project"), self._project, "`fields.project`")
        if "parent" in fields:
            self._reference(fields.get("parent"), self._issue, "`fields.parent`")

    def _reference(self, value: Any, check: Any, where: str) -> None:
        """A `{"key": ...}` or `{"id": ...}` object, judged by its key or looked-up id."""
        if not isinstance(value, dict) or len(value) != 1 or not value.keys() <= {"key", "id"}:
            raise _Out(f"{where} must be an object with exactly one key or id, and nothing else that could name one")
        check(value.get("key", value.get("id")), where)

    def _content_fields(self, document: dict[str, Any], create: bool) -> None:
        space = document.get("space")
        if space is not None or create:
            if not isinstance(space, dict) or space.keys() != {"key"}:
                raise _Out("the body's `space` must name a key, and nothing else that could name a space")
            self._space_key(space["key"], "`space.key`")
        ancestors = document.get("ancestors", [])
        if not isinstance(ancestors, list):
            raise _Out("the body's `ancestors` must be a list")
        for ancestor in ancestors:
            self._content(ancestor.get("id") if isinstance(ancestor, dict) else None, "`ancestors`")
        if "container" in document:
            container = document["container"]
            self._content(container.get("id") if isinstance(container, dict) else None, "`container`")

    def _page_fields(self, document: dict[str, Any], create: bool) -> None:
        if "spaceId" in document or create:
            self._space_id(document.get("spaceId"), "`spaceId`")
        if document.get("parentId") is not None:
            self._content(document["parentId"], "`parentId`")


class _Out(Exception):
    """Outside the bounds, or not judged: 403 with this reason."""


class _Bad(Exception):
    """Malformed: 400 with this reason."""


def _only_where_read(document: Any, where: frozenset[tuple[str, ...]]) -> None:
    """Refuse a body naming a project, issue, space or page anywhere but `where` (see `READ_WHERE`)."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, list):
            stack += [((*path, "*"), item) for item in value]
        elif isinstance(value, dict):
            for key, item in value.items():
                if key.lower() in REFERENCES and (*path, key) not in where:
                    raise _Out(f"the body names `{'.'.join((*path, key))}`, which this route is not judged by")
                stack.append(((*path, key), item))


def _json_object(body: bytes) -> dict[str, Any]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise _Bad("the JSON body repeats a key")
        return dict(pairs)

    try:
        document = json.loads(body.decode("utf-8"), object_pairs_hook=unique)
    except (UnicodeDecodeError, ValueError):
        raise _Bad("the body is not JSON") from None
    except RecursionError:
        raise _Bad("the JSON body is nested too deeply to judge") from None
    if not isinstance(document, dict):
        raise _Bad("the body is not a JSON object")
    return document


def _raw_parameters(query: str) -> list[str]:
    return [part for part in query.split("&") if part]


def _parameters(query: str) -> list[tuple[str, str]]:
    """`(name, value)` pairs, decoded the way a servlet does (`+` is a space); raises on bad UTF-8."""
    pairs = []
    for part in _raw_parameters(query):
        name, _, value = part.partition("=")
        try:
            pairs.append((unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict")))
        except UnicodeDecodeError:
            raise _Bad("the query string is not UTF-8") from None
    return pairs


class LookupFailed(Exception):
    """The site did not say which project or space an id belongs to; the message says how it failed."""


def lookup_path(ref: Ref) -> str:
    """Where the site tells the project or space of an id, in the site's own layout (`Ref.prefix`)."""
    if ref.kind is RefKind.ISSUE:
        return f"{ref.prefix}/rest/api/{ref.version}/issue/{ref.id}?fields=project"
    if ref.kind is RefKind.PROJECT:
        return f"{ref.prefix}/rest/api/{ref.version}/project/{ref.id}"
    if ref.kind is RefKind.CONTENT:
        return f"{ref.prefix}/rest/api/content/{ref.id}?expand=space"
    return f"{ref.prefix}/api/v2/spaces/{ref.id}"


def key_of(ref: Ref, status: int, document: Mapping[str, Any]) -> str | None:
    """The key a lookup answered, None for an id the site does not know (404); raises `LookupFailed`."""
    if status == 404:
        return None
    if status != 200:
        raise LookupFailed(f"HTTP {status}")
    if ref.kind is RefKind.ISSUE:
        key = _dig(document, "fields", "project", "key")
    elif ref.kind is RefKind.CONTENT:
        key = _dig(document, "space", "key")
    else:
        key = document.get("key")
    pattern = PROJECT_KEY if ref.kind in (RefKind.ISSUE, RefKind.PROJECT) else SPACE_KEY
    if not isinstance(key, str) or not pattern.fullmatch(key):
        raise LookupFailed("the answer names no key")
    return key.upper()


def _dig(document: Mapping[str, Any], *names: str) -> Any:
    value: Any = document
    for name in names:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value

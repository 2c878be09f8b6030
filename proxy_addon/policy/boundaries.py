"""Jira-project and Confluence-space boundaries: which routes a bounded client may use, and how each is judged.

A client with `jira_projects` reaches only those projects, one with `confluence_spaces` only
those spaces; an API token cannot be narrowed like that, so the proxy judges every request of
such a client against `ROUTES`, the one table (README, "Agents and boundaries", lists it):

- a project-neutral read passes;
- a route naming an issue, project, page or space in its path is judged by that key; a numeric
  id is looked up once (with the site's credentials) and judged by the key it belongs to;
- a search has its JQL/CQL confined: `project in ("OPS") AND (<the client's query>)`;
- a create (or edit) is judged by the project or space its body names;
- every other route of a bounded product is refused: it could reach across the boundary.

Paths are judged in canonical form only (no dot segments, empty segments, `;` parameters,
backslashes or encoded separators); anything else is refused rather than normalized, because
the site might normalize it differently. `judge()` is pure: lookups and the body are asked for
(`NeedsLookup`, `NeedsBody`) and the caller calls again with them.
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
from proxy_addon.policy.query_language import BadQuery, confine
from proxy_addon.policy.record import Decision

MAX_BODY = 1 << 20
"""Bodies judged by a boundary are buffered up to this size; larger ones get 413."""


class Product(StrEnum):
    JIRA = "Jira"
    CONFLUENCE = "Confluence"
    ANY = "any"
    """Routes that reach both products (GraphQL, the gateway's other APIs): refused for any boundary."""


class Kind(StrEnum):
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
    REFUSE = "refused: it can reach across projects or spaces"


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
    "/**": r"(?:/.*)?",
}
TEMPLATE_PART = re.compile("|".join(re.escape(p) for p in PARAMETERS))


@dataclass(frozen=True)
class Route:
    product: Product
    methods: frozenset[str]
    template: str
    """`{v}` is 2 or 3, `{issue}` etc. one path segment, `/**` anything below."""
    action: Action
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, product: Product, methods: frozenset[str], template: str, action: Action) -> Route:
        parts, last = [], 0
        for match in TEMPLATE_PART.finditer(template):
            parts += [re.escape(template[last : match.start()]), PARAMETERS[match[0]]]
            last = match.end()
        parts.append(re.escape(template[last:]))
        return cls(product, methods, template, action, re.compile("".join(parts), re.IGNORECASE | re.ASCII))

    def allows(self, method: str, route: str) -> bool:
        return method in self.methods and self.pattern.fullmatch(route) is not None


J, C, X = Product.JIRA, Product.CONFLUENCE, Product.ANY
A = Action
ROUTES: tuple[Route, ...] = tuple(
    Route.of(*row)
    for row in (
        # Jira: project-neutral reads.
        (J, READ, "/rest/api/{v}/myself", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/serverInfo", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/field", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/issuetype", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/priority", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/status", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/statuscategory", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/resolution", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/issueLinkType", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/configuration", A.NEUTRAL),
        (J, READ, "/rest/api/{v}/jql/autocompletedata", A.NEUTRAL),
        # Jira: searches.
        (J, frozenset({"GET", "POST"}), "/rest/api/{v}/search", A.JQL),
        (J, frozenset({"GET", "POST"}), "/rest/api/{v}/search/jql", A.JQL),
        (J, frozenset({"POST"}), "/rest/api/{v}/search/approximate-count", A.JQL),
        # Jira: issues.
        (J, frozenset({"POST"}), "/rest/api/{v}/issue", A.CREATE_ISSUES),
        (J, frozenset({"POST"}), "/rest/api/{v}/issue/bulk", A.CREATE_ISSUES),
        (J, ALL, "/rest/api/{v}/issue/picker", A.REFUSE),
        (J, ALL, "/rest/api/{v}/issue/createmeta", A.REFUSE),
        (J, READ, "/rest/api/{v}/issue/createmeta/{project}/issuetypes/**", A.PROJECT),
        (J, frozenset({"PUT"}), "/rest/api/{v}/issue/{issue}", A.EDIT_ISSUE),
        (J, frozenset({"POST"}), "/rest/api/{v}/issue/{issue}/transitions", A.EDIT_ISSUE),
        (J, ALL, "/rest/api/{v}/issue/{issue}/**", A.ISSUE),
        (J, ALL, "/rest/agile/1.0/issue/{issue}/**", A.ISSUE),
        # Jira: projects.
        (J, ALL, "/rest/api/{v}/project/search", A.REFUSE),
        (J, ALL, "/rest/api/{v}/project/recent", A.REFUSE),
        (J, ALL, "/rest/api/{v}/project/type/**", A.REFUSE),
        (J, ALL, "/rest/api/{v}/project/{project}/**", A.PROJECT),
        # Confluence: space-neutral reads.
        (C, READ, "/wiki/rest/api/user/current", A.NEUTRAL),
        (C, READ, "/wiki/rest/api/settings/systemInfo", A.NEUTRAL),
        # Confluence: searches.
        (C, READ, "/wiki/rest/api/search", A.CQL),
        (C, READ, "/wiki/rest/api/content/search", A.CQL),
        # Confluence v1: content.
        (C, READ, "/wiki/rest/api/content", A.SPACE_PARAM),
        (C, frozenset({"POST"}), "/wiki/rest/api/content", A.CREATE_CONTENT),
        (C, ALL, "/wiki/rest/api/content/{content}/move/**", A.REFUSE),
        (C, ALL, "/wiki/rest/api/content/{content}/copy", A.REFUSE),
        (C, ALL, "/wiki/rest/api/content/{content}/pagehierarchy/**", A.REFUSE),
        (C, frozenset({"PUT"}), "/wiki/rest/api/content/{content}/child/attachment/**", A.REFUSE),
        (C, frozenset({"PUT"}), "/wiki/rest/api/content/{content}", A.EDIT_CONTENT),
        (C, ALL, "/wiki/rest/api/content/{content}/**", A.CONTENT),
        (C, ALL, "/wiki/rest/api/space/{space}/**", A.SPACE),
        (C, READ, "/wiki/download/attachments/{content}/**", A.CONTENT),
        # Confluence v2.
        (C, frozenset({"POST"}), "/wiki/api/v2/pages", A.CREATE_PAGE),
        (C, frozenset({"POST"}), "/wiki/api/v2/blogposts", A.CREATE_PAGE),
        (C, frozenset({"PUT"}), "/wiki/api/v2/pages/{content}", A.EDIT_PAGE),
        (C, frozenset({"PUT"}), "/wiki/api/v2/blogposts/{content}", A.EDIT_PAGE),
        (C, ALL, "/wiki/api/v2/pages/{content}/**", A.CONTENT),
        (C, ALL, "/wiki/api/v2/blogposts/{content}/**", A.CONTENT),
        (C, ALL, "/wiki/api/v2/footer-comments/{content}/**", A.CONTENT),
        (C, ALL, "/wiki/api/v2/inline-comments/{content}/**", A.CONTENT),
        (C, ALL, "/wiki/api/v2/spaces/{spaceid}/**", A.SPACE_ID),
        # Both products.
        (X, ALL, "/gateway/**", A.REFUSE),
        (X, ALL, "/graphql/**", A.REFUSE),
        (X, ALL, "/ex/**", A.REFUSE),
    )
)
"""First match wins; a bounded product's route that matches none is refused."""

ISSUE_KEY = re.compile(r"(?P<project>[A-Z][A-Z0-9_]*)-[0-9]+", re.IGNORECASE | re.ASCII)
PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]*", re.IGNORECASE | re.ASCII)
SPACE_KEY = re.compile(r"[A-Z0-9]+|~[A-Z0-9:_-]+", re.IGNORECASE | re.ASCII)
NUMBER = re.compile(r"[0-9]{1,18}", re.ASCII)
ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
GATEWAY_PREFIX = re.compile(r"/ex/(jira|confluence)/[0-9a-f-]+(?=/|$)", re.IGNORECASE | re.ASCII)
UNSAFE_DECODED = frozenset("/\\;%?#")
JIRA_ROOTS = ("/rest/", "/secure/", "/browse/")
"""Where Jira's own APIs and pages live. Any other root (`/cgraphql`, `/graphql`, `/gateway`, `/ex`,
what Atlassian adds later) may reach Confluence too, so it is refused for any bounded client."""
BOTH_PRODUCTS = ("/rest/servicedeskapi/knowledgebase/",)
"""Under Jira's roots, but searching Confluence: Service Management's knowledge base."""


@dataclass(frozen=True, slots=True)
class Ref:
    """Something an id names, to be looked up: the kind, the id, and where the site's API is."""

    kind: Kind
    id: str
    prefix: str = ""
    """The API gateway's `/ex/{product}/{cloudId}` when the request went through it."""
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
class Target:
    """A request path in canonical form, split for judging."""

    product: Product
    route: str
    """Decoded, with the gateway prefix replaced by the site's own form (`/rest/...`, `/wiki/...`)."""
    prefix: str
    raw: str
    """The path as sent, without its query: a confined query is appended to it."""
    query: str


class Unjudgeable(ValueError):
    """The path is not in canonical form; the message says what is wrong with it."""


def target_of(path: str) -> Target:
    """Split and check a request path (with its query); raises `Unjudgeable`."""
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
    route = "/" + "/".join(decoded)
    prefix = ""
    if gateway := GATEWAY_PREFIX.match(route):
        prefix, rest = gateway[0], route[gateway.end() :]
        if gateway[1].lower() == "confluence" and not rest.lower().startswith("/wiki/"):
            rest = "/wiki" + rest
        route = rest or "/"
    head = route.lower() + "/"
    if head.startswith("/wiki/"):
        product = Product.CONFLUENCE
    elif head.startswith(JIRA_ROOTS) and not head.startswith(BOTH_PRODUCTS):
        product = Product.JIRA
    else:
        product = Product.ANY
    return Target(product, route, prefix, raw, query)


def judge(method: str, path: str, client: Client, body: bytes | None = None, known: Known | None = None) -> Judgement:
    """The judgement of one credentialed request of `client`.

    Call with `body=None` first (at the request head); on `NeedsBody` again with the body, on
    `NeedsLookup` again with those refs in `known`.
    """
    try:
        target = target_of(path)
    except (Unjudgeable, UnicodeDecodeError) as e:
        if not client.bounded:
            return ALLOWED
        return Refused(400, Decision.BAD_QUERY, f"client {client.name}: {e}; it cannot be judged against its bounds")
    bound = _bound(client, target.product)
    if bound is None:
        return ALLOWED
    method = method.upper()
    route = next((r for r in ROUTES if r.product is target.product and r.allows(method, target.route)), None)
    if route is None or route.action is Action.REFUSE:
        return _crossing(client, target, method)
    return _Judge(client, target, method, route, body, known or {}).run()


def _bound(client: Client, product: Product) -> frozenset[str] | None:
    if product is Product.JIRA:
        return client.jira_projects
    if product is Product.CONFLUENCE:
        return client.confluence_spaces
    return frozenset() if client.bounded else None


def _crossing(client: Client, target: Target, method: str) -> Refused:
    what = "jira_projects" if target.product is Product.JIRA else "confluence_spaces"
    if target.product is Product.ANY:
        what = "a boundary"
    return Refused(
        403,
        Decision.OUT_OF_BOUNDS,
        f"client {client.name} has {what}: {method} {target.route} is not a route judged against it "
        "(see README, Agents and boundaries)",
    )


class _Judge:
    """One request's judgement: the references it makes, each checked against the client's bound."""

    def __init__(
        self, client: Client, target: Target, method: str, route: Route, body: bytes | None, known: Known
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
            self._check(Kind.PROJECT, key["project"], f"issue {text}")
        elif NUMBER.fullmatch(text):
            self._by_id(Ref(Kind.ISSUE, text, self.target.prefix, self.version), f"issue {text}", Kind.PROJECT)
        else:
            raise _Out(f"{where} names no issue key or id it can judge")

    def _project(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if NUMBER.fullmatch(text):
            self._by_id(Ref(Kind.PROJECT, text, self.target.prefix, self.version), f"project {text}", Kind.PROJECT)
        elif PROJECT_KEY.fullmatch(text):
            self._check(Kind.PROJECT, text, f"project {text}")
        else:
            raise _Out(f"{where} names no project key or id it can judge")

    def _content(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not NUMBER.fullmatch(text):
            raise _Out(f"{where} names no content id it can judge")
        self._by_id(Ref(Kind.CONTENT, text, self.target.prefix), f"content {text}", Kind.SPACE)

    def _space_key(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or not SPACE_KEY.fullmatch(value):
            raise _Out(f"{where} names no space key it can judge")
        self._check(Kind.SPACE, value, f"space {value}")

    def _space_id(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not NUMBER.fullmatch(text):
            raise _Out(f"{where} names no space id it can judge")
        self._by_id(Ref(Kind.SPACE, text, self.target.prefix), f"space {text}", Kind.SPACE)

    def _by_id(self, ref: Ref, what: str, kind: Kind) -> None:
        if not self._bound(kind):  # nothing is inside an empty bound: no lookup spends the token on it
            raise _Out(f"{what} is not in {self._bound_text(kind)}, or does not exist")
        if ref not in self.known:
            self.missing.add(ref)
            return
        key = self.known[ref]
        if key is None:
            raise _Out(f"{what} is not in {self._bound_text(kind)}, or does not exist")
        self._check(kind, key, what)

    def _check(self, kind: Kind, key: str, what: str) -> None:
        if key.upper() not in self._bound(kind):
            # The same words for "elsewhere" and "nowhere", and no key learned from a lookup.
            raise _Out(f"{what} is not in {self._bound_text(kind)}, or does not exist")

    def _bound(self, kind: Kind) -> frozenset[str]:
        bound = self.client.jira_projects if kind is Kind.PROJECT else self.client.confluence_spaces
        return bound or frozenset()

    def _bound_text(self, kind: Kind) -> str:
        name = "Jira projects" if kind is Kind.PROJECT else "Confluence spaces"
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
        name, field, kind = ("jql", "project", Kind.PROJECT) if action is Action.JQL else ("cql", "space", Kind.SPACE)
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
    """Where the site tells the project or space of an id, under the request's own gateway prefix."""
    if ref.kind is Kind.ISSUE:
        return f"{ref.prefix}/rest/api/{ref.version}/issue/{ref.id}?fields=project"
    if ref.kind is Kind.PROJECT:
        return f"{ref.prefix}/rest/api/{ref.version}/project/{ref.id}"
    if ref.kind is Kind.CONTENT:
        return f"{ref.prefix}/wiki/rest/api/content/{ref.id}?expand=space"
    return f"{ref.prefix}/wiki/api/v2/spaces/{ref.id}"


def key_of(ref: Ref, status: int, document: Mapping[str, Any]) -> str | None:
    """The key a lookup answered, None for an id the site does not know (404); raises `LookupFailed`."""
    if status == 404:
        return None
    if status != 200:
        raise LookupFailed(f"HTTP {status}")
    if ref.kind is Kind.ISSUE:
        key = _dig(document, "fields", "project", "key")
    elif ref.kind is Kind.CONTENT:
        key = _dig(document, "space", "key")
    else:
        key = document.get("key")
    pattern = PROJECT_KEY if ref.kind in (Kind.ISSUE, Kind.PROJECT) else SPACE_KEY
    if not isinstance(key, str) or not pattern.fullmatch(key):
        raise LookupFailed("the answer names no key")
    return key.upper()


def _dig(document: Mapping[str, Any], *names: str) -> Any:
    value: Any = document
    for name in names:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value

"""The route table: which routes a bounded client may use, what data each reaches, and what judges it.

Each row says which products' data its routes can reach (`reaches`), what its action judges, and
when its requests have the site render (`renders`), which no bound judges (see `rendering`).
A bounded client may use a row only if the action judges every bound the client has in what
the row reaches; a row reaching only products the client is not bounded in passes unjudged.
Every other route (unknown roots, plugin servlets, GraphQL, the gateway's other APIs) is in no
row, and refused. docs/reference/boundaries.md lists the table; a test keeps the two equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from proxy_addon.policy.layouts import Product


class Action(StrEnum):
    """What a route needs; the value is its description in the documented table."""

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


class Renders(StrEnum):
    """When a row's requests have the site render; rendering is refused for any bounded client either way."""

    ALWAYS = "always"
    """The route renders: a body or macro conversion, a render endpoint."""
    ASKED = "if asked"
    """When a request asks to (`rendering`): a rendered representation in `expand`/`body-format`, in a path
    segment, or in a judged body's `expand`."""


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
    renders: Renders
    pattern: re.Pattern[str]

    @classmethod
    def of(
        cls,
        product: Product,
        methods: frozenset[str],
        template: str,
        reaches: frozenset[Product],
        action: Action,
        renders: Renders,
    ) -> Route:
        parts, last = [], 0
        for match in TEMPLATE_PART.finditer(template):
            parts += [re.escape(template[last : match.start()]), PARAMETERS[match[0]]]
            last = match.end()
        parts.append(re.escape(template[last:]))
        pattern = re.compile("".join(parts), re.IGNORECASE | re.ASCII)
        return cls(product, methods, template, reaches, action, renders, pattern)

    def allows(self, method: str, route: str) -> bool:
        return method in self.methods and self.pattern.fullmatch(route) is not None


J, C = Product.JIRA, Product.CONFLUENCE
NOTHING, JIRA, WIKI, BOTH = frozenset[Product](), frozenset({J}), frozenset({C}), frozenset({J, C})
GET_POST, POST, PUT = frozenset({"GET", "POST"}), frozenset({"POST"}), frozenset({"PUT"})
A, ALWAYS, ASKED = Action, Renders.ALWAYS, Renders.ASKED
ROUTES: tuple[Route, ...] = tuple(
    Route.of(*row)
    for row in (
        # Jira: project-neutral reads.
        (J, READ, "/rest/api/{v}/myself", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/serverInfo", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/field", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/issuetype", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/priority", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/status", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/statuscategory", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/resolution", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/issueLinkType", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/configuration", NOTHING, A.NEUTRAL, ASKED),
        (J, READ, "/rest/api/{v}/jql/autocompletedata", NOTHING, A.NEUTRAL, ASKED),
        # Jira: searches.
        (J, GET_POST, "/rest/api/{v}/search", JIRA, A.JQL, ASKED),
        (J, GET_POST, "/rest/api/{v}/search/jql", JIRA, A.JQL, ASKED),
        (J, POST, "/rest/api/{v}/search/approximate-count", JIRA, A.JQL, ASKED),
        # Jira: issues.
        (J, POST, "/rest/api/{v}/issue", JIRA, A.CREATE_ISSUES, ASKED),
        (J, POST, "/rest/api/{v}/issue/bulk", JIRA, A.CREATE_ISSUES, ASKED),
        (J, ALL, "/rest/api/{v}/issue/picker", JIRA, A.REFUSE, ASKED),
        (J, ALL, "/rest/api/{v}/issue/createmeta", JIRA, A.REFUSE, ASKED),
        (J, READ, "/rest/api/{v}/issue/createmeta/{project}/issuetypes/**", JIRA, A.PROJECT, ASKED),
        (J, PUT, "/rest/api/{v}/issue/{issue}", JIRA, A.EDIT_ISSUE, ASKED),
        (J, POST, "/rest/api/{v}/issue/{issue}/transitions", JIRA, A.EDIT_ISSUE, ASKED),
        (J, ALL, "/rest/api/{v}/issue/{issue}/**", JIRA, A.ISSUE, ASKED),
        (J, ALL, "/rest/agile/1.0/issue/{issue}/**", JIRA, A.ISSUE, ASKED),
        # Jira: projects.
        (J, ALL, "/rest/api/{v}/project/search", JIRA, A.REFUSE, ASKED),
        (J, ALL, "/rest/api/{v}/project/recent", JIRA, A.REFUSE, ASKED),
        (J, ALL, "/rest/api/{v}/project/type/**", JIRA, A.REFUSE, ASKED),
        (J, ALL, "/rest/api/{v}/project/{project}/**", JIRA, A.PROJECT, ASKED),
        # Service Management's knowledge base searches Confluence, in every form and at any depth.
        (J, ALL, "/rest/servicedeskapi/**/{*}knowledge{*}/**", BOTH, A.REFUSE, ASKED),
        (J, ALL, "/rest/servicedeskapi/**/{*}article{*}/**", BOTH, A.REFUSE, ASKED),
        # Jira's wiki renderer (the editor's preview) links each issue key with that issue's summary.
        (J, ALL, "/rest/api/1.0/render", BOTH, A.REFUSE, ALWAYS),
        # Jira: the rest of its REST APIs, which reach only Jira.
        (J, ALL, "/rest/api/{v}/**", JIRA, A.UNJUDGED, ASKED),
        (J, ALL, "/rest/agile/1.0/**", JIRA, A.UNJUDGED, ASKED),
        (J, ALL, "/rest/servicedeskapi/**", JIRA, A.UNJUDGED, ASKED),
        # Confluence: space-neutral reads.
        (C, READ, "/wiki/rest/api/user/current", NOTHING, A.NEUTRAL, ASKED),
        (C, READ, "/wiki/rest/api/settings/systemInfo", NOTHING, A.NEUTRAL, ASKED),
        # Confluence: searches.
        (C, READ, "/wiki/rest/api/search", WIKI, A.CQL, ASKED),
        (C, READ, "/wiki/rest/api/content/search", WIKI, A.CQL, ASKED),
        # Confluence v1: content.
        (C, READ, "/wiki/rest/api/content", WIKI, A.SPACE_PARAM, ASKED),
        (C, POST, "/wiki/rest/api/content", WIKI, A.CREATE_CONTENT, ASKED),
        # Converting a macro renders it: a `jira` macro shows issues, an `include` pages of any space.
        (C, ALL, "/wiki/rest/api/content/{content}/history/{*}/macro/**/convert/**", BOTH, A.REFUSE, ALWAYS),
        (C, ALL, "/wiki/rest/api/content/{content}/move/**", WIKI, A.REFUSE, ASKED),
        (C, ALL, "/wiki/rest/api/content/{content}/copy", WIKI, A.REFUSE, ASKED),
        (C, ALL, "/wiki/rest/api/content/{content}/pagehierarchy/**", WIKI, A.REFUSE, ASKED),
        (C, PUT, "/wiki/rest/api/content/{content}/child/attachment/**", WIKI, A.REFUSE, ASKED),
        (C, PUT, "/wiki/rest/api/content/{content}", WIKI, A.EDIT_CONTENT, ASKED),
        (C, ALL, "/wiki/rest/api/content/{content}/**", WIKI, A.CONTENT, ASKED),
        (C, ALL, "/wiki/rest/api/space/{space}/**", WIKI, A.SPACE, ASKED),
        (C, READ, "/wiki/download/attachments/{content}/**", WIKI, A.CONTENT, ASKED),
        # Confluence v2.
        (C, POST, "/wiki/api/v2/pages", WIKI, A.CREATE_PAGE, ASKED),
        (C, POST, "/wiki/api/v2/blogposts", WIKI, A.CREATE_PAGE, ASKED),
        (C, PUT, "/wiki/api/v2/pages/{content}", WIKI, A.EDIT_PAGE, ASKED),
        (C, PUT, "/wiki/api/v2/blogposts/{content}", WIKI, A.EDIT_PAGE, ASKED),
        (C, ALL, "/wiki/api/v2/pages/{content}/**", WIKI, A.CONTENT, ASKED),
        (C, ALL, "/wiki/api/v2/blogposts/{content}/**", WIKI, A.CONTENT, ASKED),
        (C, ALL, "/wiki/api/v2/footer-comments/{content}/**", WIKI, A.CONTENT, ASKED),
        (C, ALL, "/wiki/api/v2/inline-comments/{content}/**", WIKI, A.CONTENT, ASKED),
        (C, ALL, "/wiki/api/v2/spaces/{spaceid}/**", WIKI, A.SPACE_ID, ASKED),
        # Converting a body renders its macros: `jira` shows issues, `include` pages of any space.
        (C, ALL, "/wiki/rest/api/contentbody/**", BOTH, A.REFUSE, ALWAYS),
        # Confluence: the rest of its REST APIs, which reach only Confluence (rendering aside).
        (C, ALL, "/wiki/rest/api/**", WIKI, A.UNJUDGED, ASKED),
        (C, ALL, "/wiki/api/v2/**", WIKI, A.UNJUDGED, ASKED),
    )
)
"""First match wins; a path that matches no row is refused for any bounded client."""
IDENTITY = Route.of(J, READ, "/rest/api/{v}/myself", NOTHING, A.NEUTRAL, ASKED)
"""The one route a bounded client may use on a site whose layout is not known: who am I."""

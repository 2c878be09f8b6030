"""A model of what an Atlassian site does with a request: whose data it reaches.

The oracle of the boundary property test, written from the site's side and on purpose apart
from `proxy_addon.policy.boundaries` (which decides what a client may send): given where each
product really lives on a site, a request's method, path, query and body, it names every
(product, key) the site would read or change, `ALL` where it would reach a whole product.
Where the model does not know what the site does (an unknown root, a plugin servlet, a path a
server might normalize), it assumes the worst: every project and every space.

Assumptions, as Atlassian's servers behave: paths and parameter names are matched without
regard to case (the stricter reading for a judge); a repeated JSON key or parameter may be read
in any of its values; a method-override header or `_method` parameter may make the request
run as any method.

The request target is read the way every parser on the way might read it, and the request
reaches the union (`readings`): as sent, split on `&` (a servlet); without a fragment (RFC 3986,
WHATWG, a front proxy that strips it) and without tabs and line breaks (WHATWG); with `;` as a
parameter separator too (older form parsers); without a parameter whose `%` escape is broken (a
container that drops what it cannot decode). A target with a space, a control character or
non-ASCII may be read as any request at all (a request line split, bytes dropped or recoded).

Rendering shows what the renderer pulls in: a Confluence body or macro in a view or editor
representation runs its macros (`jira`: issues of any project; `include`: pages of any space);
Jira's rendered fields and bodies title every issue key with that issue's summary, whatever
its project.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus

from support.query_shape import confined_parts

JIRA, CONFLUENCE = "Jira", "Confluence"
ALL = "*"
"""Every project or every space of the product."""
EVERYTHING = frozenset({(JIRA, ALL), (CONFLUENCE, ALL)})
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")

ISSUES = {"20001": "OPS", "20002": "SEC", "20003": "OPS"}
PROJECTS = {"10001": "OPS", "10002": "SEC"}
CONTENT = {"30001": "ENG", "30002": "HR", "30003": "ENG"}
SPACES = {"40001": "ENG", "40002": "HR"}
ISSUE_KEY = re.compile(r"([a-z][a-z0-9_]*)-[0-9]+", re.IGNORECASE)
PROJECT_KEY = re.compile(r"[a-z][a-z0-9_]*", re.IGNORECASE)
SPACE_KEY = re.compile(r"~?[a-z0-9]+", re.IGNORECASE)
NEUTRAL_JIRA = frozenset(
    {
        "myself",
        "serverinfo",
        "field",
        "issuetype",
        "priority",
        "status",
        "statuscategory",
        "resolution",
        "issuelinktype",
        "configuration",
        "jql/autocompletedata",
    }
)

READ_POSTS = {
    JIRA: re.compile(r"/rest/api/(?:2|3|latest)/(?:search(?:/jql|/approximate-count)?|expression/eval)", re.I),
    CONFLUENCE: re.compile(r"/rest/api/(?:content/)?search", re.I),
}
"""POSTs that only read (a query too long for a URL), in each product's own paths."""
UNREADABLE = re.compile(r"[^\x21-\x7e]")
"""A space, a control character or non-ASCII: the target may be read as any request."""
SOURCE_FORMATS = frozenset({"storage", "atlas_doc_format", "raw", "plain", "wiki"})
"""Representations that hold the source as written, macros unrendered."""

type Reach = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Truth:
    """Where each product really lives on a site: a path prefix, or absent; or the API gateway."""

    jira: str | None = None
    confluence: str | None = None
    gateway: bool = False

    def place(self, route: str) -> tuple[str, str] | None:
        """(product, the product's own path) of a decoded route, or None when nothing there serves it."""
        if self.gateway:
            match = re.fullmatch(r"/ex/(jira|confluence)/[0-9a-f-]+(/.*)?", route, re.IGNORECASE)
            if match is None:
                return None
            rest = match[2] or "/"
            if match[1].lower() == "jira":
                return JIRA, rest
            return CONFLUENCE, (rest[5:] or "/") if re.match(r"/wiki(/|$)", rest, re.IGNORECASE) else rest
        best = None
        for product, prefix in ((JIRA, self.jira), (CONFLUENCE, self.confluence)):
            if prefix is None:
                continue
            low, pre = route.lower(), prefix.lower()
            if (not pre or low == pre or low.startswith(pre + "/")) and (best is None or len(prefix) > len(best[1])):
                best = product, prefix
        if best is None:
            return None
        return best[0], route[len(best[1]) :] or "/"


type Parameters = list[tuple[str, str]]


def readings(target: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(path, parameters) of a target as each kind of URL parser on the way may read it (see the module's doc)."""
    whatwg = re.sub(r"[\t\n\r]", "", target).partition("#")[0]
    found = set()
    for text in (target, whatwg):
        raw, _, query = text.partition("?")
        for separators in ("&", "&;"):
            parts = [part for part in re.split(f"[{separators}]", query) if part]
            for strict in (False, True):
                kept = [p for p in parts if not (strict and re.search(r"%(?![0-9A-Fa-f]{2})", p))]
                pairs = tuple((unquote_plus(n), unquote_plus(v)) for n, _, v in (p.partition("=") for p in kept))
                found.add((raw, pairs))
    return found


def simple(name: str) -> str:
    """A parameter or key name as a lenient reader matches it: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def asks_rendering(parameters: Parameters, words: tuple[str, ...]) -> bool:
    return any(
        simple(name) in ("expand", "bodyformat") and any(word in value.lower() for word in words)
        for name, value in parameters
    )


def decoded(path: str) -> str | None:
    """The route as a server reads it, or None when a server might read it several ways."""
    if not path.startswith("/") or not path.isascii():
        return None
    segments = path.split("/")[1:]
    if len(segments) > 1 and segments[-1] == "":
        segments.pop()
    out = []
    for segment in segments:
        try:
            text = unquote(segment, errors="strict")
        except UnicodeDecodeError:
            return None
        if text in ("", ".", "..") or any(c in "/\\;%" or not c.isprintable() for c in text) or ";" in segment:
            return None
        out.append(text)
    return "/" + "/".join(out)


def pairs(document: Any) -> list[tuple[str, Any]]:
    """Every (key, value) of every object in a JSON document, repeated keys included."""
    found: list[tuple[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, tuple):  # an object, as the pairs hook keeps it
            for key, item in value:
                found.append((key, item))
                walk(item)

    walk(document)
    return found


def parse_body(body: bytes | None) -> Any:
    if not body:
        return None
    try:
        return json.loads(body, object_pairs_hook=tuple)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def as_object(value: Any) -> dict[str, list[Any]]:
    """A JSON object's keys (lower case) with every value given for each."""
    out: dict[str, list[Any]] = {}
    if isinstance(value, tuple):
        for key, item in value:
            out.setdefault(key.lower(), []).append(item)
    return out


class Site:
    """One request to a site whose products live as `truth` says; `reached` is what it touches.

    A create or an edit reads every object in its body that names a project, an issue, a space
    or a page, at any depth and in any case (the fields a server reads may be looked up loosely).
    """

    def __init__(self, truth: Truth) -> None:
        self.truth = truth

    @staticmethod
    def methods(method: str, parameters: Parameters, headers: list[tuple[str, str]]) -> set[str]:
        """The methods the request may run as: its own, or any with a method override."""
        if any(name.lower() in OVERRIDE_HEADERS for name, _ in headers) or any(
            name.lower() == "_method" for name, _ in parameters
        ):
            return set(METHODS)
        return {method.upper()}

    def writes(self, method: str, path: str, headers: list[tuple[str, str]]) -> bool:
        """May the request change anything on the site, in any reading of its target?"""
        if UNREADABLE.search(path):
            return True
        for raw, parameters in readings(path):
            route = decoded(raw)
            placed = self.truth.place(route) if route is not None else ("?", "?")
            if placed is None:
                continue
            product, own = placed
            reads = READ_POSTS.get(product)
            for each in self.methods(method, list(parameters), headers):
                if each not in ("GET", "HEAD", "OPTIONS") and not (
                    each == "POST" and reads is not None and reads.fullmatch(own)
                ):
                    return True
        return False

    def reached(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None) -> Reach:
        if UNREADABLE.search(path):
            return EVERYTHING
        reach: set[tuple[str, str]] = set()
        for raw, pairs in readings(path):
            parameters = list(pairs)
            route = decoded(raw)
            if route is None:
                return EVERYTHING
            placed = self.truth.place(route)
            if placed is None:
                continue
            product, own = placed
            for each in self.methods(method, parameters, headers):
                if product == JIRA:
                    reach |= self._jira(each, own, parameters, parse_body(body))
                else:
                    reach |= self._confluence(each, own, parameters, parse_body(body))
        return frozenset(reach)

    # -- Jira ----------------------------------------------------------------------------------

    def _jira(self, method: str, path: str, parameters: list[tuple[str, str]], document: Any) -> Reach:
        low = path.lower()
        api = re.fullmatch(r"/rest/api/(?:2|3|latest)/(.*)", low)
        edits = api is not None and (
            (method == "POST" and re.fullmatch(r"issue(/bulk)?|issue/[^/]+/transitions", api[1]))
            or (method in ("PUT", "PATCH") and re.fullmatch(r"issue/[^/]+", api[1]))
        )
        reach = self._jira_body(document) if edits else set()
        reads_expand = api is not None and re.fullmatch(r"search(/jql|/approximate-count)?|issue/bulkfetch", api[1])
        if asks_rendering(parameters, ("render",)) or (reads_expand and self._body_asks_rendering(document)):
            reach.add((JIRA, ALL))  # every issue key titled with its summary, whatever its project
        if api is None:
            if match := re.fullmatch(r"/rest/agile/(?:1\.0|latest)/issue/([^/]+)(/.*)?", path, re.IGNORECASE):
                return frozenset(reach | self._issue(match[1]))
            if low.startswith("/rest/servicedeskapi/"):
                if re.search(r"/[^/]*(knowledge|article)", low):
                    return EVERYTHING
                return frozenset({(JIRA, ALL)})
            if re.match(r"/rest/agile/(1\.0|latest)/", low):
                return frozenset({(JIRA, ALL)})
            return EVERYTHING
        rest = api[1]
        original = path[len(path) - len(rest) :]
        if rest in NEUTRAL_JIRA and method in ("GET", "HEAD"):
            return frozenset()
        if re.fullmatch(r"search(/jql|/approximate-count)?", rest):
            return frozenset(reach | self._searched(parameters, document, "jql", "project", JIRA))
        if match := re.fullmatch(r"issue/createmeta/([^/]+)/issuetypes(/.*)?", original, re.IGNORECASE):
            return frozenset(reach | self._project(match[1]))
        if match := re.fullmatch(r"issue/([^/]+)(/.*)?", original, re.IGNORECASE):
            if match[1].lower() in ("bulk",) and match[2] is None and method == "POST":
                return frozenset(reach)
            return frozenset(reach | self._issue(match[1]))
        if rest == "issue" and method == "POST":
            return frozenset(reach)
        if match := re.fullmatch(r"project/([^/]+)(/.*)?", original, re.IGNORECASE):
            return frozenset(reach | self._project(match[1]))
        return frozenset({(JIRA, ALL)})

    @staticmethod
    def _body_asks_rendering(document: Any) -> bool:
        """A body's `expand` (any depth, any case), a string or a list, naming rendered fields or bodies: read by
        the POSTs that take their options in the body (searches, a bulk fetch), not by creates or comments."""
        for key, value in pairs(document):
            values = value if isinstance(value, list) else [value]
            texts = [item for item in values if isinstance(item, str)]
            texts += [inner for item in values if isinstance(item, list) for inner in item if isinstance(inner, str)]
            if simple(key) == "expand" and any("render" in text.lower() for text in texts):
                return True
        return False

    def _issue(self, text: str) -> set[tuple[str, str]]:
        if match := ISSUE_KEY.fullmatch(text):
            return {(JIRA, match[1].upper())}
        if text.isdigit():
            return {(JIRA, ISSUES[text])} if text in ISSUES else set()
        return {(JIRA, ALL)}

    def _project(self, text: str) -> set[tuple[str, str]]:
        if text.isdigit():
            return {(JIRA, PROJECTS[text])} if text in PROJECTS else set()
        if PROJECT_KEY.fullmatch(text) and text.lower() not in ("search", "recent", "type"):
            return {(JIRA, text.upper())}
        return {(JIRA, ALL)}

    def _jira_body(self, document: Any) -> set[tuple[str, str]]:
        reach: set[tuple[str, str]] = set()
        for key, value in pairs(document):
            name = key.lower()
            if name in ("project", "parent"):
                refs = as_object(value)
                if not refs or set(refs) - {"key", "id"}:
                    reach.add((JIRA, ALL))
                for ref_key, values in refs.items():
                    for item in values:
                        text = str(item) if isinstance(item, (str, int)) and not isinstance(item, bool) else "?"
                        if name == "parent":
                            reach |= self._issue(text)
                        elif ref_key == "id":
                            reach |= self._project(text) if text.isdigit() else {(JIRA, ALL)}
                        else:
                            reach |= self._project(text)
            elif name == "issuelinks":
                reach.add((JIRA, ALL))
        return reach

    # -- Confluence ----------------------------------------------------------------------------

    def _confluence(self, method: str, path: str, parameters: list[tuple[str, str]], document: Any) -> Reach:
        low = path.lower()
        if re.match(r"/rest/api/(2|3|latest)/", low):
            return frozenset()  # Jira's versioned paths: Confluence's API has no version, it serves nothing there
        if asks_rendering(parameters, ("view", "editor")):
            return EVERYTHING  # macros rendered: issues of any project, pages of any space
        macro = re.fullmatch(r"/rest/api/content/[^/]+/history/[^/]+/macro/[^/]+/[^/]+/convert/(.+)", low)
        if macro and macro[1] not in SOURCE_FORMATS:
            return EVERYTHING  # the macro rendered (or an async conversion whose result is)
        edits = (method == "POST" and low in ("/rest/api/content", "/api/v2/pages", "/api/v2/blogposts")) or (
            method in ("PUT", "PATCH") and re.fullmatch(r"/rest/api/content/[^/]+|/api/v2/(pages|blogposts)/[^/]+", low)
        )
        reach = self._confluence_body(document) if edits else set()
        if low in ("/rest/api/user/current", "/rest/api/settings/systeminfo") and method in ("GET", "HEAD"):
            return frozenset()
        if re.fullmatch(r"/rest/api/(content/)?search", low):
            return frozenset(reach | self._searched(parameters, None, "cql", "space", CONFLUENCE))
        if low == "/rest/api/content":
            if method in ("GET", "HEAD"):
                keys = [value for name, value in parameters if name.lower() == "spacekey"]
                return frozenset({(CONFLUENCE, key.upper()) for key in keys} or {(CONFLUENCE, ALL)})
            return frozenset(reach)
        if low.startswith("/rest/api/contentbody"):
            return EVERYTHING
        if match := re.fullmatch(r"/rest/api/content/([^/]+)(/.*)?", path, re.IGNORECASE):
            tail = (match[2] or "").lower()
            if re.match(r"/(move|copy|pagehierarchy)(/|$)", tail) or (
                tail.startswith("/child/attachment") and method == "PUT"
            ):
                return frozenset({(CONFLUENCE, ALL)})
            return frozenset(reach | self._content(match[1]))
        if match := re.fullmatch(r"/rest/api/space/([^/]+)(/.*)?", path, re.IGNORECASE):
            key = match[1]
            return frozenset({(CONFLUENCE, key.upper())} if SPACE_KEY.fullmatch(key) else {(CONFLUENCE, ALL)})
        if match := re.fullmatch(r"/download/attachments/([^/]+)(/.*)?", path, re.IGNORECASE):
            return frozenset(self._content(match[1]))
        if low in ("/api/v2/pages", "/api/v2/blogposts") and method == "POST":
            return frozenset(reach)
        if match := re.fullmatch(
            r"/api/v2/(pages|blogposts|footer-comments|inline-comments)/([^/]+)(/.*)?", path, re.IGNORECASE
        ):
            return frozenset(reach | self._content(match[2]))
        if match := re.fullmatch(r"/api/v2/spaces/([^/]+)(/.*)?", path, re.IGNORECASE):
            return frozenset(self._space_id(match[1]))
        if low.startswith(("/rest/api/", "/api/v2/")):
            return frozenset({(CONFLUENCE, ALL)})
        return EVERYTHING

    def _space_id(self, text: str) -> set[tuple[str, str]]:
        if text.isdigit():
            return {(CONFLUENCE, SPACES[text])} if text in SPACES else set()
        return {(CONFLUENCE, ALL)}

    def _content(self, text: str) -> set[tuple[str, str]]:
        if text.isdigit():
            return {(CONFLUENCE, CONTENT[text])} if text in CONTENT else set()
        return {(CONFLUENCE, ALL)}

    def _confluence_body(self, document: Any) -> set[tuple[str, str]]:
        reach: set[tuple[str, str]] = set()
        for key, value in pairs(document):
            name = key.lower()
            if name == "space":
                keys = as_object(value)
                if not keys or set(keys) != {"key"}:
                    reach.add((CONFLUENCE, ALL))
                for item in keys.get("key", []):
                    reach.add((CONFLUENCE, item.upper() if isinstance(item, str) else ALL))
            elif name == "spaceid":
                reach |= self._space_id(str(value))
            elif name == "parentid":
                reach |= self._content(str(value))
            elif name in ("ancestors", "container"):
                items = value if isinstance(value, list) else [value]
                for item in items:
                    ids = as_object(item).get("id", [None])
                    for number in ids:
                        reach |= self._content(str(number))
        return reach

    # -- searches ------------------------------------------------------------------------------

    def _searched(
        self, parameters: list[tuple[str, str]], document: Any, name: str, field: str, product: str
    ) -> set[tuple[str, str]]:
        """A search reads every spelling of its query, in the URL and the body; an unconfined one reads it all."""
        queries = [value for key, value in parameters if key.lower() == name]
        queries += [value for key, values in as_object(document).items() if key == name for value in values]
        if not queries:
            return {(product, ALL)}
        reach: set[tuple[str, str]] = set()
        for query in queries:
            try:
                keys, _, _ = confined_parts(query, field) if isinstance(query, str) else ([], None, [])
            except (AssertionError, ValueError, IndexError):
                keys = []
            reach |= {(product, key.upper()) for key in keys} or {(product, ALL)}
        return reach

"""The boundary as a whole, property-tested against a model of the sites (issue 20).

Generated requests of bounded and read-only clients, across both products and every layout
(Cloud, a scoped site sent through the gateway, the gateway itself, Data Center Confluence and
Jira at `/` or under a context path, a Data Center site that declares nothing): routes from the
table and outside it, put under the right product's prefix or the wrong one, keys and ids in
and out of bounds, query parameters, bodies and headers; routes, parameters and body fields
that have the site render (macro conversions, Jira's render endpoint, rendered representations
and fields), and targets with bytes URL parsers read in different ways (a fragment, a space or
control character, `;`, a broken escape, non-ASCII) put anywhere in them. Each request goes the proxy's way,
`facts_of` -> `decide` -> `judge` (its lookups answered from the model's data, its body given
when asked for), and whatever would reach the site with the credential is put to
`support.site_model`, which knows nothing of the route table: it must name no project or space
outside the client's bounds, reach no product the client is bounded in without that bound judged,
and, for a read-only client or site, run as no write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy.test import tflow, tutils

from proxy_addon.addons.injector import facts_of
from proxy_addon.policy.boundaries.judge import judge
from proxy_addon.policy.boundaries.judgements import Allowed, NeedsBody, NeedsLookup, Rewritten
from proxy_addon.policy.boundaries.lookups import Ref, RefKind, lookup_path
from proxy_addon.policy.clients import Client
from proxy_addon.policy.hosts import HostPattern, normalize_host
from proxy_addon.policy.layouts import Layout, Prefixes, Product, declared, layout_of
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision
from proxy_addon.policy.scoped import GATEWAY, Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.policy.verdict import Policy, decide

from support import site_model
from support.site_model import ALL, CONFLUENCE, JIRA, Truth

CLOUD_ID = "c0ffee00-1234-4abc-9def-00000000beef"
LOGIN = ProxyLogin.parse("agent:Pr0xy-pa55word-9f3e")

QUERIES = ["project = SEC", "", "project = OPS) OR (project = SEC", "status = Done ORDER BY key", "space = HR", "x"]
JQL = [*(("jql", query) for query in QUERIES), ("JQL", "project = SEC"), ("Jql", "")]
CQL = [*(("cql", query) for query in QUERIES), ("Cql", "space = HR"), ("CQL", "")]
SPACE_KEYS = [("spaceKey", "ENG"), ("spaceKey", "ENG"), ("spaceKey", "HR"), ("SpaceKey", "HR"), ("spacekey", "HR")]
RENDERING = [
    ("expand", "body.storage"),
    ("expand", "body.view"),
    ("expand", "version,body.EXPORT_VIEW"),
    ("Expand", "content.body.styled_view"),
    ("expand", "body.editor2"),
    ("body-format", "storage"),
    ("body-format", "VIEW"),
    ("body_format", "atlas_doc_format"),
    ("expand", "renderedFields"),
    ("expand", "names,RENDEREDFIELDS,changelog"),
    ("EXPAND", "renderedBody"),
    ("expand[]", "renderedFields"),
    ("expand", "changelog,names"),
]
NOISE = [("_method", "DELETE"), ("maxResults", "5"), ("fields", "summary")]
SEARCH_BODY = [
    '"JQL": "project = SEC"',
    '"Jql": ""',
    '"jql": "project = SEC"',
    '"jql": ""',
    '"JQL": "project = SEC"',
    '"maxResults": 5',
    '"jql": 5',
    '"expand": ["renderedFields"]',
    '"expand": "names,renderedFields"',
    '"Expand": "RenderedBody"',
    '"expand": ["names"]',
]
ISSUE_BODY = [
    '"Fields": {"project": {"key": "SEC"}}',
    '"fields": {"Project": {"key": "SEC"}, "project": {"key": "OPS"}}',
    '"project": {"key": "SEC"}',
    '"fields": {"project": {"key": "OPS"}, "summary": "s"}',
    '"fields": {"project": {"key": "OPS"}, "summary": "s"}',
    '"fields": {"project": {"key": "SEC"}, "summary": "s"}',
    '"fields": {"project": {"id": "10002"}}',
    '"fields": {"project": {"id": 10001}, "parent": {"key": "SEC-1"}}',
    '"fields": {"project": {"key": "OPS", "id": "10002"}}',
    '"issueUpdates": [{"fields": {"project": {"key": "OPS"}}}, {"fields": {"project": {"key": "SEC"}}}]',
    '"issueUpdates": [{"fields": {"project": {"key": "OPS"}}}]',
    '"update": {"issuelinks": [{"add": {"outwardIssue": {"key": "SEC-1"}}}]}',
    '"transition": {"id": "31"}',
]
CONTENT_BODY = [
    '"spaceId": "40002"',
    '"metadata": {"space": {"key": "HR"}}',
    '"Space": {"key": "HR"}',
    '"space": {"key": "ENG"}',
    '"space": {"key": "ENG"}',
    '"space": {"key": "HR"}',
    '"space": {"key": "ENG", "id": 40002}',
    '"ancestors": [{"id": "30002"}]',
    '"ancestors": [{"id": "30001"}]',
    '"container": {"id": 30001}',
    '"title": "t", "type": "page"',
]
PAGE_BODY = [
    '"SpaceId": "40002"',
    '"space": {"key": "HR"}',
    '"spaceId": "40001"',
    '"spaceId": "40001"',
    '"spaceId": "40002"',
    '"parentId": "30002"',
    '"parentId": "30001"',
    '"title": "t"',
]
CONVERT_BODY = ['"value": "<ac:structured-macro ac:name=\\"jira\\"/>", "representation": "storage"']
EVERY_BODY = [*SEARCH_BODY, *ISSUE_BODY, *CONTENT_BODY, *PAGE_BODY, *CONVERT_BODY]
READ, WRITE, ANY = ("GET", "HEAD"), ("POST", "PUT", "DELETE"), ("GET", "POST", "PUT", "DELETE")
type Route = tuple[str, tuple[str, ...], list[tuple[str, str]], list[str]]
"""A route template, its likely methods, the parameters and the body fields it takes."""

JIRA_ROUTES = [
    ("/rest/api/{v}/issue/{issue}", ("GET", "PUT", "DELETE"), NOISE, ISSUE_BODY),
    (
        "/rest/api/1.0/render",
        ("POST",),
        NOISE,
        ['"rendererType": "atlassian-wiki-renderer"', '"unrenderedMarkup": "SEC-1"'],
    ),
    ("/rest/api/{v}/issue/{issue}/render", READ, NOISE, []),
    ("/rest/api/{v}/issue/{issue}/comment", ("GET", "POST"), NOISE, ISSUE_BODY),
    ("/rest/api/{v}/issue/{issue}/transitions", ("GET", "POST"), NOISE, ISSUE_BODY),
    ("/rest/api/{v}/issue", ("POST",), NOISE, ISSUE_BODY),
    ("/rest/api/{v}/issue/bulk", ("POST",), NOISE, ISSUE_BODY),
    ("/rest/api/{v}/issue/picker", READ, NOISE, []),
    ("/rest/api/{v}/issue/createmeta/{project}/issuetypes", READ, NOISE, []),
    ("/rest/api/{v}/project/{project}", ANY, NOISE, ISSUE_BODY),
    ("/rest/api/{v}/project/{project}/versions", READ, NOISE, []),
    ("/rest/api/{v}/project/search", READ, NOISE, []),
    ("/rest/api/{v}/search", ("GET", "POST"), JQL, SEARCH_BODY),
    ("/rest/api/{v}/search/jql", ("GET", "POST"), JQL, SEARCH_BODY),
    ("/rest/api/{v}/myself", READ, NOISE, []),
    ("/rest/api/{v}/filter/10000", ANY, JQL, SEARCH_BODY),
    ("/rest/api/{v}/expression/eval", ("POST",), NOISE, SEARCH_BODY),
    ("/rest/agile/1.0/issue/{issue}", ANY, NOISE, ISSUE_BODY),
    ("/rest/agile/1.0/board/1/issue", READ, JQL, []),
    ("/rest/servicedeskapi/request", ANY, NOISE, ISSUE_BODY),
    ("/rest/servicedeskapi/servicedesk/{desk}/knowledgebase/article", READ, [("query", "salary")], []),
    ("/rest/servicedeskapi/knowledgebase/article", READ, [("query", "salary")], []),
    ("/rest/greenhopper/1.0/rapidview", READ, NOISE, []),
    ("/rest/jiraanywhere/1.0/servers", READ, NOISE, []),
    ("/plugins/servlet/applinks/proxy", READ, [("path", "/rest/api/2/search?jql=project=SEC")], []),
    ("/graphql", ("POST",), NOISE, SEARCH_BODY),
    ("/gateway/api/graphql", ("POST",), NOISE, SEARCH_BODY),
    ("/browse/{issue}", READ, NOISE, []),
]
CONFLUENCE_ROUTES = [
    ("/rest/api/content/{content}", ("GET", "PUT", "DELETE"), RENDERING, CONTENT_BODY),
    ("/rest/api/content/{content}/child/page", READ, RENDERING, []),
    ("/rest/api/content/{content}/history/1/macro/id/{macro}/convert/{format}", READ, RENDERING, []),
    ("/rest/api/content/{content}/history/1/macro/hash/{macro}/convert/async/{format}", READ, NOISE, []),
    ("/rest/api/content/{content}/history/1/macro/id/{macro}", READ, RENDERING, []),
    ("/rest/api/content/{content}/child/attachment/att1", ("GET", "PUT"), NOISE, CONTENT_BODY),
    ("/rest/api/content", ("GET", "POST"), SPACE_KEYS + RENDERING, CONTENT_BODY),
    ("/rest/api/content/{content}/move/append/{content}", ("PUT",), NOISE, []),
    ("/rest/api/content/{content}/copy", ("POST",), NOISE, CONTENT_BODY),
    ("/rest/api/content/search", READ, CQL + RENDERING, []),
    ("/rest/api/search", READ, CQL + RENDERING, []),
    ("/rest/api/space/{space}", READ, RENDERING, []),
    ("/rest/api/space/{space}/content", READ, RENDERING, []),
    ("/rest/api/space", READ, NOISE, []),
    ("/rest/api/contentbody/convert/{format}", ("POST",), RENDERING, CONVERT_BODY),
    ("/rest/api/user/current", READ, RENDERING, []),
    ("/rest/api/template/1", READ, RENDERING, []),
    ("/api/v2/pages/{content}", ("GET", "PUT"), RENDERING, PAGE_BODY),
    ("/api/v2/pages", ("GET", "POST"), RENDERING, PAGE_BODY),
    ("/api/v2/blogposts/{content}", ("GET", "PUT"), RENDERING, PAGE_BODY),
    ("/api/v2/spaces/{spaceid}/pages", READ, RENDERING, []),
    ("/api/v2/footer-comments/{content}", READ, RENDERING, []),
    ("/download/attachments/{content}/x.pdf", READ, NOISE, []),
    ("/plugins/servlet/applinks/proxy", READ, [("path", "/rest/api/2/search?jql=project=SEC")], []),
    ("/spaces/{space}/pages/{content}", READ, NOISE, []),
]
ROUTES = [*((JIRA, route) for route in JIRA_ROUTES), *((CONFLUENCE, route) for route in CONFLUENCE_ROUTES)]
FOCUS = {
    "every route": ROUTES,
    "rendering": [(product, route) for product, route in ROUTES if "{format}" in route[0] or "render" in route[0]],
    "searches": [(product, route) for product, route in ROUTES if route[2] in (JQL, CQL + RENDERING)],
    "bodies": [(product, route) for product, route in ROUTES if route[3] in (ISSUE_BODY, CONTENT_BODY, PAGE_BODY)],
    "listings": [(product, route) for product, route in ROUTES if route[2] == SPACE_KEYS + RENDERING],
}
"""Every route, and groups of them drawn alone so that each kind of request is tried often."""
VALUES = {
    "{v}": ["2", "3", "latest"],
    "{issue}": ["OPS-1", "OPS-1", "SEC-1", "ops-2", "20001", "20001", "20002", "29999", "picker", "X"],
    "{project}": ["OPS", "OPS", "SEC", "ops", "10001", "10002", "19999", "search"],
    "{content}": ["30001", "30001", "30003", "30002", "39999", "abc"],
    "{space}": ["ENG", "ENG", "HR", "eng", "~user"],
    "{spaceid}": ["40001", "40001", "40002", "49999"],
    "{desk}": ["1", "projectKey:ITS"],
    "{format}": ["view", "export_view", "storage", "VIEW", "anonymous_export_view", "editor2", "atlas_doc_format"],
    "{macro}": ["0f5a-jira-macro", "view"],
}
ODD = ["#", "#&", "#&jql=project%3DSEC", " ", "\t", ";", ";jql=project%3DSEC", "%", "%zz", "\\", "é", "%23", "?x#"]
"""Put anywhere in a target, mostly at a parameter's edge: bytes URL parsers read in different ways (and `%23`,
which they all read alike)."""
HEADERS = [
    ("X-HTTP-Method-Override", "DELETE"),
    ("x-http-method-override", "PUT"),
    ("X-HTTP-Method", "DELETE"),
    ("X-METHOD-OVERRIDE", "POST"),
    ("X-Requested-With", "XMLHttpRequest"),
    ("Accept", "application/json"),
]


USER = "me@x.test"
CLIENTS = [
    Client(f"agent-{index}", LOGIN, None, read_only, jira, wiki)
    for index, (jira, wiki, read_only) in enumerate(
        (jira, wiki, read_only)
        for jira in (None, frozenset(), frozenset({"OPS"}))
        for wiki in (None, frozenset(), frozenset({"ENG"}))
        for read_only in (False, True)
    )
    if jira is not None or wiki is not None or read_only
]
"""Every kind of restricted client; each generated request is tried as each of them."""


@dataclass(frozen=True)
class Place:
    """Where a request goes: the host, how its site is configured, and where each product really is."""

    kind: str
    host: str
    truth: Truth
    prefixes: tuple[tuple[str, str], ...]
    """(product whose routes to use, the path prefix to put them under): the right ones, and wrong ones."""
    layout: Prefixes | None = None

    def policy(self, read_only: bool) -> Policy:
        if self.kind not in ("cloud", "scoped", "gateway"):
            site = Site(self.kind, (HostPattern.parse(self.host),), USER, Scheme.BEARER, read_only, layout=self.layout)
            return Policy(SiteTable.of([site]), Gateway())
        scoped = Site("scoped", (HostPattern.parse("scoped.atlassian.net"),), USER, read_only=read_only, scoped=True)
        cloud = Site("cloud", (HostPattern.parse("acme.atlassian.net"),), USER, read_only=read_only)
        gateway = Gateway()
        gateway.add(scoped, CLOUD_ID)
        return Policy(SiteTable.of([scoped, cloud]), gateway)


CLOUD_TRUTH = Truth(jira="", confluence="/wiki")
CLOUD_PREFIXES = (
    (JIRA, ""),
    (JIRA, ""),
    (CONFLUENCE, "/wiki"),
    (CONFLUENCE, "/wiki"),
    (CONFLUENCE, ""),
    (JIRA, "/wiki"),
)


@st.composite
def places(draw: st.DrawFn) -> Place:
    kind = draw(st.sampled_from(["cloud", "cloud", "scoped", "gateway", "dc-wiki", "dc-jira", "unknown"]))
    if kind == "cloud":
        return Place(kind, "acme.atlassian.net", CLOUD_TRUTH, (*CLOUD_PREFIXES, (CONFLUENCE, "/WIKI")))
    if kind == "scoped":
        return Place(kind, "scoped.atlassian.net", CLOUD_TRUTH, CLOUD_PREFIXES)
    if kind == "gateway":
        prefixes = (
            (JIRA, f"/ex/jira/{CLOUD_ID}"),
            (CONFLUENCE, f"/ex/confluence/{CLOUD_ID}/wiki"),
            (CONFLUENCE, f"/ex/confluence/{CLOUD_ID}"),
            (JIRA, f"/ex/confluence/{CLOUD_ID}"),
            (JIRA, f"/ex/bitbucket/{CLOUD_ID}"),
        )
        return Place(kind, GATEWAY, Truth(gateway=True), prefixes)
    context = draw(st.sampled_from(["", "/jira", "/confluence"]))
    product = {"dc-wiki": CONFLUENCE, "dc-jira": JIRA}.get(kind) or draw(st.sampled_from([JIRA, CONFLUENCE]))
    layout = declared(Product.JIRA if product == JIRA else Product.CONFLUENCE, context or "/")
    truth = Truth(jira=context) if product == JIRA else Truth(confluence=context)
    other = CONFLUENCE if product == JIRA else JIRA
    prefixes = ((product, context), (product, context), (other, context), (product, ""), (CONFLUENCE, "/wiki"))
    return Place(kind, f"{kind}.corp.example", truth, prefixes, None if kind == "unknown" else layout)


@dataclass(frozen=True)
class Request:
    """A generated request: what a client sends, before the proxy judges it."""

    method: str
    path: str
    body: bytes | None


@st.composite
def requests(draw: st.DrawFn, place: Place, routes: list[tuple[str, Route]]) -> Request:
    """A route, mostly under a prefix of its product on this site (right or wrong), with its likely methods,
    parameters and body."""
    product, (route, methods, parameters, fields) = draw(st.sampled_from(routes))
    own = [prefix for owner, prefix in place.prefixes if owner == product]
    prefix = draw(st.sampled_from([*own, *own, *own, *(prefix for _, prefix in place.prefixes)]))
    for name, values in VALUES.items():
        while name in route:
            route = route.replace(name, draw(st.sampled_from(values)), 1)
    method = draw(st.one_of(st.sampled_from(methods), st.sampled_from(methods), st.sampled_from(["GET", *WRITE])))
    chosen = draw(st.lists(st.sampled_from([*parameters, *parameters, *NOISE, *RENDERING]), max_size=4))
    query = "&".join(f"{name}={value.replace(' ', '%20').replace('=', '%3D')}" for name, value in chosen)
    body = None
    if method in ("POST", "PUT"):
        listed = st.lists(st.sampled_from([*fields, *fields, *fields, *EVERY_BODY]), min_size=1, max_size=3)
        odd = st.sampled_from([b"jql=project%3DSEC", b"[]", b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}"])
        objects = listed.map(lambda items: ("{" + ", ".join(items) + "}").encode())
        body = draw(st.one_of(objects, objects, objects, objects, st.none(), odd))
    path = prefix + route + (f"?{query}" if query else "")
    if draw(st.integers(0, 3)) == 0:
        edges = [i for i, c in enumerate(path) if c in "?&"] + [i + 1 for i, c in enumerate(path) if c in "?&"]
        at = draw(st.one_of(st.sampled_from([*edges, len(path)]), st.integers(len(prefix), len(path))))
        path = path[:at] + draw(st.sampled_from(ODD)) + path[at:]
    return Request(method, path, body)


def answer(ref: Ref, truth: Truth) -> str | None:
    """The site's answer to the proxy's lookup: the key the id belongs to, None for an unknown id.

    The lookup must go to the site's own paths for the id's product, or it would ask something else.
    """
    expected = JIRA if ref.kind in (RefKind.ISSUE, RefKind.PROJECT) else CONFLUENCE
    placed = truth.place(lookup_path(ref).partition("?")[0])
    assert placed is not None, lookup_path(ref)
    assert placed[0] == expected, lookup_path(ref)
    table = {
        RefKind.ISSUE: site_model.ISSUES,
        RefKind.PROJECT: site_model.PROJECTS,
        RefKind.CONTENT: site_model.CONTENT,
        RefKind.SPACE: site_model.SPACES,
    }
    return table[ref.kind].get(ref.id)


def sent(
    method: str, path: str, client: Client, body: bytes | None, layout: Layout, truth: Truth
) -> tuple[str, bytes | None] | None:
    """What the boundary lets reach the site, as the hook drives `judge`: (path, body), or None when refused."""
    for offered in (None, body):
        known: dict[Ref, str | None] = {}
        judgement = judge(method, path, client, offered, known, layout)
        while isinstance(judgement, NeedsLookup):
            known.update({ref: answer(ref, truth) for ref in judgement.refs})
            judgement = judge(method, path, client, offered, known, layout)
        if isinstance(judgement, NeedsBody) and offered is None:
            continue
        if isinstance(judgement, Allowed):
            return path, body
        if isinstance(judgement, Rewritten):
            return judgement.path or path, judgement.body if judgement.body is not None else body
        return None
    return None


@pytest.mark.parametrize("focus", FOCUS)
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_request_the_boundary_lets_through_reaches_data_outside_the_bounds(focus, data):
    place = data.draw(places())
    generated = data.draw(requests(place, FOCUS[focus]))
    method, path, body = generated.method, generated.path, generated.body
    headers = data.draw(st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(HEADERS), max_size=2)))
    raw_headers = [(b"host", place.host.encode()), *((n.encode(), v.encode()) for n, v in headers)]
    request = tutils.treq(
        method=method.encode(), host=place.host, port=443, scheme=b"https", authority=b"", path=path.encode(),
        headers=tuple(raw_headers), content=body or b"",
    )  # fmt: skip
    flow = tflow.tflow(req=request)
    flow.client_conn.sni = place.host
    for read_only_site in (False, True):
        policy = place.policy(read_only_site)
        for client in CLIENTS:
            verdict = decide(facts_of(flow, client), policy, TokenHealth(), 0.0)
            if verdict.decision is not Decision.INJECT:
                continue
            assert verdict.site is not None
            host, truth = (GATEWAY, Truth(gateway=True)) if verdict.gateway_path else (place.host, place.truth)
            target = verdict.gateway_path or path
            layout = layout_of(normalize_host(host), verdict.site.layout)
            result = sent(method, target, client, body, layout, truth) if client.bounded else (target, body)
            if result is None:
                continue
            sent_path, sent_body = result
            site = site_model.Site(truth)
            why = (client, method, sent_path, sent_body, headers)
            for product, key in site.reached(method, sent_path, headers, sent_body):
                bound = client.jira_projects if product == JIRA else client.confluence_spaces
                assert bound is None or (key != ALL and key in bound), (product, key, *why)
            if client.read_only or read_only_site:
                assert not site.writes(method, sent_path, headers), why


def test_the_model_sees_the_attacks_of_the_review():
    """The oracle itself: each finding of issue 20 reaches data outside the bounds in the model."""
    cloud, dc_wiki = site_model.Site(Truth(jira="", confluence="/wiki")), site_model.Site(Truth(confluence=""))
    kb = cloud.reached("GET", "/rest/servicedeskapi/servicedesk/1/knowledgebase/article?query=x", [], None)
    assert (CONFLUENCE, ALL) in kb
    assert (JIRA, ALL) in cloud.reached("POST", "/wiki/rest/api/contentbody/convert/view", [], b"{}")
    assert (JIRA, ALL) in cloud.reached("GET", "/wiki/plugins/servlet/applinks/proxy?path=/rest/api/2/search", [], None)
    assert (JIRA, ALL) in cloud.reached("GET", "/wiki/rest/api/content/30001?expand=body.view", [], None)
    assert (CONFLUENCE, "HR") in dc_wiki.reached("GET", "/rest/api/content/30002", [], None)
    assert (CONFLUENCE, ALL) in dc_wiki.reached("GET", "/rest/api/search?cql=x", [], None)
    body = json.dumps({"jql": 'project in ("OPS") AND (x)', "JQL": "project = SEC"}).encode()
    assert (JIRA, ALL) in cloud.reached("POST", "/rest/api/3/search/jql", [], body)
    override = [("X-HTTP-Method-Override", "GET")]
    create = json.dumps({"type": "page", "space": {"key": "ENG"}}).encode()
    assert (CONFLUENCE, ALL) in cloud.reached("POST", "/wiki/rest/api/content", override, create)
    assert cloud.reached("GET", "/rest/api/3/issue/OPS-1", [], None) == {(JIRA, "OPS")}


def test_the_model_sees_the_red_teams_findings():
    """The oracle itself: findings 1, 2 and 4 of the red team after issue 20 reach data outside the bounds."""
    cloud, dc_jira = site_model.Site(CLOUD_TRUTH), site_model.Site(Truth(jira="/jira"))
    macro = "/wiki/rest/api/content/30001/history/1/macro/id/0f5a/convert/"
    for to in ("view", "export_view", "styled_view", "anonymous_export_view", "async/view", "editor2"):
        assert cloud.reached("GET", macro + to, [], None) >= site_model.EVERYTHING, to
    assert cloud.reached("GET", macro + "storage", [], None) == {(CONFLUENCE, "ENG")}
    confined = "jql=project%20in%20%28%22OPS%22%29%20AND%20%28project%3DSEC%29"
    assert (JIRA, ALL) in cloud.reached("GET", f"/rest/api/2/search?maxResults=50#&{confined}", [], None)
    assert (JIRA, ALL) not in cloud.reached("GET", f"/rest/api/2/search?{confined}&maxResults=50#", [], None)
    assert (CONFLUENCE, ALL) in cloud.reached("GET", "/wiki/rest/api/content?limit=100#&spaceKey=ENG", [], None)
    assert (JIRA, ALL) in cloud.reached("GET", f"/rest/api/2/search?maxResults=5;{confined}&jql=x", [], None)
    assert cloud.writes("GET", "/rest/api/3/issue/OPS-1?a=1;_method=DELETE", [])
    assert cloud.reached("GET", "/rest/api/3/issue/OPS-1 HTTP/1.1", [], None) == site_model.EVERYTHING
    for path in [
        "/rest/api/2/issue/OPS-1?expand=renderedFields",
        "/rest/api/2/issue/OPS-1/comment?Expand=renderedBody",
    ]:
        assert (JIRA, ALL) in dc_jira.reached("GET", "/jira" + path, [], None), path
    search = json.dumps({"jql": 'project in ("OPS")', "expand": ["renderedFields"]}).encode()
    assert (JIRA, ALL) in dc_jira.reached("POST", "/jira/rest/api/2/search", [], search)
    assert (JIRA, ALL) in dc_jira.reached("POST", "/jira/rest/api/1.0/render", [], b"{}")
    assert dc_jira.reached("GET", "/jira/rest/api/latest/issue/OPS-1", [], None) == {(JIRA, "OPS")}
    assert not dc_jira.writes("POST", "/jira/rest/api/latest/search", [])

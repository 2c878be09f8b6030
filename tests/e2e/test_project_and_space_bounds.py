"""Jira-project and Confluence-space boundaries, end to end: real proxy, real curl, the TLS stand-in (issue 15).

One proxy run serves three clients side by side: `ops-agent` (Jira project OPS, Confluence
space ENG), `sec-agent` (Jira project SEC, Confluence not bounded) and `free-agent` (no
bounds). The stand-in has projects OPS (id 10001; OPS-1 is 20001) and SEC (10002; SEC-1 is
20002) and spaces ENG (page 30001) and HR (page 30002). The JQL and CQL it received are read
with an independent parser (`support.query_shape`), never compared as strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from support import upstream
from support.adminclient import admin_port, get, samples, value
from support.bounded import Call, clients_toml, start_bounded
from support.proxy import EMAIL, TOKEN_192, Proxy, basic, wait_for
from support.query_shape import confined_parts

SITE = "https://acme.atlassian.net"
PASSWORDS = {"ops-agent": "ops-Pa55word-31c8", "sec-agent": "sec-Pa55word-9d02", "free-agent": "free-Pa55word-5ab7"}
CLIENTS = clients_toml(
    {
        "ops-agent": {"jira_projects": ["OPS"], "confluence_spaces": ["ENG"]},
        "sec-agent": {"jira_projects": ["sec"]},
        "free-agent": {},
    }
)
SITE_CREDENTIALS = basic(EMAIL, TOKEN_192)


@pytest.fixture(scope="module")
def bounded(site, ca_file, confdir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    config = tmp_path_factory.mktemp("boundaries") / "clients.toml"
    admin = {"ATLASSIAN_PROXY_LOG_FORMAT": "json", "ATLASSIAN_PROXY_ADMIN_PORT": "0"}
    running = start_bounded(site, ca_file, confdir, config, CLIENTS, PASSWORDS, **admin)
    yield running
    running.stop()


@pytest.fixture
def ops(bounded, site) -> Call:
    return Call(bounded, site, "ops-agent", PASSWORDS["ops-agent"], SITE)


@pytest.fixture
def sec(bounded, site) -> Call:
    return Call(bounded, site, "sec-agent", PASSWORDS["sec-agent"], SITE)


@pytest.fixture
def free(bounded, site) -> Call:
    return Call(bounded, site, "free-agent", PASSWORDS["free-agent"], SITE)


def refused(call: Call, status: int = 403) -> None:
    """Answered by the proxy itself, naming the client; nothing of the request reached the site."""
    assert call.status == status, call.body
    assert call.body.startswith(f"atlassian-auth-proxy: client {call.client}"), call.body
    assert all("fields=project" in p or "expand=space" in p or "/project/1000" in p for p in call.paths), call.paths


def test_issue_keys_inside_pass_and_outside_are_refused_per_client(ops, sec):
    assert ops("GET", "/rest/api/3/issue/OPS-1").status == 200
    assert ops.paths == ["/rest/api/3/issue/OPS-1"]
    assert ops.seen[0].header("Authorization") == SITE_CREDENTIALS
    refused(ops("GET", "/rest/api/3/issue/SEC-1"))
    assert ops.seen == []
    assert "Jira projects (OPS)" in ops.body
    refused(ops("GET", "/rest/api/2/issue/sec-1/comment"))
    assert sec("GET", "/rest/api/3/issue/SEC-1").status == 200
    refused(sec("GET", "/rest/api/3/issue/OPS-1"))
    assert ops("GET", "/rest/api/3/project/OPS").status == 200
    refused(ops("GET", "/rest/api/3/project/SEC/versions"))


def test_a_numeric_id_is_looked_up_once_with_the_sites_credentials_then_judged(ops, sec):
    assert ops("GET", "/rest/api/3/issue/20001").status == 200
    lookup, request = ops.seen
    assert lookup.path == "/rest/api/3/issue/20001?fields=project"
    assert lookup.header("Authorization") == SITE_CREDENTIALS
    assert lookup.header("Proxy-Authorization") is None
    assert request.path == "/rest/api/3/issue/20001"
    assert ops("GET", "/rest/api/3/issue/20001/comment").paths == ["/rest/api/3/issue/20001/comment"], "cached"
    refused(sec("GET", "/rest/api/3/issue/20001"))
    assert sec.seen == [], "the cache is the site's: another client's lookup answers too"
    refused(ops("GET", "/rest/api/3/issue/20002"))
    assert ops.paths == ["/rest/api/3/issue/20002?fields=project"]
    assert "SEC" not in ops.body, "a refusal reveals nothing the lookup learned"
    refused(ops("GET", "/rest/api/3/project/10002"))


def test_an_unknown_id_is_refused_like_one_elsewhere_and_a_failed_lookup_refuses_with_502(ops):
    refused(ops("GET", "/rest/api/3/issue/29999"))
    unknown = ops.body.replace("29999", "N")
    refused(ops("GET", "/rest/api/3/issue/20002"))
    assert ops.body.replace("20002", "N") == unknown
    refused(ops("GET", f"/rest/api/3/issue/{upstream.FAILING_ID}"), 502)
    assert ops.paths == [f"/rest/api/3/issue/{upstream.FAILING_ID}?fields=project"]


def test_a_get_search_is_confined_and_keeps_its_order_by_last(ops, site):
    jql = quote("project = SEC OR assignee = currentUser() ORDER BY created DESC")
    assert ops("GET", f"/rest/api/3/search/jql?maxResults=3&jql={jql}").status == 200
    keys, condition, ordering = confined_parts(site.record.queries[-1], "project")
    assert keys == ["OPS"]
    assert condition == "project = SEC OR assignee = currentUser()"
    assert ordering == ["created", "DESC"]
    assert "maxResults=3" in ops.paths[0]


def test_a_search_without_jql_gets_the_restriction_alone(sec, site):
    assert sec("GET", "/rest/api/2/search?fields=key").status == 200
    assert confined_parts(site.record.queries[-1], "project") == (["SEC"], None, [])


def test_a_post_search_is_confined_and_every_other_body_field_kept(ops, site):
    body = {"jql": "text ~ 'outage' ORDER BY key", "maxResults": 2, "fields": ["summary"], "nextPageToken": "t"}
    assert ops("POST", "/rest/api/3/search/jql", body).status == 200
    sent = dict(site.record.posted[-1])
    assert confined_parts(sent.pop("jql"), "project") == (["OPS"], "text ~ 'outage'", ["key"])
    assert sent == {"maxResults": 2, "fields": ["summary"], "nextPageToken": "t"}


@pytest.mark.parametrize(
    "jql",
    [
        "project = OPS) OR (project = SEC",
        "project = OPS) OR project = SEC OR (key = X",
        'summary ~ "x" ) OR (project = SEC',
        "summary ~ x\\) OR project = SEC OR summary ~ \\(y",
        "x = 1 ORDER BY key) OR (project = SEC",
        'summary ~ "unclosed',
    ],
)
def test_a_jql_that_would_escape_the_parentheses_is_refused_with_400_by_get_and_post(ops, jql):
    refused(ops("GET", f"/rest/api/3/search?jql={quote(jql)}"), 400)
    assert ops.seen == []
    refused(ops("POST", "/rest/api/3/search/jql", {"jql": jql}), 400)
    assert ops.seen == []


def test_issue_creation_is_judged_by_its_project(ops, site):
    issue = {"fields": {"project": {"key": "OPS"}, "summary": "inside", "issuetype": {"name": "Task"}}}
    assert ops("POST", "/rest/api/3/issue", issue).status == 201
    assert site.record.posted[-1] == issue
    refused(ops("POST", "/rest/api/3/issue", {"fields": {"project": {"key": "SEC"}, "summary": "outside"}}))
    assert ops.seen == []
    refused(ops("POST", "/rest/api/3/issue", {"fields": {"project": {"id": "10002"}, "summary": "outside by id"}}))
    assert [seen.method for seen in ops.seen] in ([], ["GET"]), "at most the lookup (unless cached) reached the site"
    bulk = {"issueUpdates": [issue, {"fields": {"project": {"key": "SEC"}, "summary": "smuggled"}}]}
    refused(ops("POST", "/rest/api/3/issue/bulk", bulk))
    assert ops.seen == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/rest/api/3/issue/picker?query=secret"),
        ("GET", "/rest/api/3/filter/search"),
        ("GET", "/rest/api/3/dashboard"),
        ("POST", "/rest/api/3/issueLink"),
        ("GET", "/rest/api/3/project/search"),
        ("POST", "/gateway/api/graphql"),
        ("GET", "/rest/api/3/issue/OPS-1/../../search?jql="),
        ("GET", "/rest/api/3/issue/%2e%2e/SEC-1"),
        ("GET", "/rest/api/3/issue/OPS-1;x=1/../SEC-1"),
    ],
)
def test_a_route_that_can_cross_projects_or_cannot_be_judged_is_refused(ops, method, path):
    call = ops(method, path, {} if method == "POST" else None)
    refused(call, 400 if any(odd in path for odd in ("..", ";", "%2e")) else 403)
    assert call.seen == []


def test_confluence_pages_by_id_are_judged_by_their_space_and_cql_is_confined(ops, site):
    assert ops("GET", "/wiki/rest/api/content/30001").status == 200
    assert ops.paths == ["/wiki/rest/api/content/30001?expand=space", "/wiki/rest/api/content/30001"]
    refused(ops("GET", "/wiki/api/v2/pages/30002"))
    assert ops.paths == ["/wiki/rest/api/content/30002?expand=space"]
    assert "HR" not in ops.body
    cql = quote("type = page OR space = HR")
    assert ops("GET", f"/wiki/rest/api/search?cql={cql}&limit=5").status == 200
    assert confined_parts(site.record.queries[-1], "space") == (["ENG"], "type = page OR space = HR", [])
    refused(ops("GET", f"/wiki/rest/api/search?cql={quote('space = HR) OR (type = page')}"), 400)
    refused(ops("POST", "/wiki/rest/api/content", {"type": "page", "space": {"key": "HR"}, "title": "x"}))
    assert ops.seen == []
    refused(ops("GET", "/wiki/rest/api/space"))


def test_one_product_bounded_leaves_the_other_alone_and_no_bound_leaves_both(sec, free, site):
    assert sec("GET", "/wiki/rest/api/content/30002").paths == ["/wiki/rest/api/content/30002"]
    assert sec.status == 200
    cql = "space = HR"
    assert sec("GET", f"/wiki/rest/api/search?cql={quote(cql)}").status == 200
    assert site.record.queries[-1] == cql
    assert free("GET", "/rest/api/3/issue/SEC-1").status == 200
    assert free("GET", "/rest/api/3/filter/search").paths == ["/rest/api/3/filter/search"]


def test_a_body_judged_route_needs_a_bounded_length(ops):
    chunked = ops("POST", "/rest/api/3/search/jql", {"jql": ""}, "-H", "Transfer-Encoding: chunked")
    refused(chunked, 413)
    assert chunked.seen == []


def refused_count(proxy: Proxy) -> float:
    _, _, text = get(admin_port(proxy.output), "/metrics")
    labels = {"site": "default", "decision": "refused", "status_class": "4xx", "client": "ops-agent"}
    return value(samples(text), "atlassian_proxy_requests_total", **labels)


def test_refusals_are_counted_as_refused_and_logged_with_the_clients_name(bounded, ops):
    before = refused_count(bounded)
    refused(ops("GET", "/rest/api/3/issue/SEC-1/watchers"))
    wait_for(lambda: "/rest/api/3/issue/SEC-1/watchers" in bounded.output, what="the log line")
    line = next(json.loads(x) for x in bounded.lines if "/rest/api/3/issue/SEC-1/watchers" in x and x.startswith("{"))
    assert (line["user"], line["decision"], line["status"]) == ("ops-agent", "refused-out-of-bounds", 403)
    assert refused_count(bounded) == before + 1
    assert TOKEN_192 not in bounded.output
    assert SITE_CREDENTIALS not in bounded.output

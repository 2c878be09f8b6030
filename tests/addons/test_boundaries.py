"""The boundaries hook with mitmproxy's test flows: refusals drop the credentials, bodies wait, ids are looked up once.

The lookup is replaced by a recording fake here; tests/test_boundaries.py proves the real one
against the TLS stand-in.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils
from pydantic import SecretStr

from proxy_addon.addons import boundaries as hook
from proxy_addon.addons.boundaries import Boundaries, KeyCache
from proxy_addon.credentials.identity import Reach, Unreachable
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.boundaries import MAX_BODY, Kind, Ref
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision, FlowRecord

from support.query_shape import confined_parts

ACME = "acme.atlassian.net"
CREDENTIALS = Credentials.of("me@example.test", SecretStr("tok3n-for-hook-tests"), "test")
INJECTED = CREDENTIALS.authorization.get_secret_value()
LOGIN = ProxyLogin.parse("agent:Pr0xy-pa55word-9f3e")
CLIENTS = ClientTable.of(
    [
        Client("ops-agent", LOGIN, jira_projects=frozenset({"OPS"}), confluence_spaces=frozenset({"ENG"})),
        Client("free", LOGIN),
    ]
)
ANSWERS = {
    "/rest/api/3/issue/20001?fields=project": (200, {"fields": {"project": {"key": "OPS"}}}),
    "/rest/api/3/issue/20002?fields=project": (200, {"fields": {"project": {"key": "SEC"}}}),
    "/rest/api/3/project/10002": (200, {"key": "SEC"}),
    "/rest/api/3/issue/29999?fields=project": (404, {}),
    "/rest/api/3/issue/20500?fields=project": (503, {}),
}


class FakeSite:
    """Stands in for `identity.look_up`: answers from ANSWERS and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int, str, str]] = []
        self.unreachable = False

    def __call__(self, host, port, path, credentials, reach):
        self.asked.append((host, port, path, credentials.authorization.get_secret_value()))
        if self.unreachable:
            raise Unreachable(f"cannot reach {host}: connection refused")
        return ANSWERS[path]


@pytest.fixture
def site(monkeypatch) -> FakeSite:
    fake = FakeSite()
    monkeypatch.setattr(hook, "look_up", fake)
    return fake


def addon() -> Boundaries:
    boundaries = Boundaries({"acme": CREDENTIALS})
    boundaries.use(CLIENTS, Reach())
    return boundaries


def flow(method: str, path: str, user: str | None = "ops-agent", body: bytes | None = None) -> http.HTTPFlow:
    headers = [(b"host", ACME.encode()), (b"authorization", INJECTED.encode())]
    if body is not None:
        headers.append((b"content-length", str(len(body)).encode()))
    request = tutils.treq(
        method=method.encode(), host=ACME, port=443, scheme=b"https", authority=b"", path=path.encode(),
        headers=tuple(headers), content=body or b"",
    )  # fmt: skip
    f = tflow.tflow(req=request)
    record = FlowRecord.of(f.metadata)
    record.decision, record.user, record.site = Decision.INJECT, user, "acme"
    return f


def run(result) -> None:
    if result is not None:
        asyncio.run(result)


def refused(f: http.HTTPFlow, status: int, decision: Decision) -> bool:
    return (
        f.response is not None
        and f.response.status_code == status
        and FlowRecord.of(f.metadata).decision is decision
        and "authorization" not in f.request.headers
    )


def test_a_request_inside_the_bounds_goes_on_untouched(site):
    with taddons.context():
        f = flow("GET", "/rest/api/3/issue/OPS-1")
        assert addon().requestheaders(f) is None
        assert f.response is None
        assert f.request.headers["authorization"] == INJECTED


def test_a_request_outside_is_answered_locally_without_the_credentials(site):
    with taddons.context():
        f = flow("GET", "/rest/api/3/issue/SEC-1")
        assert addon().requestheaders(f) is None
        assert refused(f, 403, Decision.OUT_OF_BOUNDS)
        assert b"ops-agent" in f.response.content
        assert not site.asked


@pytest.mark.parametrize(
    ("user", "decision"),
    [("free", Decision.INJECT), (None, Decision.INJECT), ("nobody", Decision.INJECT), ("ops-agent", Decision.PASS)],
)
def test_unbounded_clients_and_uncredentialed_requests_are_not_judged(site, user, decision):
    with taddons.context():
        f = flow("GET", "/rest/api/3/issue/SEC-1", user)
        FlowRecord.of(f.metadata).decision = decision
        assert addon().requestheaders(f) is None
        assert f.response is None


def test_an_id_is_looked_up_once_with_the_sites_credentials_then_answered_from_the_cache(site):
    boundaries = addon()
    with taddons.context():
        first = flow("GET", "/rest/api/3/issue/20001")
        run(boundaries.requestheaders(first))
        assert first.response is None
        assert site.asked == [(ACME, 443, "/rest/api/3/issue/20001?fields=project", INJECTED)]
        again = flow("GET", "/rest/api/3/issue/20001/comment")
        assert boundaries.requestheaders(again) is None, "a cached id needs no waiting"
        assert again.response is None
        other = flow("GET", "/rest/api/3/issue/20002")
        run(boundaries.requestheaders(other))
        assert refused(other, 403, Decision.OUT_OF_BOUNDS)
        assert b"SEC" not in other.response.content
        assert len(site.asked) == 2


def test_an_unknown_id_is_refused_and_remembered(site):
    boundaries = addon()
    with taddons.context():
        for _ in range(2):
            f = flow("GET", "/rest/api/3/issue/29999")
            run(boundaries.requestheaders(f))
            assert refused(f, 403, Decision.OUT_OF_BOUNDS)
        assert len(site.asked) == 1


@pytest.mark.parametrize("failure", ["unreachable", "503"])
def test_a_failed_lookup_refuses_and_is_not_remembered(site, failure):
    boundaries = addon()
    path = "/rest/api/3/issue/20001" if failure == "unreachable" else "/rest/api/3/issue/20500"
    site.unreachable = failure == "unreachable"
    with taddons.context():
        for _ in range(2):
            f = flow("GET", path)
            run(boundaries.requestheaders(f))
            assert refused(f, 502, Decision.LOOKUP_FAILED)
        assert len(site.asked) == 2


def test_a_get_search_is_sent_confined(site):
    with taddons.context():
        f = flow("GET", "/rest/api/3/search/jql?jql=project%20%3D%20SEC&maxResults=1")
        assert addon().requestheaders(f) is None
        assert f.response is None
        (jql,) = parse_qs(urlsplit(f.request.path).query)["jql"]
        assert confined_parts(jql, "project") == (["OPS"], "project = SEC", [])


def test_a_post_search_is_buffered_then_sent_with_the_confined_body_and_its_length(site):
    boundaries = addon()
    body = json.dumps({"jql": "text ~ x ORDER BY key", "fields": ["key"]}).encode()
    with taddons.context():
        f = flow("POST", "/rest/api/3/search/jql", body=body)
        f.request.stream = True
        assert boundaries.requestheaders(f) is None
        assert f.response is None
        assert f.request.stream is False
        assert boundaries.request(f) is None
        sent = json.loads(f.request.content)
        assert confined_parts(sent["jql"], "project") == (["OPS"], "text ~ x", ["key"])
        assert sent["fields"] == ["key"]
        assert f.request.headers["content-length"] == str(len(f.request.content))


def test_a_body_judged_route_without_a_length_or_over_the_cap_gets_413(site):
    boundaries = addon()
    with taddons.context():
        chunked = flow("POST", "/rest/api/3/issue", body=b"{}")
        del chunked.request.headers["content-length"]
        chunked.request.headers["transfer-encoding"] = "chunked"
        boundaries.requestheaders(chunked)
        assert refused(chunked, 413, Decision.BODY_TOO_LARGE)
        large = flow("POST", "/rest/api/3/issue", body=b"{}")
        large.request.headers["content-length"] = str(MAX_BODY + 1)
        boundaries.requestheaders(large)
        assert refused(large, 413, Decision.BODY_TOO_LARGE)


def test_an_issue_created_in_another_project_by_id_is_refused_in_the_request_hook(site):
    boundaries = addon()
    body = json.dumps({"fields": {"project": {"id": "10002"}, "summary": "s"}}).encode()
    with taddons.context():
        f = flow("POST", "/rest/api/3/issue", body=body)
        assert boundaries.requestheaders(f) is None
        assert f.response is None
        run(boundaries.request(f))
        assert refused(f, 403, Decision.OUT_OF_BOUNDS)
        assert site.asked[0][2] == "/rest/api/3/project/10002"


def test_the_request_hook_judges_only_flows_whose_body_it_asked_for(site):
    boundaries = addon()
    with taddons.context():
        f = flow("GET", "/rest/api/3/search/jql?jql=x")
        boundaries.requestheaders(f)
        once = f.request.path
        assert boundaries.request(f) is None
        assert f.request.path == once, "a confined query is not confined twice"


def test_the_id_cache_is_per_host_and_forgets_after_its_time():
    ref = Ref(Kind.ISSUE, "20001")
    cache = KeyCache()
    cache.put(("default", "acme.atlassian.net", 443), ref, "OPS")
    assert cache.known(("default", "acme.atlassian.net", 443), frozenset({ref})) == {ref: "OPS"}
    assert cache.known(("default", "beta.atlassian.net", 443), frozenset({ref})) is None, "another host's issue"
    gateway = Ref(Kind.ISSUE, "20001", "/ex/jira/c0ffee00-1234-4abc-9def-00000000acme")
    assert cache.known(("default", "acme.atlassian.net", 443), frozenset({gateway})) is None
    stale = KeyCache(ttl=0)
    stale.put(("default", "acme.atlassian.net", 443), ref, "OPS")
    assert stale.missing(("default", "acme.atlassian.net", 443), frozenset({ref})) == [ref], "it may have moved"

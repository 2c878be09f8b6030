"""The boundaries hook with mitmproxy's test flows: refusals drop the credentials, bodies wait, ids are looked up once.

The lookup is replaced by a recording fake here; tests/e2e/test_project_and_space_bounds.py proves the real one
against the TLS stand-in.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils
from pydantic import SecretStr

from proxy_addon.addons.boundaries import LOOKUPS_AT_ONCE, Boundaries, KeyCache
from proxy_addon.credentials import outbound as outbound_module
from proxy_addon.credentials.http_client import Unreachable
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.boundaries.body import MAX_BODY
from proxy_addon.policy.boundaries.lookups import Ref, RefKind
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.rate import ClientRates
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import FIRST_PAUSE, TokenHealth

from support.prepared import prepared
from support.query_shape import confined_parts

ACME = "acme.atlassian.net"
SITE = Site("acme", (HostPattern.parse(ACME),), "me@example.test")
CREDENTIALS = Credentials.of("me@example.test", SecretStr("tok3n-for-hook-tests"), "test")
INJECTED = CREDENTIALS.authorization.get_secret_value()
LOGIN = ProxyLogin.parse("agent:Pr0xy-pa55word-9f3e")
CLIENTS = ClientTable.of(
    [
        Client("ops-agent", LOGIN, jira_projects=frozenset({"OPS"}), confluence_spaces=frozenset({"ENG"})),
        Client("free", LOGIN),
        Client("metered", LOGIN, jira_projects=frozenset({"OPS"}), requests_per_minute=3),
    ]
)
ANSWERS = {
    "/rest/api/3/issue/20001?fields=project": (200, {"fields": {"project": {"key": "OPS"}}}),
    "/rest/api/3/issue/20002?fields=project": (200, {"fields": {"project": {"key": "SEC"}}}),
    "/rest/api/3/project/10002": (200, {"key": "SEC"}),
    "/rest/api/3/issue/29999?fields=project": (404, {}),
    "/rest/api/3/issue/20500?fields=project": (503, {}),
    "/rest/api/3/issue/20401?fields=project": (401, {}),
    "/rest/api/3/myself": (200, {"accountId": "me"}),
}
MYSELF = (ACME, 443, "/rest/api/3/myself", INJECTED)


class FakeSite:
    """Stands in for `http_client.fetch`: answers from ANSWERS and remembers what it was asked.

    `revoked`: every answer is the 401 of a revoked token.
    """

    def __init__(self) -> None:
        self.asked: list[tuple[str, int, str, str]] = []
        self.unreachable = False
        self.revoked = False

    def __call__(self, host, port, path, credentials, reach):
        self.asked.append((host, port, path, credentials.authorization.get_secret_value()))
        if self.unreachable:
            raise Unreachable(f"cannot reach {host}: connection refused")
        status, document = (401, {}) if self.revoked else ANSWERS.get(path, (404, {}))
        return status, {}, json.dumps(document).encode()

    @property
    def paths(self) -> list[str]:
        return [path for _, _, path, _ in self.asked]


@pytest.fixture
def site(monkeypatch) -> FakeSite:
    fake = FakeSite()
    monkeypatch.setattr(outbound_module, "fetch", fake)
    return fake


def addon(rates: ClientRates | None = None) -> Boundaries:
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    credentials.adopt(SITE, CREDENTIALS)
    outbound = Outbound(health, credentials)
    configured = prepared([SITE], clients=CLIENTS, rates=rates or ClientRates())
    outbound.use(configured.policy, configured.reach, outbound.timeout)
    boundaries = Boundaries(outbound)
    boundaries.use(configured)
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
    record.decision, record.user, record.site, record.host = Decision.INJECT, user, "acme", ACME
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
    ref = Ref(RefKind.ISSUE, "20001")
    cache = KeyCache()
    cache.put(("default", "acme.atlassian.net", 443), ref, "OPS")
    assert cache.known(("default", "acme.atlassian.net", 443), frozenset({ref})) == {ref: "OPS"}
    assert cache.known(("default", "beta.atlassian.net", 443), frozenset({ref})) is None, "another host's issue"
    gateway = Ref(RefKind.ISSUE, "20001", "/ex/jira/c0ffee00-1234-4abc-9def-00000000acme")
    assert cache.known(("default", "acme.atlassian.net", 443), frozenset({gateway})) is None
    stale = KeyCache(ttl=0)
    stale.put(("default", "acme.atlassian.net", 443), ref, "OPS")
    assert stale.missing(("default", "acme.atlassian.net", 443), frozenset({ref})) == [ref], "it may have moved"


def test_an_unknown_id_is_remembered_for_a_shorter_while_than_a_known_one():
    known, unknown, place = Ref(RefKind.ISSUE, "20001"), Ref(RefKind.ISSUE, "29999"), ("default", ACME, 443)
    cache = KeyCache(ttl=300.0, unknown_ttl=0.0)
    cache.put(place, known, "OPS")
    cache.put(place, unknown, None)
    assert cache.missing(place, frozenset({known, unknown})) == [unknown], "the site may know it by now"


def pause(boundaries: Boundaries, ago: float = 0.0) -> None:
    """The site rejected the token `ago` seconds ago (more than FIRST_PAUSE: the pause is over)."""
    health = boundaries.outbound.health
    health.judge("acme", ACME, health.stamp(), "HTTP 401", time.monotonic() - ago)


def bulk(*project_ids: str) -> bytes:
    issues = [{"fields": {"project": {"id": i}, "summary": "s"}} for i in project_ids]
    return json.dumps({"issueUpdates": issues}).encode()


def test_nothing_is_looked_up_during_a_pause_and_the_client_gets_the_local_401(site):
    boundaries = addon()
    pause(boundaries)
    with taddons.context():
        f = flow("GET", "/rest/api/3/issue/20001")
        run(boundaries.requestheaders(f))
        assert refused(f, 401, Decision.BACKED_OFF)
        assert b"token_rejected" in f.response.content
        assert f.response.headers["retry-after"] == str(round(FIRST_PAUSE))
    assert site.asked == []


def test_a_lookups_401_is_confirmed_like_any_other_and_a_rejection_starts_the_pause(site, caplog):
    boundaries = addon()
    site.revoked = True
    with taddons.context():
        first = flow("GET", "/rest/api/3/issue/20001")
        run(boundaries.requestheaders(first))
        assert refused(first, 401, Decision.BACKED_OFF), "the client gets the paused request's local 401"
        assert site.paths == ["/rest/api/3/issue/20001?fields=project", "/rest/api/3/myself"]
        assert boundaries.outbound.health.backing_off
        assert "rejected the API token of site acme" in caplog.text
        second = flow("GET", "/rest/api/3/issue/20002")
        run(boundaries.requestheaders(second))
        assert refused(second, 401, Decision.BACKED_OFF)
        assert len(site.asked) == 2, "nothing more was sent"


def test_a_lookups_401_the_identity_page_contradicts_is_a_failed_lookup_and_pauses_nothing(site):
    boundaries = addon()
    with taddons.context():
        f = flow("GET", "/rest/api/3/issue/20401")
        run(boundaries.requestheaders(f))
        assert refused(f, 502, Decision.LOOKUP_FAILED)
    assert site.paths == ["/rest/api/3/issue/20401?fields=project", "/rest/api/3/myself"]
    assert not boundaries.outbound.health.backing_off


def test_after_a_pause_the_lookup_waits_for_the_proxys_own_check(site):
    boundaries = addon()
    pause(boundaries, ago=FIRST_PAUSE + 1)
    with taddons.context():
        f = flow("GET", "/rest/api/3/issue/20001")
        run(boundaries.requestheaders(f))
        assert f.response is None
    assert site.paths == ["/rest/api/3/myself", "/rest/api/3/issue/20001?fields=project"]
    assert not boundaries.outbound.health.backing_off


def test_lookups_count_against_the_clients_requests_per_minute_in_the_same_window(site):
    rates = ClientRates()
    boundaries = addon(rates)
    with taddons.context():
        assert rates.admit("metered", 3, time.monotonic()) is None, "ClientRate counted the request itself"
        three = flow("POST", "/rest/api/3/issue/bulk", "metered", bulk("10002", "10003", "10004"))
        assert boundaries.requestheaders(three) is None
        run(boundaries.request(three))
        assert refused(three, 429, Decision.RATE_LIMITED), "1 + 3 is more than 3 a minute"
        assert int(three.response.headers["retry-after"]) >= 1
        assert b"client metered" in three.response.content
        assert site.asked == [], "nothing was sent"
        two = flow("POST", "/rest/api/3/issue/bulk", "metered", bulk("10002", "10003"))
        boundaries.requestheaders(two)
        run(boundaries.request(two))
        assert refused(two, 403, Decision.OUT_OF_BOUNDS)
        assert len(site.asked) == 2
        assert rates.admit("metered", 3, time.monotonic()) is not None, "the window is full: 1 request, 2 lookups"


def test_at_most_four_lookups_of_a_client_run_at_once():
    boundaries = addon()
    asked: list[str] = []
    release = asyncio.Event()

    async def get(site, host, to, path):
        asked.append(path)
        await release.wait()
        return 404, {}

    boundaries.outbound.get = get  # type: ignore[method-assign]
    ids = [str(10010 + i) for i in range(2 * LOOKUPS_AT_ONCE)]
    with taddons.context():
        f = flow("POST", "/rest/api/3/issue/bulk", body=bulk(*ids))
        boundaries.requestheaders(f)

        async def lookups_in_flight() -> int:
            judging = asyncio.ensure_future(boundaries.request(f))
            for _ in range(50):  # let every lookup that may start, start
                await asyncio.sleep(0)
            started = len(asked)
            release.set()
            await judging
            return started

        assert asyncio.run(lookups_in_flight()) == LOOKUPS_AT_ONCE
        assert refused(f, 403, Decision.OUT_OF_BOUNDS)
    assert len(asked) == len(ids), "the rest waited, then went"


def test_a_body_judged_request_is_held_from_its_head_until_the_request_hook_judged_it():
    boundaries = addon()
    with taddons.context():
        f = flow("POST", "/rest/api/3/search/jql", body=json.dumps({"jql": "project = SEC"}).encode())
        f.request.stream = True
        boundaries.requestheaders(f)
        assert FlowRecord.of(f.metadata).held
        assert f.request.stream is False
        run(boundaries.request(f))
        assert not FlowRecord.of(f.metadata).held, "judged: the wire may send it"
        unjudged = flow("GET", "/rest/api/3/issue/OPS-1")
        boundaries.requestheaders(unjudged)
        assert not FlowRecord.of(unjudged.metadata).held, "a request judged by its head is never held"

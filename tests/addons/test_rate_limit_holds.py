"""The holds' hooks: a held credentialed request gets the local 429 (Retry-After, the site's reason, the scope);
the site's 429 starts a hold and reaches its client as it is; nothing else is touched.

tests/e2e/test_rate_limits.py drives the same through the real proxy; tests/runtime/test_root.py chains it
right after the injector."""

from __future__ import annotations

import json

from mitmproxy import http
from mitmproxy.test import tflow, tutils
from prometheus_client import CollectorRegistry, generate_latest

from proxy_addon.addons.rate_limit_holds import RateLimitHolds
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.sites import Site
from proxy_addon.state.holds import SharedHolds
from proxy_addon.state.store import Shared, Store

from support.adminclient import samples, value
from support.fake_store import FakeRemote, run, shared_store
from support.prepared import prepared

ACME = "acme.atlassian.net"
SITE = Site("acme", (HostPattern.parse(ACME),), "me@acme.example")


def flow(method: str = "GET", path: str = "/rest/api/3/search/jql", decision: Decision = Decision.INJECT):
    f = tflow.tflow(req=tutils.treq(method=method.encode(), host=ACME, port=443, path=path.encode()))
    record = FlowRecord.of(f.metadata)
    record.decision, record.site, record.host, record.stamp = decision, "acme", ACME, 0
    return f


def answer(f: http.HTTPFlow, status: int, headers: dict[str, str]) -> None:
    f.response = http.Response.make(status, b'{"message": "Rate limit exceeded."}', headers)


def holding(store: Store | None = None) -> tuple[RateLimitHolds, CollectorRegistry]:
    registry = CollectorRegistry()
    addon = RateLimitHolds(SharedHolds(store or Store()), registry)
    addon.use(prepared([SITE]))
    return addon, registry


def test_the_sites_429_starts_a_hold_and_goes_to_its_client_as_it_is():
    addon, registry = holding()
    first = flow()
    headers = {"Retry-After": "7", "RateLimit-Reason": "jira-burst-based", "X-RateLimit-Remaining": "0"}
    answer(first, 429, headers)
    assert addon.responseheaders(first) is None
    assert first.response.headers["retry-after"] == "7"
    assert first.response.content == b'{"message": "Rate limit exceeded."}'
    held = flow(path="/rest/api/3/search/jql?jql=project%3DOPS")
    addon.requestheaders(held)
    assert held.response is not None
    assert held.response.status_code == 429
    assert held.response.headers["retry-after"] == "7"
    assert held.response.headers["ratelimit-reason"] == "jira-burst-based"
    body = json.loads(held.response.content)
    assert body["error"] == "rate_limited"
    assert "site acme (acme.atlassian.net)" in body["message"]
    assert "(scope: endpoint GET /rest/api/3/search/jql)" in body["message"]
    assert FlowRecord.of(held.metadata).decision is Decision.RATE_LIMIT_HOLD
    assert "authorization" not in held.request.headers
    other = flow(path="/rest/api/3/myself")
    addon.requestheaders(other)
    assert other.response is None
    metrics = samples(generate_latest(registry).decode())
    assert value(metrics, "atlassian_proxy_rate_limit_holds_total", site="acme", scope="endpoint") == 1
    assert value(metrics, "atlassian_proxy_rate_limit_holds_total", site="acme", scope="site") == 0
    assert value(metrics, "atlassian_proxy_rate_limit_held", site="acme") == 1


def test_holds_the_store_tells_for_sites_unknown_here_make_no_metrics_labels():
    store, _ = shared_store()
    _, registry = holding(store)
    for n in range(3):
        store.deliver("hold", {"name": f"n{n}", "site": f"elsewhere-{n}", "scope": "site", "ms": 30_000})
    exposed = generate_latest(registry).decode()
    assert "elsewhere" not in exposed
    assert value(samples(exposed), "atlassian_proxy_rate_limit_held", site="acme") == 0


def test_a_local_429_copies_no_reason_the_site_did_not_give():
    addon, _ = holding()
    first = flow()
    answer(first, 429, {})
    addon.responseheaders(first)
    held = flow("POST", "/rest/api/3/issue")
    addon.requestheaders(held)
    assert held.response.status_code == 429
    assert "ratelimit-reason" not in held.response.headers
    assert held.response.headers["retry-after"] == "5"
    assert "(scope: site)" in json.loads(held.response.content)["message"]


def test_only_credentialed_requests_are_held_and_only_answers_to_a_credential_start_holds():
    addon, _ = holding()
    untouched = flow(decision=Decision.PASS)
    answer(untouched, 429, {"Retry-After": "9"})
    addon.responseheaders(untouched)
    never_sent = flow()
    FlowRecord.of(never_sent.metadata).stamp = None
    answer(never_sent, 429, {"Retry-After": "9"})
    addon.responseheaders(never_sent)
    assert not addon.holds.any
    answer(flow_ := flow(), 429, {"Retry-After": "9"})
    addon.responseheaders(flow_)
    for decision in (Decision.PASS, Decision.CLEARTEXT):
        f = flow(decision=decision)
        addon.requestheaders(f)
        assert f.response is None


def test_with_a_store_the_429_reaches_its_client_once_the_hold_is_told():
    store, remote = shared_store(FakeRemote(shared=Shared(9.0, 1)))
    addon, _ = holding(store)
    first = flow()
    answer(first, 429, {"RateLimit-Reason": "jira-quota-global-based"})
    run(addon.responseheaders(first))
    assert [what for what, _, _ in remote.told] == ["hold"]
    held = flow(path="/wiki/api/v2/pages")
    addon.requestheaders(held)
    assert held.response.headers["retry-after"] == "9"


def test_a_success_after_hint_less_429s_starts_the_doubling_again():
    addon, _ = holding()
    first = flow()
    answer(first, 429, {})
    addon.responseheaders(first)
    addon.holds.table.holds.clear()  # the hold is over
    ok = flow()
    answer(ok, 200, {})
    addon.responseheaders(ok)
    again = flow()
    answer(again, 429, {})
    addon.responseheaders(again)
    check = addon.holds.check("acme", ACME, "GET", "/")
    assert check is not None
    assert check.retry_after == 5


def test_a_hold_that_began_after_the_head_arrived_answers_the_request_before_it_is_sent():
    addon, _ = holding()
    late = flow("POST", "/rest/api/3/issue")
    addon.requestheaders(late)
    assert late.response is None
    first = flow()
    answer(first, 429, {"Retry-After": "3"})
    addon.responseheaders(first)
    addon.request(late)
    assert late.response is not None
    assert late.response.status_code == 429

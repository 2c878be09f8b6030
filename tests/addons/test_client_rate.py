"""The per-client rate limit's hook: a client past its requests per minute gets the local 429; no other is counted.

tests/runtime/test_root.py runs it in the root's chain, after the login that names the client.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.test import taddons, tflow

from proxy_addon.addons.client_rate import ClientRate
from proxy_addon.addons.prepared import Prepared
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision, FlowRecord

CLIENTS = ClientTable.of(
    [
        Client("agent-a", ProxyLogin.of("agent-a", "Pr0xy-pa55word-a")),
        Client("agent-c", ProxyLogin.of("agent-c", "Pr0xy-pa55word-c"), requests_per_minute=2),
    ]
)


def request(user: str | None) -> http.HTTPFlow:
    f = tflow.tflow()
    FlowRecord.of(f.metadata).user = user
    return f


def test_without_clients_or_a_limit_nothing_is_counted():
    addon = ClientRate()
    with taddons.context(addon):
        for _ in range(5):
            f = request("agent-c")
            addon.requestheaders(f)
            assert f.response is None
        addon.use(Prepared(clients=CLIENTS))
        for user in ("agent-a", None):
            for _ in range(5):
                f = request(user)
                addon.requestheaders(f)
                assert f.response is None


def test_past_its_limit_a_client_gets_429_with_retry_after_and_its_window_is_its_own():
    addon = ClientRate()
    addon.use(Prepared(clients=CLIENTS))
    with taddons.context(addon):
        mine = [request("agent-c") for _ in range(3)]
        for f in mine:
            addon.requestheaders(f)
        other = request("agent-a")
        addon.requestheaders(other)
    assert [f.response is None for f in mine] == [True, True, False]
    refused = mine[2].response
    assert refused is not None
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert FlowRecord.of(mine[2].metadata).decision is Decision.RATE_LIMITED
    assert other.response is None


def test_an_answered_request_is_not_counted():
    addon = ClientRate()
    addon.use(Prepared(clients=CLIENTS))
    with taddons.context(addon):
        for _ in range(3):
            answered = request("agent-c")
            answered.response = http.Response.make(407)
            addon.requestheaders(answered)
        f = request("agent-c")
        addon.requestheaders(f)
    assert f.response is None, "the three answered before it left its window empty"

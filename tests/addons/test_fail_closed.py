"""The whole hook chain, through mitmproxy's own dispatch: whichever hook of ours raises, nothing leaks.

mitmproxy calls each hook on the root addon and its children inside one error handler, so a
child that raises used to skip every later child. Here each generated request runs through the
real `AddonManager` with one hook made to raise (before or after doing its work); a request
counts as forwarded when, as in mitmproxy's HTTP layer, no hook answered or killed it.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy.proxy.layers.http import HttpConnectHook, HttpRequestHeadersHook, HttpRequestHook
from mitmproxy.test import taddons, tflow, tutils

from proxy_addon.addons.fail_closed import Guarded
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import HostPattern, normalize_host
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.sites import Site
from proxy_addon.runtime.root import AtlassianAuthProxy

from support.prepared import prepared
from support.proxy import EMAIL, TOKEN_192, basic

ACME = "acme.atlassian.net"
LOGIN = ProxyLogin.parse("ci:Pr0xy-pa55word-9f3e")
GOOD_LOGIN = basic("ci", "Pr0xy-pa55word-9f3e")
SECRET = basic(EMAIL, TOKEN_192)
HOOKED = [
    ("proxy_auth", "http_connect"),
    ("proxy_auth", "requestheaders"),
    ("client_limits", "http_connect"),
    ("client_limits", "requestheaders"),
    ("client_rate", "requestheaders"),
    ("faults", "requestheaders"),
    ("faults", "request"),
    ("injector", "requestheaders"),
    ("boundaries", "requestheaders"),
    ("boundaries", "request"),
    ("fail_closed", "http_connect"),
    ("fail_closed", "requestheaders"),
]


LOOP = asyncio.new_event_loop()
"""One loop for every example: mitmproxy's log handler outlives a test master and needs its loop open."""


class Boom(Exception):
    """Stands in for any bug in a check; its text must never reach the client."""


def proxy(login: ProxyLogin | None, as_client: bool = False) -> AtlassianAuthProxy:
    """The root addon with the proxy login, or (`as_client`) with it as the one `[[clients]]` client."""
    root = AtlassianAuthProxy()
    site = Site("acme", (HostPattern.parse(ACME),), EMAIL)
    if as_client and login is not None:
        clients = ClientTable.of([Client(login.user, login, sites=frozenset({"acme"}), requests_per_minute=10**6)])
        root.apply(prepared([site], TOKEN_192, clients=clients))
    else:
        root.apply(prepared([site], TOKEN_192, login=login))
    return root


def make_raise(root: AtlassianAuthProxy, child: str, hook: str, after: bool) -> None:
    addon = getattr(root, child)
    original = getattr(addon, hook)

    def raising(flow):
        if after:
            original(flow)
        raise Boom("secret-bearing text " + SECRET)

    setattr(addon, hook, raising)


def answered(flow) -> bool:
    return flow.response is not None or flow.error is not None


async def run(root: AtlassianAuthProxy, flow, connect) -> bool:
    """True when the request would be sent upstream."""
    with taddons.context() as tctx:
        tctx.master.addons.add(root)
        manager = tctx.master.addons
        if connect is not None:
            await manager.handle_lifecycle(HttpConnectHook(connect))
            if answered(connect):
                return False
        await manager.handle_lifecycle(HttpRequestHeadersHook(flow))
        if answered(flow):
            return False
        await manager.handle_lifecycle(HttpRequestHook(flow))
        return not answered(flow)


authority = st.sampled_from([ACME, f"{ACME}:443", "other.atlassian.net", f"{ACME}:²", f"{ACME}:8443", "evil.test", ""])
requests = st.fixed_dictionaries(
    {
        "scheme": st.sampled_from(["https", "http"]),
        "host": st.sampled_from([ACME, "evil.test", "127.0.0.1", "ACME.atlassian.net."]),
        "port": st.sampled_from([443, 80, 8443]),
        "sni": st.sampled_from([ACME, "evil.test", None]),
        "host_header": authority,
        "path": st.sampled_from(["/rest/api/3/myself", "https://globex.atlassian.net/x", "/é\x1b"]),
        "proxy_authorization": st.sampled_from([None, GOOD_LOGIN, "Basic é", GOOD_LOGIN + "\udcff", "Basic Og=="]),
        "client_auth": st.sampled_from([None, "Basic Y2xpZW50OnNlY3JldA=="]),
        "tunnel": st.booleans(),
        "body": st.binary(max_size=40),
    }
)


def build(spec):
    headers = [(b"host", spec["host_header"].encode("utf-8", "surrogateescape"))]
    if spec["client_auth"]:
        headers.append((b"authorization", spec["client_auth"].encode()))
    if spec["proxy_authorization"]:
        headers.append((b"proxy-authorization", spec["proxy_authorization"].encode("utf-8", "surrogateescape")))
    request = tutils.treq(
        scheme=spec["scheme"].encode(),
        host=spec["host"],
        port=spec["port"],
        path=spec["path"].encode("utf-8", "surrogateescape"),
        authority=b"",
        headers=tuple(headers),
        content=spec["body"],
    )
    flow = tflow.tflow(req=request)
    flow.client_conn.sni = spec["sni"]
    connect = None
    if spec["tunnel"]:
        connect = tflow.tflow(req=tutils.treq(method=b"CONNECT", host=spec["host"], port=spec["port"], path=b""))
        connect.client_conn = flow.client_conn
        connect.request.headers = request.headers.copy()
        flow.request.headers.pop("proxy-authorization", None)
    return flow, connect


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=requests,
    raising=st.one_of(st.none(), st.sampled_from(HOOKED)),
    after=st.booleans(),
    login=st.booleans(),
    as_client=st.booleans(),
)
def test_no_hook_failure_lets_credentials_or_strangers_through(spec, raising, after, login, as_client):
    root = proxy(LOGIN if login else None, as_client)
    if raising is not None:
        make_raise(root, *raising, after)
    flow, connect = build(spec)
    forwarded = LOOP.run_until_complete(run(root, flow, connect))
    for answered_flow in (flow, connect):
        if answered_flow is not None and answered_flow.response is not None:
            assert b"Boom" not in answered_flow.response.content
            assert SECRET.encode() not in answered_flow.response.content
    if not forwarded:
        return
    record = FlowRecord.of(flow.metadata)
    if login:
        assert record.user == "ci", "an unauthenticated request was forwarded"
        assert spec["proxy_authorization"] == GOOD_LOGIN, "a request without the login was forwarded"
    assert flow.request.headers.get("authorization") != SECRET, "the flow itself never holds the credential"
    if root.wire_source(flow) == SECRET:  # what the copy sent upstream would carry
        assert record.decision is Decision.INJECT
        assert (flow.request.scheme, normalize_host(flow.request.host), flow.request.port) == ("https", ACME, 443)
        client = flow.client_conn
        plain_hop_from_loopback = not client.tls and client.sni is None and client.peername[0] == "127.0.0.1"
        assert client.sni == ACME or plain_hop_from_loopback, "only a verified TLS name or a loopback plain hop"
        assert flow.request.headers.get_all("host") in ([ACME], [f"{ACME}:443"])
        assert not flow.request.path.startswith("https://globex")


@pytest.mark.parametrize(("child", "hook"), HOOKED)
def test_a_raising_hook_refuses_with_a_short_answer_and_drops_every_credential(child, hook):
    root = proxy(LOGIN)
    make_raise(root, child, hook, after=True)
    flow, connect = build(
        {
            "scheme": "https",
            "host": ACME,
            "port": 443,
            "sni": ACME,
            "host_header": ACME,
            "path": "/rest/api/3/myself",
            "proxy_authorization": GOOD_LOGIN,
            "client_auth": "Basic Y2xpZW50OnNlY3JldA==",
            "tunnel": hook == "http_connect",
            "body": b"",
        }
    )
    assert not LOOP.run_until_complete(run(root, flow, connect))
    refused = connect if hook == "http_connect" else flow
    assert refused.response.status_code in (407, 502)
    assert FlowRecord.of(refused.metadata).decision is Decision.UNDECIDED
    assert "authorization" not in refused.request.headers


class Slow:
    """A child whose check has to wait for something: an `async def` hook, or a sync one handing back a coroutine."""

    def __init__(self, fails: bool) -> None:
        self.fails = fails
        self.finished = False

    async def _check(self, flow) -> None:
        await asyncio.sleep(0)
        if self.fails:
            raise Boom("secret-bearing text " + SECRET)
        self.finished = True

    async def requestheaders(self, flow) -> None:
        await self._check(flow)

    def request(self, flow):
        return self._check(flow)


def credentialed_flow():
    request = tutils.treq(host=ACME, port=443, scheme=b"https", authority=b"", path=b"/rest/api/3/myself")
    request.headers["authorization"] = SECRET
    return tflow.tflow(req=request)


@pytest.mark.parametrize("hook", [HttpRequestHeadersHook, HttpRequestHook], ids=["async-def", "returns-coroutine"])
def test_a_check_that_waits_and_then_raises_refuses_its_request(hook):
    """Guarded must await what a hook returns: a dropped coroutine is a check that never ran."""
    child = Slow(fails=True)
    flow = credentialed_flow()

    async def dispatch():
        with taddons.context() as tctx:
            tctx.master.addons.add(Guarded(child))
            await tctx.master.addons.handle_lifecycle(hook(flow))

    LOOP.run_until_complete(dispatch())
    assert flow.response is not None
    assert flow.response.status_code == 502
    assert b"Boom" not in flow.response.content
    assert FlowRecord.of(flow.metadata).decision is Decision.UNDECIDED
    assert "authorization" not in flow.request.headers


def test_a_check_that_waits_is_awaited_to_its_end():
    child = Slow(fails=False)
    flow = credentialed_flow()

    async def dispatch():
        with taddons.context() as tctx:
            tctx.master.addons.add(Guarded(child))
            await tctx.master.addons.handle_lifecycle(HttpRequestHeadersHook(flow))

    LOOP.run_until_complete(dispatch())
    assert child.finished
    assert flow.response is None


def test_a_refusal_of_a_streaming_request_stops_the_stream():
    """mitmproxy cannot answer a request it streams: the refusal must take the stream back."""
    child = Slow(fails=True)
    flow = credentialed_flow()
    flow.request.stream = True

    async def dispatch():
        with taddons.context() as tctx:
            tctx.master.addons.add(Guarded(child))
            await tctx.master.addons.handle_lifecycle(HttpRequestHeadersHook(flow))

    LOOP.run_until_complete(dispatch())
    assert flow.response is not None
    assert flow.request.stream is False

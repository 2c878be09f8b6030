"""The injector's and the token verdicts' hooks, called directly with mitmproxy's own test flows (fast; the
e2e tests prove the wire)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils
from pydantic import SecretStr

from proxy_addon.addons.injector import REDACTED, CredentialInjector, WireSource, facts_of
from proxy_addon.addons.token_verdicts import TokenVerdicts
from proxy_addon.credentials import outbound as outbound_module
from proxy_addon.credentials.http_client import Unreachable
from proxy_addon.credentials.minted import MintFailed, MintRejected
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.scoped import GATEWAY, Gateway
from proxy_addon.policy.sites import Site, SiteTable
from proxy_addon.policy.token_health import FIRST_PAUSE, RECHECK_SECONDS, TokenHealth
from proxy_addon.policy.verdict import Policy

from support.decided import Decided
from support.prepared import prepared
from support.service_account import CLOUD_ID, ServiceAccount

ACME = "acme.atlassian.net"
SITE = Site("default", (HostPattern.parse("*.atlassian.net"),), "me@example.test")
CREDENTIALS = Credentials.of(SITE.user, SecretStr("tok3n-for-hook-tests"), "test")


class Injector:
    """The injector with what the root hands it, and the token verdicts and wire source beside it."""

    def __init__(self, clients: ClientTable | None = None) -> None:
        self.health = TokenHealth()
        self.credentials = CredentialRegistry(self.health)
        self.credentials.adopt(SITE, CREDENTIALS)
        self.outbound = Outbound(self.health, self.credentials)
        configured = prepared([SITE], clients=clients or ClientTable())
        self.outbound.use(configured.policy, configured.reach, self.outbound.timeout)
        self.addon = CredentialInjector(self.health, self.outbound)
        self.addon.use(configured)
        self.verdicts = TokenVerdicts(self.outbound, self.credentials)
        self.verdicts.use(configured)
        self.wire_credential = WireSource(self.health, self.credentials)

    def requestheaders(self, flow: http.HTTPFlow):
        return self.addon.requestheaders(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self.verdicts.responseheaders(flow)


def injector(clients: ClientTable | None = None) -> Injector:
    return Injector(clients)


def flow(host: str = ACME, sni: str | None = ACME, **headers: str) -> http.HTTPFlow:
    request = tutils.treq(host=host, port=443, scheme=b"https", authority=b"", path=b"/rest/api/3/myself")
    request.headers.clear()
    request.headers["host"] = host
    request.headers["authorization"] = "Basic Y2xpZW50OmNsaWVudA=="
    request.headers["cookie"] = "tenant.session.token=client"
    for name, value in headers.items():
        request.headers[name.replace("_", "-")] = value
    f = tflow.tflow(req=request)
    f.client_conn.sni = sni
    return f


def test_a_matching_request_gets_the_sites_credentials_on_the_wire_only_and_loses_the_clients():
    addon = injector()
    with taddons.context(addon.addon):
        f = flow()
        addon.requestheaders(f)
        assert f.response is None
        assert f.request.headers["authorization"] == REDACTED, "the flow never holds the credential"
        assert "cookie" not in f.request.headers
        record = FlowRecord.of(f.metadata)
        assert (record.decision, record.site, record.host) == (Decision.INJECT, "default", ACME)
        assert record.stamp is None, "not sent yet"
        assert addon.wire_credential(f) == CREDENTIALS.authorization.get_secret_value()
        assert record.stamp is not None, "sent now"
        assert f.request.headers["authorization"] == REDACTED


def test_only_an_injected_unanswered_flow_gets_the_credential_on_the_wire():
    addon = injector()
    with taddons.context(addon.addon):
        other = flow(host="example.test", sni="example.test")
        addon.requestheaders(other)
        assert addon.wire_credential(other) is None
        answered = flow()
        addon.requestheaders(answered)
        answered.response = http.Response.make(502)
        assert addon.wire_credential(answered) is None


def test_a_host_header_naming_another_host_gets_421_and_keeps_nothing_of_ours():
    addon = injector()
    with taddons.context(addon.addon):
        f = flow()
        f.request.headers["host"] = "globex.atlassian.net"
        addon.requestheaders(f)
        assert f.response is not None
        assert f.response.status_code == 421
        assert "authorization" not in f.request.headers
        assert "cookie" not in f.request.headers
        assert FlowRecord.of(f.metadata).decision is Decision.MISDIRECTED


def test_another_host_passes_untouched():
    addon = injector()
    with taddons.context(addon.addon):
        f = flow(host="example.test", sni="example.test")
        addon.requestheaders(f)
        assert f.response is None
        assert f.request.headers["authorization"] == "Basic Y2xpZW50OmNsaWVudA=="
        assert FlowRecord.of(f.metadata).decision is Decision.PASS


def test_a_flow_answered_by_an_earlier_hook_is_left_alone():
    addon = injector()
    with taddons.context(addon.addon):
        f = flow()
        f.response = http.Response.make(407)
        addon.requestheaders(f)
        assert f.request.headers["authorization"] == "Basic Y2xpZW50OmNsaWVudA=="


def test_the_response_drops_set_cookie_and_a_401_pauses_that_host():
    addon = injector()
    with taddons.context(addon.addon):
        f = flow()
        addon.requestheaders(f)
        addon.wire_credential(f)
        f.response = http.Response.make(401, b"{}", {"set-cookie": "cloud.session.token=x"})
        addon.responseheaders(f)
        assert f.request.headers["authorization"] == REDACTED
        assert "set-cookie" not in f.response.headers
        assert addon.health.backing_off
        paused = flow()
        addon.requestheaders(paused)
        assert paused.response is not None
        assert paused.response.status_code == 401
        assert FlowRecord.of(paused.metadata).decision is Decision.BACKED_OFF
        assert "authorization" not in paused.request.headers, "an answered flow keeps no credential"


def test_a_401_to_a_request_whose_credential_never_went_out_pauses_nothing():
    addon = injector()
    with taddons.context(addon.addon):
        f = flow()
        addon.requestheaders(f)
        f.response = http.Response.make(401, b"{}")
        addon.responseheaders(f)
        assert not addon.health.backing_off


def test_a_browser_request_is_refused():
    addon = injector()
    with taddons.context(addon.addon):
        f = flow(origin="https://page.example")
        addon.requestheaders(f)
        assert f.response is not None
        assert f.response.status_code == 403
        assert FlowRecord.of(f.metadata).decision is Decision.BROWSER


def plain_hop(peer: str) -> http.HTTPFlow:
    """`GET https://acme.atlassian.net/... HTTP/1.1` sent in plain text to the proxy, without CONNECT."""
    f = flow(sni=None)
    f.client_conn.tls = False
    f.client_conn.peername = (peer, 50000)
    return f


def test_absolute_form_https_without_connect_from_another_machine_is_refused_with_the_reason():
    """Judged on the client's address alone, so no traffic leaves loopback to prove it."""
    addon = injector()
    with taddons.context(addon.addon):
        f = plain_hop("203.0.113.5")
        addon.requestheaders(f)
        assert f.response is not None
        assert f.response.status_code == 403
        assert b"use CONNECT (axios: upgrade to 1.16.1 or later)" in f.response.content
        assert "authorization" not in f.request.headers
        assert FlowRecord.of(f.metadata).decision is Decision.CLEARTEXT_HOP


def test_absolute_form_https_without_connect_from_loopback_gets_the_credentials():
    addon = injector()
    with taddons.context(addon.addon):
        f = plain_hop("127.0.0.1")
        addon.requestheaders(f)
        assert f.response is None
        assert addon.wire_credential(f) == CREDENTIALS.authorization.get_secret_value()


class FakeSite:
    """Stands in for `http_client.fetch`, the proxy's own requests: one answer for all, or no answer."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int, str]] = []
        self.status = 200
        self.unreachable = False
        self.release: threading.Event | None = None

    def __call__(self, host, port, path, credentials, reach):
        self.asked.append((host, port, path))
        if self.release is not None:
            self.release.wait(5)
        if self.unreachable:
            raise Unreachable(f"cannot reach {host}: the connection was refused")
        return self.status, {}, b"{}"


@pytest.fixture
def own(monkeypatch) -> FakeSite:
    fake = FakeSite()
    monkeypatch.setattr(outbound_module, "fetch", fake)
    return fake


def paused_until_now(addon: Injector) -> None:
    """The site rejected the token a pause ago: the pause is over, the check is due."""
    addon.health.judge("default", ACME, addon.health.stamp(), "HTTP 401", time.monotonic() - FIRST_PAUSE - 0.1)


def after_the_pause(addon: Injector, count: int = 3, then=lambda: None) -> list[http.HTTPFlow]:
    """`count` requests arriving together once the pause is over, each run to its verdict; then `then()`."""
    flows = [flow() for _ in range(count)]
    waits = [addon.requestheaders(f) for f in flows]
    assert all(w is not None for w in waits), "every request waits for the check"
    assert all(f.response is None for f in flows)

    async def together() -> None:
        await asyncio.gather(*waits)
        then()

    asyncio.run(together())
    return flows


def test_after_the_pause_one_check_of_the_proxys_own_decides_and_no_request_is_the_probe(own, caplog):
    caplog.set_level(logging.INFO, "proxy_addon")
    addon = injector()
    paused_until_now(addon)
    with taddons.context(addon.addon):
        flows = after_the_pause(addon)
    assert own.asked == [(ACME, 443, "/rest/api/3/myself")], "one check, to the identity page"
    assert [FlowRecord.of(f.metadata).decision for f in flows] == [Decision.INJECT] * 3
    assert not addon.health.backing_off
    assert f"{ACME} accepts the API token again" in caplog.text


def test_a_rejected_check_doubles_the_pause(own, caplog):
    addon = injector()
    paused_until_now(addon)
    own.status = 401
    with taddons.context(addon.addon):
        flows = after_the_pause(addon)
    assert len(own.asked) == 1
    for f in flows:
        assert f.response is not None
        assert f.response.status_code == 401
        assert f.response.headers["retry-after"] == str(round(2 * FIRST_PAUSE))
        assert FlowRecord.of(f.metadata).decision is Decision.BACKED_OFF
    assert addon.health.pause("default", ACME) == 2 * FIRST_PAUSE
    assert "(HTTP 401 from /rest/api/3/myself)" in caplog.text


def test_an_unreachable_site_keeps_the_pause_undoubled_and_is_checked_again_soon(own, caplog):
    addon = injector()
    paused_until_now(addon)
    own.unreachable = True
    with taddons.context(addon.addon):
        flows = after_the_pause(addon)
        assert {f.response.headers["retry-after"] for f in flows} == {str(round(RECHECK_SECONDS))}
        assert addon.health.pause("default", ACME) == FIRST_PAUSE
        assert f"could not check the API token of site default (cannot reach {ACME}" in caplog.text
        again = flow()
        addon.requestheaders(again)
        assert again.response is not None, "no second check before the short interval"
    assert len(own.asked) == 1


def test_a_check_slower_than_the_upstream_timeout_leaves_requests_the_local_401_for_a_second(own):
    addon = injector()
    addon.outbound.timeout = 0.2
    paused_until_now(addon)
    own.release = threading.Event()
    with taddons.context(addon.addon):
        (f,) = after_the_pause(addon, 1, then=own.release.set)
    assert f.response is not None
    assert (f.response.status_code, f.response.headers["retry-after"]) == (401, "1")
    assert FlowRecord.of(f.metadata).decision is Decision.BACKED_OFF


@pytest.mark.parametrize("name", ["X-HTTP-Method-Override", "x-http-method", "X-METHOD-OVERRIDE", "x-Method-Override"])
def test_a_method_override_header_in_any_case_is_a_fact_and_refused_for_a_bounded_client(name):
    assert facts_of(flow(**{name: "DELETE"})).method_override == name
    assert facts_of(flow(x_http_method_overrides="DELETE")).method_override is None
    addon = injector(ClientTable.of([Client("bounded", ProxyLogin.parse("a:Pr0xy-pa55word-9f3e"), read_only=True)]))
    with taddons.context(addon.addon):
        f = flow(**{name: "DELETE"})
        FlowRecord.of(f.metadata).user = "bounded"
        addon.requestheaders(f)
        assert f.response is not None
        assert f.response.status_code == 400
        assert name.encode() in f.response.content
        assert FlowRecord.of(f.metadata).decision is Decision.METHOD_OVERRIDE
        assert "authorization" not in f.request.headers


# Credentials ride only the methods Atlassian's APIs use (red team #9): the method as the client sent it, not as
# mitmproxy reports it (upper-cased).


@pytest.mark.parametrize("method", [b"TRACE", b"TRACK", b"PROPFIND", b"get", b"Trace", b"delete"])
def test_any_other_method_gets_a_local_405_naming_the_allowed_ones_and_keeps_no_credential(method):
    with taddons.context():
        decided = Decided()
        f = decided.decide("/", method=method)
        assert f.response is not None
        assert f.response.status_code == 405
        assert f.response.headers["Allow"] == "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"
        assert f"{method.decode()} is never sent to {ACME}" in f.response.text
        assert "authorization" not in f.request.headers
        assert FlowRecord.of(f.metadata).decision is Decision.METHOD_NOT_ALLOWED
        assert decided.source(f) is None


@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"OPTIONS", b"POST", b"PUT", b"PATCH", b"DELETE"])
def test_the_methods_atlassian_uses_are_credentialed(method):
    with taddons.context():
        decided = Decided()
        f = decided.decide("/", method=method)
        assert f.response is None
        assert f.request.headers["authorization"] == REDACTED


def test_a_client_credentials_request_waits_for_the_one_mint_and_goes_to_the_gateway_with_its_token(monkeypatch):
    bot = ServiceAccount(monkeypatch)
    bot.endpoint.release.clear()

    async def four_at_once():
        pending = [asyncio.ensure_future(bot.decide(path=f"/rest/api/3/issue/OPS-{n}")) for n in range(4)]
        await asyncio.sleep(0.05)
        bot.endpoint.release.set()
        return await asyncio.gather(*pending)

    with taddons.context(bot.injector):
        results = asyncio.run(four_at_once())
    assert bot.endpoint.calls == 1
    for number, (f, credential) in enumerate(results):
        assert credential == "Bearer minted-1", "the access token only on the wire"
        assert f.request.headers["authorization"] == REDACTED
        assert (f.request.host, f.request.path) == (GATEWAY, f"/ex/jira/{CLOUD_ID}/rest/api/3/issue/OPS-{number}")
        assert f.request.host_header == GATEWAY
        assert FlowRecord.of(f.metadata).destination == f"https://{GATEWAY}:443"


@pytest.mark.parametrize(
    ("failure", "decision", "error", "retry_after"),
    [
        (
            MintRejected("HTTP 401 invalid_client", 30),
            Decision.CLIENT_CREDENTIALS_REJECTED,
            "client_credentials_rejected",
            None,
        ),
        (
            MintFailed("cannot reach auth.atlassian.com: the connection was refused"),
            Decision.MINT_FAILED,
            "client_credentials_unavailable",
            "5",
        ),
    ],
)
def test_without_an_access_token_a_client_credentials_request_is_a_local_502(
    monkeypatch, failure, decision, error, retry_after
):
    bot = ServiceAccount(monkeypatch)
    bot.endpoint.failure = failure
    with taddons.context(bot.injector):
        f, credential = asyncio.run(bot.decide())
    assert credential is None
    assert f.response is not None
    assert f.response.status_code == 502
    body = json.loads(f.response.content or b"")
    assert body["error"] == error
    assert body["message"].startswith("site bot: ")
    assert failure.why in body["message"]
    assert f.response.headers.get("retry-after") == retry_after
    assert FlowRecord.of(f.metadata).decision is decision
    assert "authorization" not in f.request.headers


def test_a_classic_sites_gateway_form_goes_to_the_sites_own_host_with_its_token():
    classic = Site("globex", (HostPattern.parse("globex.atlassian.net"),), "me@example.test", cloud_id="0b0e")
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    credentials.adopt(classic, Credentials.of(classic.user, SecretStr("tok3n-for-hook-tests"), "test"))
    gateway = Gateway()
    gateway.add(classic, "0b0e")
    configured = prepared([classic], policy=Policy(SiteTable.of([classic]), gateway))
    addon = CredentialInjector(health, Outbound(health, credentials))
    addon.use(configured)
    with taddons.context(addon):
        f = flow(host=GATEWAY, sni=GATEWAY)
        f.request.path = "/ex/confluence/0b0e/wiki/rest/api/content/1?expand=body"
        assert addon.requestheaders(f) is None
    assert (f.request.host, f.request.path) == ("globex.atlassian.net", "/wiki/rest/api/content/1?expand=body")
    assert f.request.host_header == "globex.atlassian.net"
    record = FlowRecord.of(f.metadata)
    assert (record.decision, record.site, record.host) == (Decision.INJECT, "globex", "globex.atlassian.net")
    assert record.destination == "https://globex.atlassian.net:443", "the moved-request check sees where it goes"
    assert WireSource(health, credentials)(f) == credentials["globex"].authorization.get_secret_value()

"""GatewayConnect: a CONNECT to a gateway site's own host opens no connection there until a request needs it."""

from __future__ import annotations

from types import SimpleNamespace

from mitmproxy.test import taddons, tflow

from proxy_addon.addons.gateway_connect import GatewayConnect
from proxy_addon.addons.replies import refuse
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.refusals import Refusal
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.verdict import Policy


def site(name: str, host: str, **options) -> Site:
    return Site(name, (HostPattern.parse(host),), f"{name}@example.test", **options)


def gateway_policy() -> Policy:
    """A scoped, a client-credentials and a classic site, each with its cloudId."""
    scoped = site("acme", "acme.atlassian.net", scoped=True)
    minted = site("bot", "bot.atlassian.net", scheme=Scheme.CLIENT_CREDENTIALS)
    classic = site("globex", "globex.atlassian.net", cloud_id="c1a551c0")
    gateway = Gateway()
    gateway.add(scoped, "5c0bed00")
    gateway.add(minted, "b0b0b0b0")
    gateway.add(classic, "c1a551c0")
    return Policy(SiteTable.of([scoped, minted, classic]), gateway)


def addon() -> GatewayConnect:
    made = GatewayConnect()
    made.policy = gateway_policy()
    return made


def connect(host: str) -> tflow.HTTPFlow:
    flow = tflow.tflow()
    flow.request.method, flow.request.host, flow.request.port = "CONNECT", host, 443
    return flow


def hello(host: str, connected: bool, ignored: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        context=SimpleNamespace(server=SimpleNamespace(address=(host, 443), connected=connected)),
        ignore_connection=ignored,
        establish_server_tls_first=True,
    )


def test_a_connect_to_a_gateway_sites_own_host_is_answered_without_opening_it():
    gateway = addon()
    with taddons.context(gateway):
        own, classic, scoped = (
            connect("bot.atlassian.net"),
            connect("globex.atlassian.net"),
            connect("acme.atlassian.net"),
        )
        for flow in (own, classic, scoped):
            gateway.http_connect(flow)
    assert own.response is not None
    assert (own.response.status_code, own.response.reason, list(own.response.headers.fields)) == (
        200,
        "Connection established",
        [],
    ), "the answer mitmproxy itself gives"
    assert scoped.response is not None
    assert scoped.response.status_code == 200
    assert classic.response is None, "a classic site's requests stay on its host: mitmproxy connects as usual"


def test_a_refused_connect_stays_refused():
    gateway = addon()
    flow = connect("bot.atlassian.net")
    refuse(flow, Refusal.PROXY_AUTH)
    with taddons.context(gateway):
        gateway.http_connect(flow)
    assert flow.response is not None
    assert flow.response.status_code == 407


def test_the_client_handshakes_first_only_while_the_own_host_is_not_connected():
    gateway = addon()
    with taddons.context(gateway):
        unopened, opened, classic = (
            hello("bot.atlassian.net", False),
            hello("bot.atlassian.net", True),
            hello("globex.atlassian.net", False),
        )
        tunnelled = hello("bot.atlassian.net", False, ignored=True)
        for data in (unopened, opened, classic, tunnelled):
            gateway.tls_clienthello(data)
    assert unopened.establish_server_tls_first is False
    assert opened.establish_server_tls_first is True, "an open connection waiting for a ClientHello would hang"
    assert classic.establish_server_tls_first is True
    assert tunnelled.establish_server_tls_first is True

"""The pool's hooks: when it answers a CONNECT, which connection gets a warm socket, what the record says.

A site on loopback stands in for the warm connections' far end: the pool really dials it and sends
mitmproxy's own ClientHello, built by mitmproxy's tlsconfig as for a real connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
from mitmproxy import connection, http, tls
from mitmproxy.addons.tlsconfig import TlsConfig
from mitmproxy.proxy import context, server_hooks
from mitmproxy.proxy.layers.http import HttpLayer
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils
from prometheus_client import CollectorRegistry

from proxy_addon.addons import mitmproxy_internals as internals
from proxy_addon.addons import upstream_pool
from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.upstream_pool import NEW, REFILL_SECONDS, WARM, AfterTlsConfig, Key, UpstreamPool
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.settings.model import Settings

HOST = "acme.atlassian.net"
OFFERS = (b"h2", b"http/1.1")


def client_of(sni: str | None = HOST, offers: tuple[bytes, ...] = OFFERS) -> connection.Client:
    client = tflow.tclient_conn()
    client.sni, client.alpn_offers = sni, offers
    client.proxy_mode = ProxyMode.parse("regular")
    return client


def lazy_server(host: str = HOST) -> connection.Server:
    """A server connection as mitmproxy's HTTP layer makes one for a request: TLS, SNI the host, not yet open."""
    return connection.Server(address=(host, 443), sni=host, tls=True)


def key_of(client: connection.Client, server: connection.Server, generation: int = 0) -> Key:
    assert server.address is not None
    return Key(internals.TlsInputs.of(client, server, server.address), generation)


def connect_flow(client: connection.Client, host: str = HOST) -> http.HTTPFlow:
    return tflow.tflow(client_conn=client, req=tutils.treq(method=b"CONNECT", host=host, port=443, path=b""))


def request_flow(client: connection.Client, server: connection.Server, method: str = "GET") -> http.HTTPFlow:
    request = tutils.treq(method=method.encode(), host=HOST, port=443, scheme=b"https")
    flow = tflow.tflow(client_conn=client, server_conn=server, req=request)
    record = FlowRecord.of(flow.metadata)
    record.decision, record.site = Decision.INJECT, "acme"
    return flow


class Site:
    """A TCP listener on loopback that keeps what each connection sends first (a ClientHello)."""

    def __init__(self) -> None:
        self.first_bytes: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.append(writer)
            self.first_bytes.append(await reader.read(5))

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        self.server.close()


@pytest.fixture
def running_pool() -> Callable:
    """Runs `scenario(pool, site)` in a loop, the pool running under a master with tlsconfig, names resolving
    to the loopback site."""

    def run(scenario: Callable, settings: Settings | None = None) -> None:
        async def main() -> None:
            site = Site()
            port = await site.start()
            loop = asyncio.get_running_loop()
            undo = internals.redirect_name_resolution(loop, lambda host, at: ("127.0.0.1", port))
            pool = UpstreamPool(CollectorRegistry())
            with taddons.context(TlsConfig(), pool) as tctx:
                pool.use(Prepared(settings=settings or Settings()))
                pool.running()
                try:
                    await scenario(pool, site, tctx)
                finally:
                    pool.done()
                    undo()
                    site.close()

        asyncio.run(main())

    return run


async def warmed(pool: UpstreamPool, site: Site, flow: http.HTTPFlow) -> Key:
    """A credentialed request answered on `flow`: the pool warms its key; returns once both connections wait."""
    pool.responseheaders(flow)
    key = pool.keys[flow.server_conn.id]
    for _ in range(200):
        if len(pool.entries.get(key, ())) == pool.limits.size and len(site.first_bytes) >= pool.limits.size:
            return key
        await asyncio.sleep(0.01)
    raise AssertionError("the pool did not warm")


async def handed_warm(pool: UpstreamPool, site: Site) -> tuple[connection.Client, connection.Server]:
    """A client whose credentialed answer warmed the pool, and its next server connection, handed a warm socket."""
    client = client_of()
    await warmed(pool, site, request_flow(client, tflow.tserver_conn()))
    server = lazy_server()
    pool.server_connect(server_hooks.ServerConnectionHookData(server, client))
    return client, server


def test_the_setting_or_an_upstream_proxy_turns_it_off(caplog):
    pool = UpstreamPool(CollectorRegistry())
    pool.use(Prepared(settings=Settings(upstream_pool=False)))
    assert not pool.wanted
    with caplog.at_level(logging.INFO):
        pool.use(Prepared(settings=Settings(upstream_proxy="http://corp.example:3128")))
    assert not pool.wanted
    assert "upstream pool: off (connections go through the upstream proxy)" in caplog.text
    pool.use(Prepared(settings=Settings(upstream_pool_size=3, upstream_pool_idle_seconds=5)))
    assert pool.wanted
    assert (pool.limits.size, pool.limits.idle) == (3, 5)


def test_a_sites_in_flight_cap_clamps_its_warm_connections(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        assert pool.limits.size_for("default") == 1, "max_in_flight 1 allows one warm connection, not 3"
        flow = request_flow(client_of(), lazy_server())
        FlowRecord.of(flow.metadata).site = "default"
        pool.responseheaders(flow)
        key = pool.keys[flow.server_conn.id]
        await asyncio.sleep(0.3)  # time enough for three to open, were they allowed
        assert (len(pool.entries.get(key, ())), len(site.first_bytes)) == (1, 1)
        pool._take(key)  # a client took it: one opens behind it, never more
        await asyncio.sleep(0.3)
        assert (len(pool.entries.get(key, ())), len(site.first_bytes)) == (1, 2)

    running_pool(scenario, Settings(upstream_pool_size=3, max_in_flight=1))


def test_a_taken_connection_is_replaced_after_its_request_left_unless_none_is_left(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        key = await warmed(pool, site, request_flow(client_of(), tflow.tserver_conn()))
        assert pool._take(key) is not None
        assert (len(pool.entries[key]), pool.opening.get(key, 0)) == (1, 0), "not while the request leaves"
        await asyncio.sleep(REFILL_SECONDS + 0.2)
        assert (len(pool.entries[key]), len(site.first_bytes)) == (2, 3)
        assert pool._take(key) is not None
        assert pool._take(key) is not None
        assert pool.opening.get(key, 0) == 2, "none left: both replaced at once"

    running_pool(scenario)


def test_tlsconfigs_build_shown_alike_stands_for_a_second_and_until_options_change(running_pool, monkeypatch):
    builds = []

    def counted(inputs: internals.TlsInputs):
        builds.append(inputs)
        return internals.server_tls(inputs)

    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        key = await warmed(pool, site, request_flow(client_of(), tflow.tserver_conn()))
        monkeypatch.setattr(upstream_pool, "server_tls", counted)
        assert pool._take(key) is not None
        assert pool._take(key) is not None
        assert len(builds) == 1, "the second warm connection taken was proven alike by the first's build"
        pool.configure({"ssl_verify_upstream_trusted_ca"})
        assert pool.proven == {}

    running_pool(scenario)


def test_running_hands_connections_over_after_tlsconfig_until_done(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        assert pool.on
        assert isinstance(tctx.master.addons.get(AfterTlsConfig.name), AfterTlsConfig)
        assert tctx.master.addons.chain[-1] is tctx.master.addons.get(AfterTlsConfig.name), "after tlsconfig"
        assert "create_connection" in vars(asyncio.get_running_loop())

    running_pool(scenario)


def test_with_a_pool_internal_missing_it_stays_off_and_says_which(running_pool, monkeypatch, caplog):
    monkeypatch.delattr(HttpLayer, "register_connection")

    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        assert not pool.on
        assert "create_connection" not in vars(asyncio.get_running_loop())

    with caplog.at_level(logging.WARNING):
        running_pool(scenario)
    assert "upstream pool: off, this mitmproxy differs" in caplog.text
    assert "HttpLayer.register_connection is missing" in caplog.text


def test_a_credentialed_answer_warms_its_key_with_mitmproxys_own_client_hello(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        client, server = client_of(), lazy_server()
        flow = request_flow(client, server)
        pool.server_connect(server_hooks.ServerConnectionHookData(server, client))  # a new key: nothing to take
        key = await warmed(pool, site, flow)
        assert key == key_of(client, lazy_server())
        assert all(first[:1] == b"\x16" for first in site.first_bytes), "a TLS handshake record"
        assert all(entry.alive() for entry in pool.entries[key])
        assert FlowRecord.of(flow.metadata).upstream == NEW

    running_pool(scenario)


def test_only_credentialed_answers_warm_a_key(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        flow = request_flow(client_of(), lazy_server())
        FlowRecord.of(flow.metadata).decision = Decision.PASS
        pool.responseheaders(flow)
        await asyncio.sleep(0.05)
        assert (pool.entries, site.first_bytes, FlowRecord.of(flow.metadata).upstream) == ({}, [], None)

    running_pool(scenario)


def test_the_next_connection_with_the_same_inputs_takes_the_oldest_warm_one(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        client = client_of()
        key = await warmed(pool, site, request_flow(client, tflow.tserver_conn()))
        oldest = pool.entries[key][0]
        server = lazy_server()
        pool.server_connect(server_hooks.ServerConnectionHookData(server, client_of()))
        assert pool.handed[server.id] is oldest
        assert pool.reserved.get() == (server, oldest)
        assert pool._claim((HOST, 443)) is oldest.sock
        assert pool.pooled(server)

        built = tls.TlsData(server, context.Context(client, tctx.options))
        tctx.master.addons.get("tlsconfig").tls_start_server(built)
        pool.after_tls_start_server(built)
        assert built.ssl_conn is oldest.ssl, "tlsconfig's own TLS client, the one whose ClientHello went out"

        request = request_flow(client, server)
        pool.responseheaders(request)
        assert FlowRecord.of(request.metadata).upstream == WARM

    running_pool(scenario)


def test_other_inputs_a_dialling_client_or_a_tunnelled_one_get_no_warm_connection(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        await warmed(pool, site, request_flow(client_of(), tflow.tserver_conn()))
        for client in (client_of(offers=(b"http/1.1",)), client_of(sni="other.atlassian.net")):
            server = lazy_server()
            pool.server_connect(server_hooks.ServerConnectionHookData(server, client))
            assert not pool.pooled(server)

        dialling, server = client_of(), lazy_server()
        pool.dialling(dialling, True)
        pool.server_connect(server_hooks.ServerConnectionHookData(server, dialling))
        pool.dialling(dialling, False)
        assert not pool.pooled(server)

        tunnelled = client_of()
        hello = tls.ClientHelloData(context.Context(tunnelled, tctx.options), None)  # type: ignore[arg-type]
        hello.ignore_connection = True
        pool.after_tls_clienthello(hello)
        server = connection.Server(address=(HOST, 443), tls=False)
        pool.server_connect(server_hooks.ServerConnectionHookData(server, tunnelled))
        server = lazy_server()
        pool.server_connect(server_hooks.ServerConnectionHookData(server, tunnelled))
        assert not pool.handed

    running_pool(scenario)


def test_a_connect_is_answered_early_only_where_warm_connections_wait(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        cold = connect_flow(client_of())
        pool.http_connect(cold)
        assert cold.response is None
        await warmed(pool, site, request_flow(client_of(), tflow.tserver_conn()))

        client = client_of()
        early = connect_flow(client)
        pool.http_connect(early)
        assert early.response is not None
        assert (early.response.status_code, early.response.reason, list(early.response.headers.fields)) == (
            200,
            "Connection established",
            [],
        )
        other = connect_flow(client_of(), host="other.atlassian.net")
        pool.http_connect(other)
        assert other.response is None

        answered = connect_flow(client_of())
        answered.response = http.Response.make(407)
        pool.http_connect(answered)
        assert answered.response.status_code == 407

        hello = tls.ClientHelloData(context.Context(client, tctx.options), None)  # type: ignore[arg-type]
        hello.context.server.address = (HOST, 443)
        hello.establish_server_tls_first = True
        pool.after_tls_clienthello(hello)
        assert hello.establish_server_tls_first is False, "the client's TLS does not wait for an upstream one"

    running_pool(scenario)


def test_a_deferred_client_is_offered_what_the_site_chose_for_the_same_offers(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        await warmed(pool, site, request_flow(client_of(), tflow.tserver_conn()))
        for chosen in (b"h2", b""):
            earlier = connection.Server(address=(HOST, 443), alpn=chosen)
            pool.tls_established_server(tls.TlsData(earlier, context.Context(client_of(), tctx.options)))
            client = client_of()
            pool.http_connect(connect_flow(client))
            hello = tls.ClientHelloData(context.Context(client, tctx.options), None)  # type: ignore[arg-type]
            hello.context.server.address = (HOST, 443)
            pool.after_tls_clienthello(hello)
            assert hello.context.server.alpn == chosen

    running_pool(scenario)


def test_a_reservation_mitmproxy_does_not_take_turns_the_pool_off(running_pool, caplog):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        key = await warmed(pool, site, request_flow(client_of(), tflow.tserver_conn()))
        entry = pool.entries[key][0]
        server = lazy_server()
        data = server_hooks.ServerConnectionHookData(server, client_of())
        pool.server_connect(data)
        pool.server_connected(data)  # as if mitmproxy had dialled without the hand-over
        assert not pool.on
        assert entry.sock.fileno() == -1, "the reserved socket is closed"
        assert pool.entries == {}
        assert "create_connection" not in vars(asyncio.get_running_loop())

    with caplog.at_level(logging.ERROR):
        running_pool(scenario)
    assert "upstream pool: off, mitmproxy connected without taking the reserved connection" in caplog.text


def test_a_tls_client_built_otherwise_is_not_swapped(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        client, server = await handed_warm(pool, site)
        entry = pool.handed[server.id]
        pool._claim((HOST, 443))
        server.alpn_offers = (b"http/1.1",)  # tlsconfig would now offer something else
        built = tls.TlsData(server, context.Context(client, tctx.options))
        tctx.master.addons.get("tlsconfig").tls_start_server(built)
        pool.after_tls_start_server(built)
        assert built.ssl_conn is not entry.ssl

    running_pool(scenario)


def test_a_tls_option_change_drops_every_warm_connection(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        key = await warmed(pool, site, request_flow(client_of(), tflow.tserver_conn()))
        sockets = [entry.sock for entry in pool.entries[key]]
        pool.configure({"ssl_insecure"})
        assert pool.entries == {}
        assert all(sock.fileno() == -1 for sock in sockets)
        assert pool.generation == key.generation + 1

    running_pool(scenario)


def test_only_safe_methods_go_first_on_warm_connections_and_are_sent_again_once():
    pool = UpstreamPool(CollectorRegistry())
    get, post = request_flow(client_of(), lazy_server()), request_flow(client_of(), lazy_server(), "POST")
    assert (pool.must_dial(get), pool.must_dial(post)) == (False, True)
    assert not pool.may_resend(post)
    assert pool.may_resend(get)
    assert pool.must_dial(get), "sent again: on a dialled connection"
    assert not pool.may_resend(get), "once"
    timed_out = request_flow(client_of(), lazy_server())
    FlowRecord.of(timed_out.metadata).timed_out = True
    assert not pool.may_resend(timed_out), "the proxy's own timeout closed it"


def test_a_get_whose_body_streams_never_goes_first_on_a_warm_connection():
    """Its body is gone once sent: a warm connection the site closes under it could not be replaced, and the
    client saw an error a new connection would not have given it."""
    pool = UpstreamPool(CollectorRegistry())
    streamed = request_flow(client_of(), lazy_server())
    streamed.request.stream, streamed.request.raw_content = True, None  # its connection is asked for at its head
    assert pool.must_dial(streamed)
    complete = request_flow(client_of(), lazy_server())
    complete.request.stream = True  # an HTTP/2 GET without content-length: `stream`, its empty body complete
    assert not pool.must_dial(complete)


def test_requests_waiting_for_a_warm_connection_that_failed_go_on_dialled_ones(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        client, server = await handed_warm(pool, site)
        pool._claim((HOST, 443))
        waiting = request_flow(client, server)
        assert pool.redial(server, "connection closed", [waiting])
        assert not pool.pooled(server)
        assert FlowRecord.of(waiting.metadata).resent
        assert pool.must_dial(waiting)

    running_pool(scenario)


def test_requests_the_upstream_timeout_gave_up_on_get_no_new_connection(running_pool):
    """The timeout closed the warm connection whose handshake the site never answered: a new one would wait as
    long, with no timer left to end it."""

    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        client, server = await handed_warm(pool, site)
        pool._claim((HOST, 443))
        waiting = request_flow(client, server)
        FlowRecord.of(waiting.metadata).timed_out = True
        assert not pool.redial(server, "connection closed", [waiting])
        assert not FlowRecord.of(waiting.metadata).resent

    running_pool(scenario)


def test_the_counter_says_which_connections_requests_used_once_each(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        client = client_of()
        first = request_flow(client, tflow.tserver_conn())
        await warmed(pool, site, first)
        pool.responseheaders(request_flow(client, first.server_conn))
        server = lazy_server()
        pool.server_connect(server_hooks.ServerConnectionHookData(server, client))
        pool._claim((HOST, 443))
        pool.responseheaders(request_flow(client, server))
        registry = pool.connections
        assert registry.labels("acme", NEW)._value.get() == 1
        assert registry.labels("acme", WARM)._value.get() == 1

    running_pool(scenario)


def test_a_client_leaving_closes_the_warm_socket_it_reserved_but_never_used(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        client, server = await handed_warm(pool, site)
        entry = pool.handed[server.id]
        pool.client_disconnected(client)
        assert entry.sock.fileno() == -1
        assert server.id not in pool.handed
        assert client.id not in pool.of_client

    running_pool(scenario)


def test_a_warm_socket_the_site_closed_is_not_alive(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        key = await warmed(pool, site, request_flow(client_of(), tflow.tserver_conn()))
        for writer in site.writers:
            writer.close()
        await asyncio.sleep(0.05)
        assert not any(entry.alive() for entry in pool.entries[key])
        server = lazy_server()
        pool.server_connect(server_hooks.ServerConnectionHookData(server, client_of()))
        assert not pool.pooled(server), "dead ones are retired, not handed out"

    running_pool(scenario)


def test_a_new_key_beyond_the_bound_closes_the_least_recently_used_keys_connections_at_once(running_pool, monkeypatch):
    """A client naming many hosts under a wildcard (or offering many ALPN lists) had the pool hold two
    connections for each, without limit."""
    monkeypatch.setattr(upstream_pool.Warmth, "MAX_KEYS", 2)

    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        keys = []
        for offers in ((b"a",), (b"b",)):
            keys.append(await warmed(pool, site, request_flow(client_of(offers=offers), lazy_server())))
        first = list(pool.entries[keys[0]])
        third = request_flow(client_of(offers=(b"c",)), lazy_server())
        pool.responseheaders(third)
        assert keys[0] not in pool.entries, "closed as the new key came, not at the next sweep"
        assert all(entry.sock.fileno() == -1 for entry in first)
        assert keys[0] not in pool.warmth
        assert keys[1] in pool.warmth
        assert pool.keys[third.server_conn.id] in pool.warmth

    running_pool(scenario)


def test_a_sites_in_flight_cap_bounds_its_warm_connections_across_its_keys(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        for offers in ((b"a",), (b"b",), (b"c",)):
            flow = request_flow(client_of(offers=offers), lazy_server())
            FlowRecord.of(flow.metadata).site = "default"
            pool.responseheaders(flow)
        await asyncio.sleep(0.3)  # time enough for six to open, were they allowed
        assert sum(len(entries) for entries in pool.entries.values()) == 2
        assert len(site.first_bytes) == 2

    running_pool(scenario, Settings(upstream_pool_size=2, max_in_flight=2))


def test_the_sites_alpn_choices_kept_are_bounded(running_pool):
    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        await warmed(pool, site, request_flow(client_of(), lazy_server()))
        for n in range(upstream_pool.SITE_ALPN_KEPT + 10):
            earlier = connection.Server(address=(HOST, 443), alpn=b"h2")
            offered = client_of(offers=(f"x-{n}".encode(),))
            pool.tls_established_server(tls.TlsData(earlier, context.Context(offered, tctx.options)))
        assert len(pool.site_alpn) == upstream_pool.SITE_ALPN_KEPT
        assert (HOST, 443, (f"x-{upstream_pool.SITE_ALPN_KEPT + 9}".encode(),)) in pool.site_alpn

    running_pool(scenario)


def test_connections_dialled_for_a_client_are_forgotten_when_it_leaves(running_pool):
    """A plain-http POST's connection (or any whose `server_connect` returned before taking) was kept in
    `dialled_ids` for ever: one entry per such request, for the proxy's whole life."""

    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        client = client_of()
        plain = connection.Server(address=("plain.example.test", 80), tls=False)
        pool.server_connect(server_hooks.ServerConnectionHookData(plain, client))  # eager: before the layer sees it
        pool.dialled(client, [plain])
        pool.client_disconnected(client)
        assert (pool.dialled_ids, pool.of_client) == (set(), {})

    running_pool(scenario)


def test_a_site_closing_waiting_connections_early_shortens_only_its_own_age_limit(running_pool):
    """One age limit for the whole pool: a site that gives up on handshakes after a second had every other
    site's warm connections replaced every 0.8 s, each replacement a handshake that site pays for."""

    async def scenario(pool: UpstreamPool, site: Site, tctx: taddons.context) -> None:
        keys = {}
        for name, offers in (("quick", (b"a",)), ("patient", (b"b",))):
            flow = request_flow(client_of(offers=offers), lazy_server())
            FlowRecord.of(flow.metadata).site = name
            keys[name] = await warmed(pool, site, flow)
        client, server = client_of(offers=(b"a",)), lazy_server()
        pool.server_connect(server_hooks.ServerConnectionHookData(server, client))
        pool.handed[server.id].created -= 0.5
        pool.redial(server, "connection closed", [])
        assert pool._age(keys["quick"]).current(time.monotonic()) < pool.limits.max_age
        assert pool._age(keys["patient"]).current(time.monotonic()) == pool.limits.max_age

    running_pool(scenario)

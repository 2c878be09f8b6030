"""The contract with mitmproxy's internals (issue 21 #4): each internal `addons/mitmproxy_internals.py` uses is
there and behaves as the proxy relies on, an incompatible mitmproxy stops the start with one line, and no other
module reaches past mitmproxy's API.

The layer tests feed mitmproxy's real HTTP layer events and answer its commands as its server would (`Driver`):
the same code paths a request takes, without sockets.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import html
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import mitmproxy.ctx
import pytest
from mitmproxy import connection, exceptions, http, version
from mitmproxy.addons.next_layer import NextLayer
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.addons.tlsconfig import TlsConfig
from mitmproxy.proxy import commands, context, events, layer, layers
from mitmproxy.proxy.layers.http import HttpErrorHook, HttpLayer, HTTPMode, HttpRequestHeadersHook, HttpRequestHook
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.proxy.server import SimpleConnectionHandler
from mitmproxy.test import taddons, tflow

from proxy_addon.addons import mitmproxy_internals as internals
from proxy_addon.addons.moves import remember_destination
from proxy_addon.addons.replies import proxy_reply
from proxy_addon.addons.wire import HELD_REPLY, HELD_STREAMED, MAX_HEAD_BYTES, MOVED, Wire
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import Refusal, message
from proxy_addon.policy.upstream_pool import replayable

from support.proxy import REPO

SECRET = "Basic c2VjcmV0LWZvci1jb250cmFjdA=="
PLACEHOLDER = "atlassian-auth-proxy-placeholder"
HEAD = (
    b"GET http://example.test/rest HTTP/1.1\r\nHost: example.test\r\nAuthorization: "
    + PLACEHOLDER.encode()
    + b"\r\n\r\n"
)
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
CLOSED = "server closed connection"
"""mitmproxy's error message when the upstream closes before its response: the page it renders for it."""


class Driver:
    """Feeds a layer events and answers its commands as mitmproxy's connection handler would.

    Hooks run `on_hook` and complete; connections open; each request the layer sends to a server
    is recorded and answered with `server_reply(connection)` (None: the server stays silent).
    """

    def __init__(
        self,
        layer: Any,
        on_hook: Callable[[commands.StartHook], None] = lambda hook: None,
        server_reply: Callable[[connection.Connection], events.Event | None] = lambda conn: None,
        on_open: Callable[[connection.Connection], str | None] = lambda conn: None,
    ) -> None:
        """`on_open(connection)` is the error a dial gets (None: it connects)."""
        self.layer, self.on_hook, self.server_reply, self.on_open = layer, on_hook, server_reply, on_open
        self.commands: list[commands.Command] = []
        self.to_server: list[bytes] = []

    def feed(self, *fed: events.Event) -> list[commands.Command]:
        pending, produced = list(fed), []
        while pending:
            for command in self.layer.handle_event(pending.pop(0)):
                produced.append(command)
                pending += self._answer(command)
        self.commands += produced
        return produced

    def _answer(self, command: commands.Command) -> list[events.Event]:
        if isinstance(command, commands.StartHook):
            self.on_hook(command)
            return [events.HookCompleted(command)]
        if isinstance(command, commands.OpenConnection):
            if (error := self.on_open(command.connection)) is not None:
                return [events.OpenConnectionCompleted(command, error)]
            command.connection.state = connection.ConnectionState.OPEN
            command.connection.timestamp_start = 1
            return [events.OpenConnectionCompleted(command, None)]
        if isinstance(command, commands.SendData) and command.connection is not self.layer.context.client:
            self.to_server.append(command.data)
            reply = self.server_reply(command.connection)
            return [reply] if reply is not None else []
        return []

    def to_client(self) -> bytes:
        client = self.layer.context.client
        return b"".join(c.data for c in self.commands if isinstance(c, commands.SendData) and c.connection is client)


def answer_ok(conn: connection.Connection) -> events.Event:
    return events.DataReceived(conn, OK)


def close_upstream(conn: connection.Connection) -> events.Event:
    return events.ConnectionClosed(conn)


@pytest.fixture
def tctx():
    with taddons.context(Proxyserver(), NextLayer()) as tctx:
        yield tctx


def client_context(alpn: bytes | None = None) -> context.Context:
    client = tflow.tclient_conn()
    client.state = connection.ConnectionState.OPEN
    client.proxy_mode = ProxyMode.parse("regular")
    client.alpn = alpn
    ctx = context.Context(client, mitmproxy.ctx.options)  # the options the tctx fixture loaded
    ctx.server.address = ("example.test", 443)
    return ctx


def extended_http_layer(wire: Wire, alpn: bytes | None = None) -> Any:
    """The layer a connection gets: mitmproxy's HttpLayer, as `NextLayer` built it, extended by `wire`."""
    ctx = client_context(alpn)
    nextlayer = layer.NextLayer(ctx)
    nextlayer.layer = HttpLayer(ctx, HTTPMode.regular if alpn is None else HTTPMode.transparent)
    internals.extend_http_layers(nextlayer, wire)
    return nextlayer.layer


def credential(flow: http.HTTPFlow) -> str | None:
    return SECRET


# The installed mitmproxy, and what an incompatible one does


def test_the_installed_mitmproxy_has_every_internal_in_the_expected_shape():
    assert internals.problems() == []
    internals.check()


def _hide_start_request_stream(monkeypatch):
    monkeypatch.delattr(layers.http.HttpStream, "start_request_stream")


def _hide_h2_error_page(monkeypatch):
    monkeypatch.delattr(internals.find("mitmproxy.proxy.layers.http._http2"), "format_error")


def _hide_read_headers(monkeypatch):
    monkeypatch.delattr(internals.find("mitmproxy.proxy.layers.http._http1.Http1Server"), "read_headers")


def _change_close_connection(monkeypatch):
    monkeypatch.setattr(internals.find("mitmproxy.proxy.server.ConnectionHandler"), "close_connection", lambda s: 0)


def _change_request_headers(monkeypatch):
    fields = internals.find("mitmproxy.proxy.layers.http._events.RequestHeaders").__dataclass_fields__
    monkeypatch.setitem(fields, "priority", fields["end_stream"])


def _move_error_page_rendering(monkeypatch):
    server = internals.find("mitmproxy.proxy.layers.http._http1.Http1Server")
    monkeypatch.setattr(server, "send", lambda self, event: iter(()))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_hide_start_request_stream, "mitmproxy.proxy.layers.http.HttpStream.start_request_stream is missing"),
        (_hide_h2_error_page, "mitmproxy.proxy.layers.http._http2.format_error is missing"),
        (_hide_read_headers, "mitmproxy.proxy.layers.http._http1.Http1Server.read_headers is missing"),
        (_change_close_connection, "ConnectionHandler.close_connection takes (s), expected (self, connection,"),
        (_change_request_headers, "RequestHeaders has fields ("),
        (_move_error_page_rendering, "Http1Server.send no longer uses make_error_response"),
    ],
)
def test_a_missing_or_changed_internal_is_named_in_one_line_with_the_version(monkeypatch, change, named):
    change(monkeypatch)
    with pytest.raises(exceptions.OptionsError) as refused:
        internals.check()
    line = str(refused.value)
    assert named in line
    assert line.startswith(f"mitmproxy {version.VERSION} is not compatible with atlassian-auth-proxy, which needs ")
    assert "\n" not in line


# The HTTP layer


def test_every_http_layer_in_the_decided_stack_is_extended_and_nothing_else(tctx):
    wire = Wire(credential)
    preset = extended_http_layer(wire)
    assert type(preset) is internals.WireLayer
    assert preset.wire is wire

    ctx = client_context()
    ctx.client.proxy_mode = ProxyMode.parse("reverse:https://example.test")
    layers.modes.ReverseProxy(ctx)
    nextlayer = layer.NextLayer(ctx)
    nextlayer.events.append(events.DataReceived(ctx.client, HEAD))
    internals.extend_http_layers(nextlayer, wire)  # nothing set yet: mitmproxy's NextLayer addon decides
    stack = []
    current = nextlayer.layer
    while current is not None:
        stack.append(type(current))
        current = getattr(current, "child_layer", None)
    assert stack == [layers.ServerTLSLayer, internals.WireLayer], "reverse https: TLS to the site, then HTTP"

    tcp = layer.NextLayer(client_context())
    tcp.layer = layers.TCPLayer(tcp.context)
    internals.extend_http_layers(tcp, wire)
    assert type(tcp.layer) is layers.TCPLayer, "a layer decided elsewhere is left as it is"


def test_the_head_sent_upstream_carries_the_credential_and_the_flow_keeps_the_placeholder(tctx):
    seen: list[http.HTTPFlow] = []
    driver = Driver(extended_http_layer(Wire(credential)), lambda hook: seen.append(hook.args()[0]), answer_ok)
    driver.feed(events.Start(), events.DataReceived(driver.layer.context.client, HEAD))
    assert driver.to_server == [
        HEAD.replace(b"http://example.test", b"").replace(PLACEHOLDER.encode(), SECRET.encode())
    ]
    assert driver.to_client().startswith(b"HTTP/1.1 200 OK")
    flow = seen[0]
    assert flow.request.headers["authorization"] == PLACEHOLDER
    assert SECRET not in repr(flow.get_state())


def test_a_held_request_gets_no_credential(tctx):
    def hold(hook: commands.StartHook) -> None:
        if isinstance(hook, HttpRequestHeadersHook):
            FlowRecord.of(hook.flow.metadata).held = True

    driver = Driver(extended_http_layer(Wire(credential)), on_hook=hold, server_reply=answer_ok)
    driver.feed(events.Start(), events.DataReceived(driver.layer.context.client, HEAD))
    assert PLACEHOLDER.encode() in driver.to_server[0]
    assert SECRET.encode() not in driver.to_server[0]


def test_a_held_request_that_begins_to_stream_is_refused_and_nothing_reaches_a_server(tctx):
    flows: list[http.HTTPFlow] = []

    def hold_and_stream(hook: commands.StartHook) -> None:
        if isinstance(hook, HttpRequestHeadersHook):
            FlowRecord.of(hook.flow.metadata).held = True
            hook.flow.request.stream = True  # another addon's choice; mitmproxy sends the head before `request`
            flows.append(hook.flow)

    driver = Driver(extended_http_layer(Wire(credential)), on_hook=hold_and_stream, server_reply=answer_ok)
    body = b"POST http://example.test/rest HTTP/1.1\r\nHost: example.test\r\nContent-Length: 4\r\n\r\n"
    produced = driver.feed(events.Start(), events.DataReceived(driver.layer.context.client, body))
    produced += driver.feed(events.DataReceived(driver.layer.context.client, b"body"))
    assert not any(isinstance(c, commands.OpenConnection) for c in produced)
    assert driver.to_server == []
    assert any(isinstance(c, HttpErrorHook) for c in produced)
    reply = driver.to_client()
    assert reply.startswith(b"HTTP/1.1 502 Bad Gateway")
    assert html.escape(HELD_REPLY).encode() in reply, "in mitmproxy's own error page"
    assert flows[0].error.msg == HELD_STREAMED
    assert FlowRecord.of(flows[0].metadata).decision is Decision.UNDECIDED


def test_a_credentialed_request_moved_after_its_verdict_opens_no_connection_and_sends_nothing(tctx):
    flows: list[http.HTTPFlow] = []

    def decide_then_move(hook: commands.StartHook) -> None:
        flow = hook.args()[0]
        if isinstance(hook, HttpRequestHeadersHook):
            record = FlowRecord.of(flow.metadata)
            record.decision, record.host = Decision.INJECT, "example.test"
            remember_destination(flow)
            flows.append(flow)
        elif isinstance(hook, HttpRequestHook):
            flow.request.host = "other.example.test"  # as map_remote or another script's `request` hook would

    driver = Driver(extended_http_layer(Wire(credential)), on_hook=decide_then_move, server_reply=answer_ok)
    produced = driver.feed(events.Start(), events.DataReceived(driver.layer.context.client, HEAD))
    assert not any(isinstance(c, commands.OpenConnection) for c in produced)
    assert driver.to_server == []
    assert any(isinstance(c, HttpErrorHook) for c in produced)
    reply = driver.to_client()
    assert reply.startswith(b"HTTP/1.1 502 Bad Gateway")
    assert html.escape(message(Refusal.MOVED, what="the destination", host="example.test")).encode() in reply
    assert flows[0].error.msg == MOVED
    assert FlowRecord.of(flows[0].metadata).decision is Decision.MOVED


def test_an_unfinished_head_one_byte_past_the_limit_gets_431_and_a_close(tctx):
    driver = Driver(extended_http_layer(Wire(credential)))
    client = driver.layer.context.client
    start = b"GET /x HTTP/1.1\r\nX-Fill: "
    driver.feed(events.Start(), events.DataReceived(client, start + b"a" * (MAX_HEAD_BYTES - len(start))))
    assert driver.commands == [], "an unfinished head of exactly the limit is kept"
    produced = driver.feed(events.DataReceived(client, b"a"))
    assert [type(c) for c in produced] == [commands.SendData, commands.CloseConnection]
    assert produced[0].data.startswith(b"HTTP/1.1 431 ")
    reader = driver.layer.connections[client]
    assert len(reader.buf) == 0
    assert reader.state == reader.done
    assert driver.feed(events.DataReceived(client, b"a" * 65536)) == [], "the reader is done with that client"


def test_unread_bytes_past_the_limit_while_a_response_is_awaited_close_without_an_answer(tctx):
    driver = Driver(extended_http_layer(Wire(credential)))  # the server never answers
    client = driver.layer.context.client
    driver.feed(events.Start(), events.DataReceived(client, HEAD))
    produced = driver.feed(events.DataReceived(client, b"a" * (MAX_HEAD_BYTES + 1)))
    assert [type(c) for c in produced] == [commands.CloseConnection]


# Error pages


def ours(message: str) -> http.Response | None:
    return proxy_reply(502, "ours") if message == CLOSED else None


@pytest.fixture
def our_error_pages():
    restore = internals.replace_error_pages(ours)
    yield
    restore()


def test_an_http1_client_gets_our_error_page(tctx, our_error_pages):
    driver = Driver(extended_http_layer(Wire(credential)), server_reply=close_upstream)
    driver.feed(events.Start(), events.DataReceived(driver.layer.context.client, HEAD))
    reply = driver.to_client()
    assert reply.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert reply.endswith(b"\r\n\r\natlassian-auth-proxy: ours\n")
    assert b"mitmproxy" not in reply


def test_an_http2_client_gets_our_error_body_under_mitmproxys_headers(tctx, our_error_pages):
    driver = Driver(extended_http_layer(Wire(credential), alpn=b"h2"), server_reply=close_upstream)
    h2_client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    h2_client.initiate_connection()
    request = [(":method", "GET"), (":scheme", "https"), (":authority", "example.test"), (":path", "/rest")]
    h2_client.send_headers(1, request, end_stream=True)
    driver.feed(events.Start(), events.DataReceived(driver.layer.context.client, h2_client.data_to_send()))
    received = h2_client.receive_data(driver.to_client())
    headers = next(e.headers for e in received if isinstance(e, h2.events.ResponseReceived))
    body = b"".join(e.data for e in received if isinstance(e, h2.events.DataReceived))
    assert dict(headers)[":status"] == "502"
    assert body == b"atlassian-auth-proxy: ours\n"


def test_every_http_version_renders_through_the_replaced_pages_until_restored():
    http1 = internals.find("mitmproxy.proxy.layers.http._http1")
    http2 = internals.find("mitmproxy.proxy.layers.http._http2")
    http3 = internals.find("mitmproxy.proxy.layers.http._http3")
    originals = (http1.make_error_response, http2.format_error, http3.format_error)
    restore = internals.replace_error_pages(ours)
    try:
        assert http1.make_error_response(502, CLOSED).endswith(b"atlassian-auth-proxy: ours\n")
        assert http2.format_error(502, CLOSED) == http3.format_error(502, CLOSED) == b"atlassian-auth-proxy: ours\n"
        assert b"<html>" in http3.format_error(400, "a client's own error"), "pages nobody replaced stay mitmproxy's"
    finally:
        restore()
    assert (http1.make_error_response, http2.format_error, http3.format_error) == originals


# Connections and name resolution


def test_closing_a_live_client_connection_through_its_handler():
    """As ClientLimits closes a client slow to send its head: mitmproxy's handler for it is found and closes it."""

    async def scenario() -> None:
        accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        server = await asyncio.start_server(lambda r, w: accepted.put_nowait((r, w)), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reading = asyncio.Event()

        def next_layer(nextlayer: layer.NextLayer) -> None:
            if nextlayer.data_client():
                reading.set()  # the handler is reading from the client

        with taddons.context(Proxyserver()) as tctx:
            peer_reader, peer_writer = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = await accepted.get()
            mode = ProxyMode.parse("regular")
            handler = SimpleConnectionHandler(reader, writer, tctx.options, mode, {"next_layer": next_layer})
            with tctx.master.addons.get("proxyserver").register_connection(handler.client.id, handler):
                running = asyncio.create_task(handler.handle_client())
                peer_writer.write(b"GET http://example.test/ HTTP/1.1\r\n")
                async with asyncio.timeout(10):
                    await reading.wait()
                assert not internals.close_connection(handler.client, tflow.tserver_conn()), "not one of its own"
                assert internals.close_connection(handler.client, handler.client)
                async with asyncio.timeout(10):
                    assert await peer_reader.read() == b"", "the peer sees the connection end"
                    await running
            assert not internals.close_connection(handler.client, handler.client), "already gone"
            peer_writer.close()
        server.close()

    asyncio.run(scenario())


def test_listen_addresses_come_from_the_proxyserver_addon():
    with taddons.context(Proxyserver()):
        assert internals.listen_addresses() == []
    with taddons.context():
        assert internals.listen_addresses() == [], "no proxyserver addon, nothing bound"


def test_name_resolution_is_redirected_below_asyncio_open_connection_and_restored():
    async def scenario() -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        asked: list[tuple[str, Any]] = []

        def target(host: str, at: Any) -> tuple[str, int] | None:
            asked.append((host, at))
            return ("127.0.0.1", port) if host == "acme.atlassian.invalid" else None

        restore = internals.redirect_name_resolution(loop, target)
        _, writer = await asyncio.open_connection("acme.atlassian.invalid", 443)
        assert writer.get_extra_info("peername")[:2] == ("127.0.0.1", port)
        writer.close()
        assert asked == [("acme.atlassian.invalid", 443)]
        restore()
        assert "getaddrinfo" not in vars(loop)
        with pytest.raises(socket.gaierror):
            await asyncio.open_connection("acme.atlassian.invalid", 443)
        server.close()

    asyncio.run(scenario())


# The upstream pool's side: warm connections handed over, replaced, and requests sent again


class FakePool:
    """The pool as `WireLayer` sees it (`PoolExtension`): the first connection opened is a warm one."""

    def __init__(self, every_method: bool = False) -> None:
        self.every_method = every_method
        self.warm: set[str] = set()
        self.now_dialling = False
        self.opened: list[tuple[connection.Connection, bool]] = []
        self.dialled_servers: list[connection.Connection] = []
        self.redialled: list[tuple[connection.Connection, str, int]] = []

    def opening(self, conn: connection.Connection) -> None:
        """Where `server_connect` would take a warm socket: the first connection not dialled."""
        if not self.now_dialling and not self.opened:
            self.warm.add(conn.id)
        self.opened.append((conn, self.now_dialling))

    def pooled(self, server: connection.Connection) -> bool:
        return server.id in self.warm

    def must_dial(self, flow: http.HTTPFlow) -> bool:
        return FlowRecord.of(flow.metadata).resent or not (self.every_method or replayable(flow.request.method))

    def dialling(self, client: connection.Client, now: bool) -> None:
        self.now_dialling = now

    def dialled(self, client: connection.Client, servers: list[connection.Connection]) -> None:
        self.dialled_servers += servers

    def redial(self, server: connection.Connection, error: str, flows: list[http.HTTPFlow]) -> bool:
        self.redialled.append((server, error, len(flows)))
        for waiting in flows:
            FlowRecord.of(waiting.metadata).resent = True
        return True

    def may_resend(self, flow: http.HTTPFlow) -> bool:
        record = FlowRecord.of(flow.metadata)
        if record.resent or not replayable(flow.request.method):
            return False
        record.resent = True
        return True


def pooled_layer(pool: FakePool) -> Any:
    layer_ = extended_http_layer(Wire(credential))
    nextlayer = layer.NextLayer(layer_.context)
    nextlayer.layer = layer_
    internals.share_pool(nextlayer, pool)
    assert layer_.pool is pool
    return layer_


def closing(*closes: bool) -> Callable[[connection.Connection], events.Event]:
    """The site's answer on each connection in turn: closed before any byte (True), or 200."""
    answers = iter(closes)

    def reply(conn: connection.Connection) -> events.Event:
        if next(answers, False):
            conn.state = connection.ConnectionState.CAN_WRITE  # as mitmproxy's handler marks a peer's close
            return events.ConnectionClosed(conn)
        return answer_ok(conn)

    return reply


def run_request(pool: FakePool, head: bytes, server_reply: Any, on_open: Any = None) -> tuple[Driver, list]:
    flows: list[http.HTTPFlow] = []

    def hooks(hook: commands.StartHook) -> None:
        if isinstance(hook, HttpRequestHeadersHook):
            flows.append(hook.flow)

    def opened(conn: connection.Connection) -> str | None:
        pool.opening(conn)
        return on_open(conn) if on_open else None

    driver = Driver(pooled_layer(pool), hooks, server_reply, opened)
    driver.feed(events.Start(), events.DataReceived(driver.layer.context.client, head))
    return driver, flows


def test_a_get_whose_warm_connection_closes_before_any_answer_goes_again_on_a_dialled_one(tctx):
    pool = FakePool()
    driver, flows = run_request(pool, HEAD, closing(True, False))
    sent = HEAD.replace(b"http://example.test", b"").replace(PLACEHOLDER.encode(), SECRET.encode())
    assert driver.to_server == [sent, sent], "the head again, with the credential only on the wire copy"
    assert driver.to_client().startswith(b"HTTP/1.1 200 OK")
    assert [dialled for _, dialled in pool.opened] == [False, True]
    assert pool.dialled_servers == [pool.opened[1][0]]
    assert FlowRecord.of(flows[0].metadata).resent
    assert flows[0].error is None
    assert flows[0].request.headers["authorization"] == PLACEHOLDER


def test_a_get_goes_again_only_once(tctx):
    pool = FakePool()
    driver, flows = run_request(pool, HEAD, closing(True, True))
    assert len(driver.to_server) == 2
    assert driver.to_client().startswith(b"HTTP/1.1 502 Bad Gateway")
    assert flows[0].error.msg == CLOSED


def test_a_post_on_a_warm_connection_that_closes_is_never_sent_again(tctx):
    pool = FakePool(every_method=True)  # even if POSTs were let onto warm connections
    post = b"POST http://example.test/rest HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\n{}"
    driver, flows = run_request(pool, post, closing(True, False))
    assert [data for data in driver.to_server if data.startswith(b"POST")] == [post[: post.index(b"{}")].replace(
        b"http://example.test", b"")], "one head, on one connection"  # fmt: skip
    assert len(pool.opened) == 1
    assert driver.to_client().startswith(b"HTTP/1.1 502 Bad Gateway")
    assert not FlowRecord.of(flows[0].metadata).resent


def test_a_request_that_must_not_go_first_on_a_warm_connection_opens_a_dialled_one(tctx):
    pool = FakePool()
    post = b"POST http://example.test/rest HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\n{}"
    driver, _ = run_request(pool, post, answer_ok)
    assert pool.opened[0][1] is True, "marked while mitmproxy opened it (its server_connect runs then)"
    assert pool.dialled_servers == [pool.opened[0][0]]
    assert pool.now_dialling is False
    assert driver.to_client().startswith(b"HTTP/1.1 200 OK")


def test_a_warm_connection_failing_its_handshake_is_replaced_for_the_requests_waiting_for_it(tctx):
    pool = FakePool()
    driver, flows = run_request(
        pool, HEAD, answer_ok, on_open=lambda conn: "connection closed" if conn.id in pool.warm else None
    )
    ((failed, error, waiting),) = pool.redialled
    assert (failed.id in pool.warm, error, waiting) == (True, "connection closed", 1)
    assert failed.error is None, "mitmproxy would answer later requests for its address with it"
    assert [dialled for _, dialled in pool.opened] == [False, True]
    assert len(driver.to_server) == 1, "nothing was sent on the failed one"
    assert driver.to_client().startswith(b"HTTP/1.1 200 OK")
    assert flows[0].error is None


def test_without_a_pool_a_closed_connection_is_mitmproxys_502(tctx):
    flows: list[http.HTTPFlow] = []
    driver = Driver(extended_http_layer(Wire(credential)), lambda hook: flows.append(hook.args()[0]), closing(True))
    driver.feed(events.Start(), events.DataReceived(driver.layer.context.client, HEAD))
    assert len(driver.to_server) == 1
    assert driver.to_client().startswith(b"HTTP/1.1 502 Bad Gateway")


def test_a_missing_pool_internal_turns_off_the_pool_not_the_proxy(monkeypatch):
    monkeypatch.delattr(HttpLayer, "register_connection")
    assert internals.problems() == []
    internals.check()
    assert "mitmproxy.proxy.layers.http.HttpLayer.register_connection is missing" in internals.unavailable(
        internals.POOL
    )


def test_the_installed_mitmproxy_has_every_internal_the_pool_uses():
    assert internals.unavailable(internals.POOL) == []


def test_a_claimed_socket_becomes_the_connection_and_other_dials_go_through_the_redirect():
    async def scenario() -> None:
        site = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = site.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        warm = await internals.dial("127.0.0.1", port)
        claims: list[tuple[str, int]] = []

        def claim(address: tuple[str, int]) -> socket.socket | None:
            claims.append(address)
            return warm if address == ("acme.atlassian.invalid", 443) else None

        undo_redirect = internals.redirect_name_resolution(
            loop, lambda host, at: ("127.0.0.1", port) if host == "other.atlassian.invalid" else None
        )
        undo_hand_over = internals.hand_over_connections(loop, claim)
        _, writer = await asyncio.open_connection("acme.atlassian.invalid", 443)
        assert writer.get_extra_info("socket").fileno() == warm.fileno()
        _, other = await asyncio.open_connection("other.atlassian.invalid", 443)
        assert other.get_extra_info("peername")[:2] == ("127.0.0.1", port)
        assert claims == [("acme.atlassian.invalid", 443), ("other.atlassian.invalid", 443)]
        writer.close()
        other.close()
        undo_redirect()
        undo_hand_over()
        assert "create_connection" not in vars(loop)
        assert "getaddrinfo" not in vars(loop)
        site.close()

    asyncio.run(scenario())


def test_a_claimed_socket_reset_before_it_becomes_a_transport_fails_as_a_dial_does():
    async def scenario() -> None:
        site = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = site.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        dead = socket.socket()
        dead.setblocking(False)  # never connected: no peer, as after a reset
        undo = internals.hand_over_connections(loop, lambda address: dead)
        with pytest.raises(ConnectionResetError):
            await asyncio.open_connection("127.0.0.1", port)
        undo()
        site.close()

    asyncio.run(scenario())


def test_tlsconfig_builds_a_warm_connection_as_it_would_a_new_one(tctx):
    tctx.master.addons.add(TlsConfig())
    inputs = internals.TlsInputs("acme.atlassian.net", 443, "acme.atlassian.net", (), (), "acme.atlassian.net",
                                 (b"h2", b"http/1.1"))  # fmt: skip
    first, server = internals.server_tls(inputs)
    again, _ = internals.server_tls(inputs)
    assert first.get_context() is again.get_context(), "one cached SSL.Context for equal inputs"
    assert (server.sni, server.alpn_offers) == ("acme.atlassian.net", (b"h2", b"http/1.1"))
    other, _ = internals.server_tls(dataclasses.replace(inputs, server_ciphers=("ECDHE-RSA-AES128-GCM-SHA256",)))
    assert other.get_context() is not first.get_context()


# The door is the only one


PRIVATE = ("mitmproxy.proxy.layers.http._",)
REACH_INS = frozenset({"transports", "listen_addrs", "getaddrinfo", "event_to_child", "make_stream", "streams"})


def reach_ins(path: Path) -> list[str]:
    """Where `path` imports a private mitmproxy module or name, or uses an internal this module owns."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        elif isinstance(node, ast.Attribute) and (node.attr in REACH_INS or node.attr == "__class__"):
            if node.attr != "__class__" or isinstance(node.ctx, ast.Store):
                found.append(f"{path.name}:{node.lineno} .{node.attr}")
            continue
        else:
            continue
        found += [f"{path.name}:{node.lineno} {name}" for name in names if name.startswith(PRIVATE)]
    return found


def test_only_the_internals_module_reaches_into_mitmproxy():
    package = REPO / "proxy_addon"
    door = package / "addons" / "mitmproxy_internals.py"
    assert reach_ins(door), "the scan finds what the door itself does"
    elsewhere = [hit for path in sorted(package.rglob("*.py")) if path != door for hit in reach_ins(path)]
    assert elsewhere == []


def test_every_internal_is_documented():
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text.split("## mitmproxy internals", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"[A-Za-z_]\w*", section))
    assert {item.path.rsplit(".", 1)[1] for item in internals.INTERNALS} - named == set()

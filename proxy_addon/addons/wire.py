"""The credential goes on the wire, never into the flow; request heads are bounded while they arrive.

mitmproxy serializes a request from the flow's own `Request` object when its HTTP layer hands the
head to the server connection, and that moment is not a hook: on a reused connection it follows
the `request` hook at once, on a new one it follows the upstream TLS handshake. Every addon, a
saved flow (`mitmdump -w`) and mitmweb read that same object, at any time. So the flow only ever
holds a placeholder, and the HTTP layer hands the server connection a copy of the request that
carries the real value in place of it: nothing a hook, a dump or a crash can reach ever held it.

mitmproxy's HTTP/1 reader keeps an unfinished request head in one growing buffer, without limit
("FIXME: protect against header size DoS" in `Http1Server.read_headers`). The same layer looks at
that buffer after each read from the client: an unfinished head over `MAX_HEAD_BYTES` is answered
`431` and the connection closed, before the next read, so the memory stays within one read of
the limit, with or without a proxy login.

A request a boundary holds until it has judged the body (the record's `held`) must not leave
before that verdict, yet mitmproxy's HTTP stream starts streaming a request on its own once the
body passes `stream_large_bodies` (SafeOptions refuses such a setting; another addon may still
set `stream`). `WireStream`, the layer's streams, answers such a request itself instead of
streaming it, and no held request's head ever gets the credential.

All live in `WireLayer`, mitmproxy's `HttpLayer` with those additions. mitmproxy's own
`NextLayer` addon still decides every layer stack; `Wire.next_layer` only gives each `HttpLayer`
in it this subclass, which adds methods but no state, before the layer sees its first event, and
the layer gives each `HttpStream` it makes the `WireStream` subclass the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from typing import Any

from mitmproxy import ctx, flow, http
from mitmproxy.net.http import http1
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers.http import ErrorCode, HttpErrorHook, HttpLayer, HttpStream, ResponseProtocolError, SendHttp
from mitmproxy.proxy.layers.http._events import RequestHeaders
from mitmproxy.proxy.layers.http._http1 import Http1Server

from proxy_addon.addons.replies import made
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import MAX_HEAD_BYTES, Refusal

logger = logging.getLogger(__name__)

HELD_STREAMED = "a request held for its verdict began to stream; refused"
"""The flow's error, for the log. The reply has a text of its own: `UpstreamFaults` swaps the error
page whose text is the flow's error for an upstream-fault page, and this is none."""
HELD_REPLY = (
    "atlassian-auth-proxy: this request's body must be judged before it is sent, and mitmproxy began to stream it "
    "(stream_large_bodies, or another addon); it was not sent"
)

WireCredential = Callable[[http.HTTPFlow], str | None]
"""The Authorization value a flow's request carries on the wire, or None to send it as the flow holds it."""


def with_authorization(request: http.Request, value: str) -> http.Request:
    """A copy of `request` whose Authorization header (the placeholder) is `value`; `request` is left as it is.

    Shallow: the copy shares the body and every other field, and gets its own header list. (Its
    `Request.copy()` serializes and rebuilds the whole request, about ten times the cost, on
    every credentialed request; `copy.copy` goes through `__reduce_ex__`, twice the cost of
    taking over the attributes directly.)
    """
    encoded = value.encode("latin-1")
    fields = [(name, encoded) if name.lower() == b"authorization" else (name, v) for name, v in request.headers.fields]
    data = _shallow(request.data)
    data.headers = http.Headers(fields)
    copied = _shallow(request)
    copied.data = data
    return copied


def _shallow[T](original: T) -> T:
    """A new object of `original`'s class holding the same attributes; no `__init__` runs."""
    twin = object.__new__(type(original))
    twin.__dict__.update(original.__dict__)
    return twin


def head_too_large() -> bytes:
    return http1.assemble_response(made(Refusal.HEAD_UNFINISHED, limit=MAX_HEAD_BYTES))


class WireLayer(HttpLayer):
    """mitmproxy's HTTP layer; the credential is added to the copy sent upstream, and heads are bounded."""

    credential: WireCredential

    def event_to_child(self, child: Any, event: events.Event) -> Generator[commands.Command, Any, None]:
        """mitmproxy's routing, given the credentialed copy of a head bound for a server connection.

        It returns mitmproxy's own generator rather than wrapping it: this runs for every event at
        every level of the layer's routing (about 27 times per request), and each wrapping
        generator would relay every command; the exact-type test rules out all other events first.
        """
        if type(event) is RequestHeaders and not isinstance(child, HttpStream):
            event = self._with_credential(event)
        return HttpLayer.event_to_child(self, child, event)

    def make_stream(self, stream_id: int) -> Generator[commands.Command, Any, None]:
        yield from HttpLayer.make_stream(self, stream_id)
        self.streams[stream_id].__class__ = WireStream

    def _handle_event(self, event: events.Event) -> Generator[commands.Command, Any, None]:
        if isinstance(event, events.DataReceived) and event.connection is self.context.client:
            return self._read_from_client(event)
        return super()._handle_event(event)

    def _read_from_client(self, event: events.DataReceived) -> Generator[commands.Command, Any, None]:
        yield from super()._handle_event(event)
        yield from self._bound_head()

    def _with_credential(self, event: RequestHeaders) -> RequestHeaders:
        """A request head on its way to a server: the copy the wire gets carries the credential."""
        stream_flow = getattr(self.streams.get(event.stream_id), "flow", None)
        if stream_flow is None or FlowRecord.of(stream_flow.metadata).held:
            return event
        value = self.credential(stream_flow)
        if value is None:
            return event
        request = with_authorization(event.request, value)
        return RequestHeaders(event.stream_id, request, event.end_stream, event.replay_flow)

    def _bound_head(self) -> Generator[commands.Command, Any, None]:
        """Close a client whose unread bytes outgrow a request head: 431 while it sends one, else just close."""
        reader = self.connections.get(self.context.client)
        if not isinstance(reader, Http1Server) or len(reader.buf) <= MAX_HEAD_BYTES:
            return
        reading_head = reader.state == reader.read_headers
        if not reading_head and reader.state != reader.wait:
            return
        peer = self.context.client.peername
        logger.info(
            "closing a client that sent more than %d bytes of request head (%s)", MAX_HEAD_BYTES, peer and peer[0]
        )
        reader.buf = type(reader.buf)()
        reader.state = reader.done
        if reading_head:
            yield commands.SendData(self.context.client, head_too_large())
        yield commands.CloseConnection(self.context.client)


class WireStream(HttpStream):
    """mitmproxy's HTTP stream; a request held for its verdict is answered instead of streamed.

    `start_request_stream` is where mitmproxy sends a streaming request's head, before the
    `request` hook: after `requestheaders` when `stream` is set, or from its body-size check once
    a buffered body passes `stream_large_bodies`. A held request is refused there as mitmproxy
    refuses a body over `body_size_limit`: an error hook, an error reply to the client, and
    every later event of the stream dropped, so nothing of it reaches a server.
    """

    def start_request_stream(self) -> Generator[commands.Command, Any, None]:
        if FlowRecord.of(self.flow.metadata).held:
            return self._refuse_held()
        return HttpStream.start_request_stream(self)

    def _refuse_held(self) -> Generator[commands.Command, Any, None]:
        FlowRecord.of(self.flow.metadata).decision = Decision.UNDECIDED
        self.flow.error = flow.Error(HELD_STREAMED)
        yield HttpErrorHook(self.flow)
        yield SendHttp(
            ResponseProtocolError(self.stream_id, HELD_REPLY, ErrorCode.GENERIC_SERVER_ERROR), self.context.client
        )
        self.flow.live = False
        self.client_state = self.server_state = self.state_errored


class Wire:
    """Gives every HTTP layer mitmproxy builds the `WireLayer` behaviour, with `credential` as its source."""

    def __init__(self, credential: WireCredential) -> None:
        self.credential = credential

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        decide = getattr(ctx.master.addons.get("nextlayer"), "next_layer", None)
        if decide is not None and nextlayer.layer is None:
            decide(nextlayer)  # mitmproxy's own choice; it leaves a layer set before it alone
        current: Any = nextlayer.layer
        while current is not None:
            if type(current) is HttpLayer:
                current.__class__ = WireLayer
                current.credential = self.credential
            current = getattr(current, "child_layer", None)

"""Every use of mitmproxy's internals, behind one door that is checked before the proxy starts.

mitmproxy's addon API (hooks, flows, options) cannot express six things this proxy must do:
put the credential only into the copy of a request head its HTTP layer sends, bound a request
head while it arrives, refuse a held request that begins to stream or a request moved after its
verdict, replace the error page its layers render, close a live connection, and hand mitmproxy a
warm upstream connection (and send a request again when one closes under it). CONNECT_TO also
redirects the event loop's name resolution, and the start-up checks read the addresses mitmproxy
really bound. Those reach past the API, into code mitmproxy may change in any release, so they
all live here: the modules that need them call the functions below and touch no internal
themselves.

Each internal is looked up by name once, when this module loads, and never fails there: one
that is missing leaves a stand-in. `check()` looks every one up again and verifies its shape
(attributes, parameters, which global a method reads); the root addon calls it in `configure`,
which `run` and mitmdump both reach before they listen, so an incompatible mitmproxy stops the
start with one line naming its version and what is missing, instead of failing at the first request.
docs/architecture.md ("mitmproxy internals") says what each is for and what breaks without it;
tests/addons/test_mitmproxy_internals.py pins how each behaves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import importlib.metadata
import inspect
import socket
from collections.abc import Callable, Generator, Mapping
from typing import Any, Protocol

from mitmproxy import connection, ctx, exceptions, flow, http, tls, version
from OpenSSL import SSL


class Missing:
    """Stands in for an internal the installed mitmproxy lacks; `check()` names it before anything uses it."""


@dataclasses.dataclass(frozen=True)
class Internal:
    """One internal by its dotted path, and the shape this module relies on."""

    path: str
    params: tuple[str, ...] | None = None
    """It is callable and its parameters start with these names (a class: its constructor's)."""
    methods: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Methods defined on it, each with the parameter names it starts with."""
    attributes: tuple[str, ...] = ()
    """Attributes its instances have: annotated on the class or set by its code."""
    members: tuple[str, ...] = ()
    """Attributes of the object itself (enum members)."""
    fields: tuple[str, ...] | None = None
    """A dataclass with exactly these fields, in this order (it is rebuilt field by field)."""
    reads: Mapping[str, str | tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Method -> the global or attribute names it looks up when it runs (what is replaced, wrapped or relied on)."""
    instance_dict: bool = False
    """Instances keep their state in `__dict__` (a class swap, a shallow copy)."""
    feature: str | None = None
    """Only this optional feature needs it: without it the feature is off (`unavailable`), the proxy still starts."""

    def problems(self) -> list[str]:
        found = find(self.path)
        if found is Missing:
            return [f"{self.path} is missing"]
        problems = []
        if self.params is not None:
            problems += _signature_problems(self.path, found, self.params)
        for name, params in self.methods.items():
            method = getattr(found, name, None)
            if not callable(method) or getattr(method, "__isabstractmethod__", False):
                problems.append(f"{self.path}.{name} is missing")
            else:
                problems += _signature_problems(f"{self.path}.{name}", method, params)
        problems += [f"{self.path} has no {name}" for name in self.members if not hasattr(found, name)]
        names = _names_used(found) if self.attributes else set()
        problems += [f"{self.path} instances have no {name}" for name in self.attributes if name not in names]
        if self.fields is not None:
            have = tuple(f.name for f in dataclasses.fields(found)) if dataclasses.is_dataclass(found) else None
            if have != self.fields:
                problems.append(f"{self.path} has fields {have}, expected {self.fields}")
        for name, read in self.reads.items():
            method = getattr(found, name, None)
            if method is None:
                if name not in self.methods:  # a listed method's absence is named above
                    problems.append(f"{self.path}.{name} is missing")
                continue
            code = getattr(inspect.unwrap(method), "__code__", None)  # past mitmproxy's `@expect`
            for used in (read,) if isinstance(read, str) else read:
                if code is None or used not in code.co_names:
                    problems.append(f"{self.path}.{name} no longer uses {used}")
        if self.instance_dict and not getattr(found, "__dictoffset__", 0):
            problems.append(f"{self.path} instances have no __dict__")
        return problems


def find(path: str) -> Any:
    """The object at dotted `path` (the longest importable module, then attributes), or `Missing`."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name, Missing)
            if found is Missing:
                return Missing
        return found
    return Missing


def _signature_problems(path: str, target: Any, expected: tuple[str, ...]) -> list[str]:
    try:
        names = tuple(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return [f"{path} is not callable"]
    if names[: len(expected)] != expected:
        return [f"{path} takes ({', '.join(names)}), expected ({', '.join(expected)}, ...)"]
    return []


def _names_used(cls: Any) -> set[str]:
    """Names a class and its bases annotate or use in their code: where an instance attribute shows."""
    names: set[str] = set()
    for klass in getattr(cls, "__mro__", ()):
        names.update(vars(klass).get("__annotations__", {}))
        for value in vars(klass).values():
            code = getattr(value, "__code__", None)
            if code is not None:
                names.update(code.co_names)
    return names


INTERNALS: list[Internal] = []


def internal(path: str, stand_in: Any = Missing, **shape: Any) -> Any:
    """Record an internal for `check()` and return it now (or `stand_in`, if this mitmproxy lacks it)."""
    INTERNALS.append(Internal(path, **shape))
    found = find(path)
    return stand_in if found is Missing else found


def problems() -> list[str]:
    """What the installed mitmproxy lacks of the internals this proxy needs; empty when compatible."""
    return [problem for item in INTERNALS if item.feature is None for problem in item.problems()]


def unavailable(feature: str) -> list[str]:
    """What the installed mitmproxy lacks of the internals `feature` uses; empty when it can be on."""
    return [problem for item in INTERNALS if item.feature == feature for problem in item.problems()]


def check() -> None:
    """Refuse to start on a mitmproxy whose internals differ from what this proxy relies on.

    Raises mitmproxy's `OptionsError` with one line: mitmdump exits 1 on it, `run` 2.
    """
    if found := problems():
        raise exceptions.OptionsError(
            f"mitmproxy {version.VERSION} is not compatible with atlassian-auth-proxy, which needs "
            f"{required_mitmproxy()}: {'; '.join(found)}"
        )


def required_mitmproxy() -> str:
    """The mitmproxy versions this package declares it works with."""
    try:
        requires = importlib.metadata.requires("atlassian-auth-proxy") or []
    except importlib.metadata.PackageNotFoundError:
        requires = []
    return next((r for r in requires if r.startswith("mitmproxy")), "the mitmproxy version pyproject.toml names")


# The HTTP layer: the credential on the wire, bounded heads, held requests never streamed.

HttpLayer = internal(
    "mitmproxy.proxy.layers.http.HttpLayer",
    object,
    methods={
        "event_to_child": ("self", "child", "event"),
        "_handle_event": ("self", "event"),
        "make_stream": ("self", "stream_id"),
    },
    attributes=("context", "streams", "connections"),
    instance_dict=True,
)
HttpStream = internal(
    "mitmproxy.proxy.layers.http.HttpStream",
    object,
    methods={
        "start_request_stream": ("self",),
        "state_errored": ("self",),
        "make_server_connection": ("self",),
        "state_consume_request_body": ("self", "event"),
    },
    attributes=("context", "flow", "stream_id", "client_state", "server_state"),
    reads={
        "start_request_stream": "make_server_connection",
        "state_consume_request_body": "make_server_connection",
    },
    instance_dict=True,
)
RequestHeaders = internal(
    "mitmproxy.proxy.layers.http._events.RequestHeaders", fields=("stream_id", "request", "end_stream", "replay_flow")
)

POOL = "the upstream pool"
"""The optional feature of `addons/upstream_pool.py`: its internals are below, each marked with it."""

internal(
    "mitmproxy.proxy.layers.http.HttpLayer",
    methods={"get_connection": ("self", "event"), "register_connection": ("self", "command")},
    attributes=("command_sources", "waiting_for_establishment"),
    reads={"event_to_child": ("get_connection", "register_connection")},
    feature=POOL,
)
internal(
    "mitmproxy.proxy.layers.http.HttpStream",
    methods={
        "handle_protocol_error": ("self", "event"),
        "state_done": ("self",),
        "state_wait_for_response_headers": ("self",),
    },
    reads={"_handle_event": "handle_protocol_error", "handle_connect_regular": ("response", "OpenConnection")},
    feature=POOL,
)
RequestData = internal("mitmproxy.proxy.layers.http._events.RequestData", params=("stream_id", "data"), feature=POOL)
RequestTrailers = internal(
    "mitmproxy.proxy.layers.http._events.RequestTrailers", params=("stream_id", "trailers"), feature=POOL
)
RequestEndOfMessage = internal(
    "mitmproxy.proxy.layers.http._events.RequestEndOfMessage", params=("stream_id",), feature=POOL
)
internal(
    "mitmproxy.proxy.layers.http.GetHttpConnection",
    methods={"connection_spec_matches": ("self", "connection")},
    attributes=("address",),
    feature=POOL,
)
internal("mitmproxy.proxy.layers.http.RegisterHttpConnection", attributes=("connection", "err"), feature=POOL)
Http1Server = internal(
    "mitmproxy.proxy.layers.http._http1.Http1Server",
    methods={"read_headers": ("self", "event"), "wait": ("self", "event"), "done": ("self", "event")},
    attributes=("buf", "state"),
    reads={"send": "make_error_response"},
)
RequestEndOfMessage = internal("mitmproxy.proxy.layers.http._events.RequestEndOfMessage", params=("stream_id",))
HttpErrorHook = internal("mitmproxy.proxy.layers.http.HttpErrorHook", params=("flow",))
SendHttp = internal("mitmproxy.proxy.layers.http.SendHttp", params=("event", "connection"))
ResponseProtocolError = internal(
    "mitmproxy.proxy.layers.http.ResponseProtocolError", params=("stream_id", "message", "code")
)
ErrorCode = internal("mitmproxy.proxy.layers.http.ErrorCode", members=("GENERIC_SERVER_ERROR",))
SendData = internal("mitmproxy.proxy.commands.SendData", params=("connection", "data"))
CloseConnection = internal("mitmproxy.proxy.commands.CloseConnection", params=("connection",))
DataReceived = internal("mitmproxy.proxy.events.DataReceived", params=("connection", "data"))
internal("mitmproxy.proxy.layer.NextLayer", attributes=("layer",))
internal("mitmproxy.proxy.tunnel.TunnelLayer", attributes=("child_layer",))
NextLayerAddon = internal("mitmproxy.addons.next_layer.NextLayer", methods={"next_layer": ("self", "nextlayer")})
internal("mitmproxy.http.Request", attributes=("data",), instance_dict=True)
internal("mitmproxy.http.RequestData", attributes=("headers",), instance_dict=True)
assemble_response = internal("mitmproxy.net.http.http1.assemble_response", params=("response",))

Events = Generator[Any, Any, None]


class HttpExtension(Protocol):
    """What `WireLayer` asks of its owner (`addons/wire.py`); the decisions stay there, the mechanics here."""

    head_limit: int
    """Bytes an unfinished HTTP/1 request head may reach before the client is cut off."""

    def credential(self, flow: http.HTTPFlow) -> str | None:
        """The Authorization value the copy of `flow`'s head sent upstream carries; None: send it as it is."""

    def head_overflow(self, client: connection.Client, reading_head: bool) -> http.Response | None:
        """A client's unread bytes passed `head_limit`: the reply to send before closing (None: just close)."""

    def stream_refusal(self, flow: http.HTTPFlow) -> tuple[str, str] | None:
        """Why `flow` must not begin to stream: (the flow's error, the client's reply), or None to stream it."""

    def send_refusal(self, flow: http.HTTPFlow) -> tuple[str, str] | None:
        """Why `flow` must not be sent at all, asked after every request hook: (error, reply), or None to send it."""


class PoolExtension(Protocol):
    """What `WireLayer` asks of the upstream pool (`addons/upstream_pool.py`) once `share_pool` gave it one."""

    def pooled(self, server: connection.Connection) -> bool:
        """`server` is a connection the pool handed out (warm, never used before this client)."""

    def must_dial(self, flow: http.HTTPFlow) -> bool:
        """`flow` must not be the first request on a warm connection: a new one it gets is dialled."""

    def dialling(self, client: connection.Client, now: bool) -> None:
        """While `now`, each connection `client` opens is dialled, never taken from the pool (mitmproxy starts
        a connection's task eagerly: its `server_connect` runs before the layer sees the connection)."""

    def dialled(self, client: connection.Client, servers: list[connection.Connection]) -> None:
        """These new connections are dialled, never taken from the pool (where their `server_connect` is yet to run)."""

    def redial(self, server: connection.Connection, error: str, flows: list[http.HTTPFlow]) -> bool:
        """`server`, a warm connection, failed before its TLS handshake ended; `flows` waited for it and
        are sent on a new one (nothing of them left). False: they fail with `error` instead."""

    def may_resend(self, flow: http.HTTPFlow) -> bool:
        """The warm connection that took `flow`'s head closed before any byte of an answer: send it again?"""


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


# HttpLayer is looked up by name at load (see `internal`), a value mypy cannot use as a base class.
class WireLayer(HttpLayer):  # type: ignore[misc,valid-type]
    """mitmproxy's HTTP layer; heads bound for a server get the credential, client heads are bounded.

    It adds methods and one attribute (`wire`), no other state: `extend_http_layers` gives a layer
    mitmproxy's `NextLayer` just built this class before the layer sees its first event.
    """

    wire: HttpExtension
    pool: PoolExtension | None = None
    """The upstream pool (`share_pool`); None: mitmproxy picks and opens server connections as it does."""

    def event_to_child(self, child: Any, event: Any) -> Events:
        """mitmproxy's routing, given the credentialed copy of a head bound for a server connection.

        It returns mitmproxy's own generator rather than wrapping it: this runs for every event at
        every level of the layer's routing (about 27 times per request), and each wrapping
        generator would relay every command; the exact-type test rules out all other events first.
        """
        if type(event) is RequestHeaders and not isinstance(child, HttpStream):
            event = self._with_credential(event)
        return HttpLayer.event_to_child(self, child, event)

    def make_stream(self, stream_id: int) -> Events:
        yield from HttpLayer.make_stream(self, stream_id)
        stream = self.streams[stream_id]
        stream.__class__ = WireStream
        stream.wire = self.wire
        if self.pool is not None:
            stream.pool = self.pool

    def get_connection(self, event: Any, *, reuse: bool = True) -> Events:
        """mitmproxy's choice of a server connection; with a pool, a request that must not go first on a
        warm connection (`must_dial`) neither joins one still in its handshake nor gets one: the
        connection opened for it is dialled."""
        pool = self.pool
        if pool is not None:
            stream_flow = getattr(self.command_sources.get(event), "flow", None)
            if stream_flow is not None and pool.must_dial(stream_flow):
                return self._dial(pool, event, reuse)
        return HttpLayer.get_connection(self, event, reuse=reuse)

    def _dial(self, pool: PoolExtension, event: Any, reuse: bool) -> Events:
        waiting = self.waiting_for_establishment
        joins_warm = any(c in waiting and pool.pooled(c) and event.connection_spec_matches(c) for c in self.connections)
        before = set(self.connections)
        pool.dialling(self.context.client, True)
        try:
            yield from HttpLayer.get_connection(self, event, reuse=reuse and not joins_warm)
        finally:
            pool.dialling(self.context.client, False)
        pool.dialled(self.context.client, [c for c in self.connections if c not in before])

    def register_connection(self, command: Any) -> Events:
        """A warm connection that failed before its TLS handshake ended (the site closed it, or any
        handshake error) held no request yet: every request waiting for it gets a new connection,
        dialled, whose own handshake decides; the failed one stays known until its close arrives."""
        pool = self.pool
        if pool is None or command.err is None or not pool.pooled(command.connection):
            return HttpLayer.register_connection(self, command)
        return self._redial(pool, command)

    def _redial(self, pool: PoolExtension, command: Any) -> Events:
        failed = command.connection
        waiting = self.waiting_for_establishment.get(failed, [])
        flows = [flow for cmd in waiting if (flow := getattr(self.command_sources.get(cmd), "flow", None))]
        if not pool.redial(failed, command.err, flows):
            yield from HttpLayer.register_connection(self, command)
            return
        del self.waiting_for_establishment[failed]
        failed.error = None  # else mitmproxy answers every later request for this address with it
        for cmd in waiting:
            yield from self.get_connection(cmd)

    def _handle_event(self, event: Any) -> Events:
        if isinstance(event, DataReceived) and event.connection is self.context.client:
            return self._read_from_client(event)
        return HttpLayer._handle_event(self, event)

    def _read_from_client(self, event: Any) -> Events:
        yield from HttpLayer._handle_event(self, event)
        yield from self._bound_head()

    def _with_credential(self, event: Any) -> Any:
        stream_flow = getattr(self.streams.get(event.stream_id), "flow", None)
        if stream_flow is None:
            return event
        value = self.wire.credential(stream_flow)
        if value is None:
            return event
        request = with_authorization(event.request, value)
        return RequestHeaders(event.stream_id, request, event.end_stream, event.replay_flow)

    def _bound_head(self) -> Events:
        """mitmproxy's HTTP/1 reader keeps an unfinished head in one growing buffer, without limit: past
        `head_limit` (checked after each read, so within one read of it) the buffer is dropped, the
        reader stopped and the client closed, answered first if it was sending a head."""
        reader = self.connections.get(self.context.client)
        if not isinstance(reader, Http1Server) or len(reader.buf) <= self.wire.head_limit:
            return
        reading_head = reader.state == reader.read_headers
        if not reading_head and reader.state != reader.wait:
            return
        reply = self.wire.head_overflow(self.context.client, reading_head)
        reader.buf = type(reader.buf)()
        reader.state = reader.done
        if reply is not None:
            yield SendData(self.context.client, assemble_response(reply))
        yield CloseConnection(self.context.client)


# HttpStream is looked up by name at load too.
class WireStream(HttpStream):  # type: ignore[misc,valid-type]
    """mitmproxy's HTTP stream; a request its owner refuses to stream is answered instead.

    `start_request_stream` is where mitmproxy sends a streaming request's head, before the
    `request` hook: after `requestheaders` when `stream` is set, or from its body-size check once
    a buffered body passes `stream_large_bodies`. `make_server_connection` is where both that
    and a buffered request, after its `request` hook, get their server connection. A refused
    request is handled as mitmproxy refuses a body over `body_size_limit`: an error hook, an
    error reply to the client, and every later event of the stream dropped, so nothing of it
    reaches a server.
    """

    wire: HttpExtension
    pool: PoolExtension | None = None

    def start_request_stream(self) -> Events:
        if self.flow.response is not None:
            return self._drop_request_body()
        refusal = self.wire.stream_refusal(self.flow)
        if refusal is None:
            return HttpStream.start_request_stream(self)
        return self._refuse(*refusal)

    def make_server_connection(self) -> Generator[Any, Any, bool]:
        """Where mitmproxy picks the server connection for the request as the hooks left it, right before it
        sends the head (streamed or buffered); a refused request opens none and sends nothing."""
        refusal = self.wire.send_refusal(self.flow)
        if refusal is None:
            return (yield from HttpStream.make_server_connection(self))
        yield from self._refuse(*refusal)
        return False

    def handle_protocol_error(self, event: Any) -> Events:
        """mitmproxy ends the flow with an error here; a request whose warm connection closed after
        taking its head and before any byte of an answer is sent again instead, if the pool agrees."""
        pool = self.pool
        if pool is not None and type(event) is ResponseProtocolError and self._closed_before_answer(pool):
            return self._resend()
        return HttpStream.handle_protocol_error(self, event)

    def _closed_before_answer(self, pool: PoolExtension) -> bool:
        stream_flow = getattr(self, "flow", None)
        if stream_flow is None or stream_flow.response is not None or stream_flow.request.raw_content is None:
            return False  # answered, or a body streamed away that cannot be sent again
        server = stream_flow.server_conn
        return (
            self.client_state == self.state_done
            and self.server_state == self.state_wait_for_response_headers
            and not server.connected
            and pool.pooled(server)
            and pool.may_resend(stream_flow)
        )

    def _resend(self) -> Events:
        """The request again, on a connection mitmproxy picks as for the first (`make_server_connection`, so
        a request moved since its verdict is refused), each part through the layer that adds the credential."""
        if not (yield from self.make_server_connection()):
            return
        request, server = self.flow.request, self.context.server
        content = request.raw_content
        yield SendHttp(RequestHeaders(self.stream_id, request, not (content or request.trailers)), server)
        if content:
            yield SendHttp(RequestData(self.stream_id, content), server)
        if request.trailers:
            yield SendHttp(RequestTrailers(self.stream_id, request.trailers), server)
        yield SendHttp(RequestEndOfMessage(self.stream_id), server)

    def _drop_request_body(self) -> Events:
        """A request answered at its head (a refusal, a hold) whose body passes `stream_large_bodies`: mitmproxy
        raises rather than stream a request that has its answer, which would drop the answer with a crash log.
        Its body is dropped as it arrives instead, so memory stays flat, and the answer is sent at its end
        as for a buffered body."""
        self.client_state = self.state_drop_request_body
        yield from ()

    def state_drop_request_body(self, event: Any) -> Events:
        if isinstance(event, RequestEndOfMessage):
            yield from HttpStream.state_consume_request_body(self, event)

    def _refuse(self, error: str, reply: str) -> Events:
        self.flow.error = flow.Error(error)
        yield HttpErrorHook(self.flow)
        refused = ResponseProtocolError(self.stream_id, reply, ErrorCode.GENERIC_SERVER_ERROR)
        yield SendHttp(refused, self.context.client)
        self.flow.live = False
        self.client_state = self.server_state = self.state_errored


def extend_http_layers(nextlayer: Any, wire: HttpExtension) -> None:
    """Give each `HttpLayer` in the stack mitmproxy's `NextLayer` addon decides for `nextlayer` `wire`'s behaviour.

    mitmproxy keeps the decision: a layer another addon set is left alone, and where none is set
    yet (mitmdump runs scripts before its `NextLayer`) that addon is asked first. Setting our own
    layer instead would mean repeating its whole decision (modes, TLS, ignore_hosts), or replacing
    a built layer in its context's layer list; changing the class of the layer it just built,
    before its first event, keeps everything else of it.
    """
    decide = getattr(ctx.master.addons.get("nextlayer"), "next_layer", None)
    if decide is not None and nextlayer.layer is None:
        decide(nextlayer)
    current = nextlayer.layer
    while current is not None:
        if type(current) is HttpLayer:
            current.__class__ = WireLayer
            current.wire = wire
        current = getattr(current, "child_layer", None)


def share_pool(nextlayer: Any, pool: PoolExtension) -> None:
    """Give each `WireLayer` in the stack mitmproxy decided for `nextlayer` (`extend_http_layers` ran
    first) the upstream pool: which connections came from it, which must not, and what to send again."""
    current = nextlayer.layer
    while current is not None:
        if type(current) is WireLayer:
            current.pool = pool
        current = getattr(current, "child_layer", None)


# Error pages: mitmproxy renders them from a message in functions its layers look up by name.

_http1 = internal("mitmproxy.proxy.layers.http._http1")
_http2 = internal("mitmproxy.proxy.layers.http._http2")
_http3 = internal("mitmproxy.proxy.layers.http._http3")
internal("mitmproxy.proxy.layers.http._http1.make_error_response", params=("status_code", "message"))
internal("mitmproxy.proxy.layers.http._http2.format_error", params=("status_code", "message"))
internal("mitmproxy.proxy.layers.http._http3.format_error", params=("status_code", "message"))
internal("mitmproxy.proxy.layers.http._http2.Http2Connection", reads={"_handle_event": "format_error"})
internal("mitmproxy.proxy.layers.http._http3.Http3Connection", reads={"_handle_event": "format_error"})

ErrorPage = Callable[[str], http.Response | None]


def replace_error_pages(page: ErrorPage) -> Callable[[], None]:
    """Serve `page(message)` instead of mitmproxy's error page wherever it returns a response; returns the undo.

    HTTP/1 gets the whole response; HTTP/2 and HTTP/3 keep mitmproxy's status and headers and get
    its body (those layers write the headers themselves). HTTP/3 clients reach these pages only in
    mitmproxy modes that accept QUIC (`reverse:http3://`, `wireguard`, `local`), which `run` never
    serves but mitmdump can.
    """
    h1_page, h2_body, h3_body = _http1.make_error_response, _http2.format_error, _http3.format_error

    def make_error_response(status_code: int, message: str = "") -> bytes:
        response = page(message)
        return h1_page(status_code, message) if response is None else assemble_response(response)

    def body(original: Callable[[int, str], bytes]) -> Callable[[int, str], bytes]:
        def format_error(status_code: int, message: str) -> bytes:
            response = page(message)
            return original(status_code, message) if response is None else response.content or b""

        return format_error

    _http1.make_error_response = make_error_response
    _http2.format_error, _http3.format_error = body(h2_body), body(h3_body)

    def restore() -> None:
        _http1.make_error_response, _http2.format_error, _http3.format_error = h1_page, h2_body, h3_body

    return restore


# Connections: mitmproxy's proxyserver addon keeps a handler per client connection.

internal("mitmproxy.addons.proxyserver.Proxyserver", methods={"listen_addrs": ("self",)}, attributes=("connections",))
internal(
    "mitmproxy.proxy.server.ConnectionHandler",
    methods={"close_connection": ("self", "connection", "half_close")},
    attributes=("transports",),
    reads={"open_connection": "open_connection"},
)


def close_connection(client: connection.Client, conn: connection.Connection) -> bool:
    """Close `conn` (the client's own connection or one of its upstream ones); False if already gone.

    `Flow.kill()` does not reach a flow waiting for its upstream (mitmproxy issue #4711), and no
    hook fires while a client is still sending its request head; `close_connection` is what
    mitmproxy's own layers use.
    """
    handler = ctx.master.addons.get("proxyserver").connections.get(client.id)
    if handler is None or conn not in handler.transports:
        return False
    handler.close_connection(conn)
    return True


def close_handshaking(client: connection.Client, address: tuple[str, int]) -> bool:
    """Close `client`'s connections to `address` still in their TLS handshake; False if it has none.

    A request waits for such a connection with `flow.server_conn` still the one it had before (the
    connection it waits for becomes its own only once established), so `close_connection` cannot
    reach it: a site that never answers a handshake would hold the request until `tcp_timeout`.
    """
    handler = ctx.master.addons.get("proxyserver").connections.get(client.id)
    if handler is None:
        return False
    pending = [
        conn
        for conn in handler.transports
        if isinstance(conn, connection.Server)
        and conn.address == address
        and conn.tls
        and conn.connected
        and not conn.tls_established
    ]
    for conn in pending:
        handler.close_connection(conn)
    return bool(pending)


def listen_addresses() -> list[Any]:
    """The addresses mitmproxy's servers are bound to (none without its proxyserver addon)."""
    server = ctx.master.addons.get("proxyserver")
    return server.listen_addrs() if server is not None else []


# Name resolution: mitmproxy opens TCP connections with asyncio, which resolves with the loop's getaddrinfo.

internal(
    "asyncio.base_events.BaseEventLoop",
    methods={"getaddrinfo": ("self", "host", "port")},
    reads={"_ensure_resolved": "getaddrinfo", "create_connection": "_ensure_resolved"},
)

Redirect = Callable[[str, Any], tuple[str, int] | None]


def redirect_name_resolution(loop: asyncio.AbstractEventLoop, redirect: Redirect) -> Callable[[], None]:
    """Resolve a host name as `redirect(host, port)` says where it names another (host, port); returns the undo.

    Below mitmproxy's view: it still believes it talks to the original name, so its
    `request.host`, SNI and certificate checks keep it.
    """
    original = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> Any:
        target = redirect(host, port) if isinstance(host, str) else None
        if target is None:
            return await original(host, port, **kwargs)
        return await original(*target, **kwargs)

    # The instance attribute shadows the loop's method, which `restore` uncovers again.
    loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]

    def restore() -> None:
        del loop.getaddrinfo

    return restore


# Warm upstream connections: mitmproxy opens each server connection itself, after its `server_connect` hook.

internal(
    "mitmproxy.proxy.server.ConnectionHandler",
    reads={"open_connection": ("ServerConnectHook", "open_connection")},
    feature=POOL,
)
internal("asyncio.streams", reads={"open_connection": "create_connection"}, feature=POOL)
internal(
    "asyncio.base_events.BaseEventLoop",
    methods={"create_connection": ("self", "protocol_factory", "host", "port")},
    feature=POOL,
)
Context = internal("mitmproxy.proxy.context.Context", params=("client", "options"), feature=POOL)
internal("mitmproxy.addons.tlsconfig.TlsConfig", methods={"tls_start_server": ("self", "tls_start")}, feature=POOL)
internal("mitmproxy.net.tls.create_proxy_server_context", members=("cache_info",), feature=POOL)

Claim = Callable[[tuple[str, int]], socket.socket | None]


def hand_over_connections(loop: asyncio.AbstractEventLoop, claim: Claim) -> Callable[[], None]:
    """Open a server connection on the socket `claim(address)` gives, instead of dialling; returns the undo.

    mitmproxy's `ConnectionHandler.open_connection` runs the `server_connect` hook, then, in the same
    task, `asyncio.open_connection(host, port)`, which reaches the loop's `create_connection`: so
    `claim` can read what that hook reserved (a context variable). mitmproxy has no way for an addon
    to supply a transport. Only a plain dial to a host name is claimed; CONNECT_TO's redirect of
    name resolution (`redirect_name_resolution`) wraps another method and applies to every dial.
    A claimed socket the site reset before it became a transport fails as a dial does.
    """
    original = loop.create_connection

    async def create_connection(protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any) -> Any:
        if isinstance(host, str) and kwargs.get("sock") is None and kwargs.get("local_addr") is None:
            sock = claim((host, port))
            if sock is not None:
                kwargs.pop("local_addr", None)
                transport, protocol = await original(protocol_factory, sock=sock, **kwargs)
                if transport.get_extra_info("peername") is None:
                    # Reset just now: mitmproxy asserts a peer. As an error of the dial, the layer replaces it.
                    transport.abort()
                    raise ConnectionResetError("the warm connection was reset as it was handed over")
                return transport, protocol
        return await original(protocol_factory, host, port, **kwargs)

    loop.create_connection = create_connection  # type: ignore[method-assign]

    def restore() -> None:
        if vars(loop).get("create_connection") is create_connection:
            del loop.create_connection

    return restore


async def dial(host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket to `host`, resolved as mitmproxy's own dials are (the running loop's
    `getaddrinfo`, which CONNECT_TO redirects), trying each address in turn as `asyncio.open_connection` does."""
    loop = asyncio.get_running_loop()
    error = OSError(f"{host} did not resolve")
    for family, kind, proto, _, address in await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, address)
        except OSError as e:
            sock.close()
            error = e
            continue
        return sock
    raise error


@dataclasses.dataclass(frozen=True)
class TlsInputs:
    """What mitmproxy's `TlsConfig.tls_start_server` reads of a server connection and its client, besides options."""

    host: str
    port: int
    server_sni: str | None
    server_alpn: tuple[bytes, ...]
    server_ciphers: tuple[str, ...]
    client_sni: str | None
    client_alpn: tuple[bytes, ...]

    @classmethod
    def of(cls, client: connection.Client, server: connection.Server, address: tuple[str, int]) -> TlsInputs:
        """The inputs of `server` (at `address`) and its `client`, as they stand before tlsconfig fills them in."""
        return cls(
            address[0],
            address[1],
            server.sni,
            tuple(server.alpn_offers),
            tuple(server.cipher_list),
            client.sni,
            tuple(client.alpn_offers),
        )


def server_tls(inputs: TlsInputs) -> tuple[SSL.Connection, connection.Server]:
    """mitmproxy's own TLS client for a server connection with `inputs`, as its tlsconfig addon builds it for a
    real one (trusted CAs, hostname check, ALPN, client certificate, versions, ciphers), and that server as
    tlsconfig left it (its SNI and ALPN offers filled in). Raises ValueError without a tlsconfig addon."""
    client = connection.Client(
        peername=("upstream-pool", 0), sockname=("upstream-pool", 0), sni=inputs.client_sni,
        alpn_offers=inputs.client_alpn,
    )  # fmt: skip
    server = connection.Server(
        address=(inputs.host, inputs.port), sni=inputs.server_sni, alpn_offers=inputs.server_alpn,
        cipher_list=inputs.server_ciphers, tls=True,
    )  # fmt: skip
    conn_context = Context(client, ctx.options)
    conn_context.server = server
    data = tls.TlsData(server, conn_context)
    tlsconfig = ctx.master.addons.get("tlsconfig")
    if tlsconfig is None:
        raise ValueError("mitmproxy's tlsconfig addon is not loaded")
    tlsconfig.tls_start_server(data)
    if data.ssl_conn is None:
        raise ValueError("tlsconfig built no TLS connection")
    return data.ssl_conn, server

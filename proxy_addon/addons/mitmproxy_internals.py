"""Every use of mitmproxy's internals, behind one door that is checked before the proxy starts.

mitmproxy's addon API (hooks, flows, options) cannot express five things this proxy must do:
put the credential only into the copy of a request head its HTTP layer sends, bound a request
head while it arrives, refuse a held request that begins to stream or a request moved after its
verdict, replace the error page its layers render, and close a live connection. CONNECT_TO also
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
from collections.abc import Callable, Generator, Mapping
from typing import Any, Protocol

from mitmproxy import connection, ctx, exceptions, flow, http, version


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
    reads: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Method -> the global or attribute name it looks up when it runs (what is replaced or wrapped)."""
    instance_dict: bool = False
    """Instances keep their state in `__dict__` (a class swap, a shallow copy)."""

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
            if code is None or read not in code.co_names:
                problems.append(f"{self.path}.{name} no longer uses {read}")
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
    """What the installed mitmproxy lacks of the internals this proxy uses; empty when compatible."""
    return [problem for item in INTERNALS for problem in item.problems()]


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

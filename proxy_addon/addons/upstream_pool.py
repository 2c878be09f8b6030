"""Warm upstream connections to credential hosts, shared by all clients: a new client pays one round trip to the site.

Scripts and agents start a new process, so a new connection, for nearly every request. mitmproxy
reuses an upstream connection only within one client connection, so each pays a TCP and a TLS
round trip to the site before its request leaves. The pool keeps, for each credential host a
credentialed request used recently, a few connections on which mitmproxy's own TLS ClientHello
(built by its tlsconfig addon for exactly the inputs the real connection will have: trusted CAs,
hostname, ALPN, client certificate) has already gone out, the site's answer left unread. A client's
connection takes one: mitmproxy reads the site's answer and verifies the certificate chain and
hostname itself, at that moment, as for any connection, then sends the request with its
Finished: one round trip.

The hand-over:
- `http_connect`: for a host with warm connections the CONNECT is answered as mitmproxy would
  (`replies.connected`), which keeps mitmproxy from connecting before it knows the client's
  SNI and ALPN; the connection opens when the request needs it.
- `tls_clienthello` (after tlsconfig): such a client's TLS is not made to wait for the site's, and
  is offered the protocol the site chose last time (h2 stays h2).
- `server_connect`: the oldest live warm connection with the same inputs is reserved for the task
  that connects next; `mitmproxy_internals.hand_over_connections` gives mitmproxy its socket.
- `tls_start_server` (after tlsconfig): the prepared TLS object replaces the one tlsconfig just
  built, only if that one is configured identically (the same cached `SSL.Context`, SNI, ALPN).

A warm connection that fails before its handshake ends held no request: every request waiting for
it goes on a new connection (`WireLayer`). One that closes after taking a request head and before
any byte of an answer: GET, HEAD and OPTIONS go again, once, on a new connection; other methods
never go first on a warm connection, nor do streamed bodies. Tunnelled hosts are never warmed or handed one, and neither
are connections through an upstream proxy (the pool is off then). If mitmproxy stops behaving as
the hand-over assumes, the pool turns itself off and every connection is dialled as without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from mitmproxy import connection, ctx, http, tls
from mitmproxy.proxy import layer, server_hooks
from OpenSSL import SSL
from prometheus_client import CollectorRegistry, Counter

from proxy_addon.addons.metrics import OTHER_SITE
from proxy_addon.addons.mitmproxy_internals import (
    POOL,
    TlsInputs,
    dial,
    hand_over_connections,
    server_tls,
    share_pool,
    unavailable,
)
from proxy_addon.addons.prepared import DEFAULTS, Prepared
from proxy_addon.addons.replies import connected
from proxy_addon.policy.failures import failure_kind
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.upstream_pool import AgeLimit, PoolLimits, Warmth, expired, replayable

logger = logging.getLogger(__name__)

WARM, NEW, RETIRED = "warm", "new", "retired"
"""The `kind` of `atlassian_proxy_upstream_connections_total`: a connection a credentialed request used, warm
or dialled for it; a warm one closed unused (aged, closed by the site, or its host no longer in use)."""
TLS_OPTIONS = frozenset(
    {
        "ssl_insecure",
        "ssl_verify_upstream_trusted_ca",
        "ssl_verify_upstream_trusted_confdir",
        "client_certs",
        "ciphers_server",
        "tls_version_server_min",
        "tls_version_server_max",
        "tls_ecdh_curve_server",
        "http2",
        "connection_strategy",
    }
)
"""mitmproxy options its upstream TLS depends on: a change drops every warm connection."""
SWEEP_SECONDS = 0.5
REFILL_SECONDS = 0.05
"""A taken warm connection is replaced this long after, off the path of the request that took it (the new one's
ClientHello, and the site's answer to it, would compete with that request for the CPU), unless none is left."""
PROOF_SECONDS = 1.0
"""How long tlsconfig's build for a key, once shown alike to a warm connection's, stands for the next ones taken. The
proof at use (`after_tls_start_server`) still compares each connection's `SSL.Context` with tlsconfig's own."""
CONNECT_SECONDS = 10.0
SITE_ALPN_KEPT = 64
"""The sites' ALPN choices remembered, the most recent: each ALPN list a client offers is one, so clients alone
would decide how many."""
TCP_ESTABLISHED = 1


@dataclass(frozen=True)
class Key:
    """Warm connections are interchangeable only with equal inputs to mitmproxy's upstream TLS."""

    inputs: TlsInputs
    generation: int
    """Bumped whenever a TLS option changes."""

    def __str__(self) -> str:
        alpn = b",".join(self.inputs.client_alpn).decode(errors="replace") or "-"
        return f"{self.inputs.host}:{self.inputs.port} (ALPN {alpn})"


@dataclass(eq=False)
class Entry:
    """One warm connection: its socket, and the TLS client whose ClientHello it carries."""

    key: Key
    sock: socket.socket
    ssl: SSL.Connection
    sni: str | None
    alpn_offers: tuple[bytes, ...]
    created: float
    claimed: bool = False
    """Handed to mitmproxy, which owns the socket from then on."""

    def close(self) -> None:
        self.sock.close()

    def alive(self) -> bool:
        """No end of stream, no reset, no alert where the site's handshake answer should be; nothing read."""
        try:
            peek = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            peek = None
        except OSError:
            return False
        if peek == b"" or (peek and peek[0] == 0x15):
            return False
        tcp_info = getattr(socket, "TCP_INFO", None)
        if tcp_info is None:
            return True
        try:
            state = self.sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 8)[0]
        except OSError:
            return False
        return state == TCP_ESTABLISHED  # CLOSE_WAIT once the site's FIN arrived behind its answer


class AfterTlsConfig:
    """The pool's hooks that must see what mitmproxy's tlsconfig did: added at the end of mitmproxy's
    addons when the proxy runs (mitmdump runs scripts before tlsconfig)."""

    name = "atlassian-auth-proxy-upstream-pool"

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        self.pool.after_tls_clienthello(data)

    def tls_start_server(self, data: tls.TlsData) -> None:
        self.pool.after_tls_start_server(data)


class UpstreamPool:
    """Keeps warm connections for credential hosts in use and hands them to mitmproxy."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.connections = Counter(
            "atlassian_proxy_upstream_connections",
            "Upstream connections to credential hosts: warm (from the pool) or new (dialled) when a credentialed "
            "request used one, retired when a warm one closed unused",
            ["site", "kind"],
            registry=CollectorRegistry() if registry is None else registry,
        )
        self.wanted = False
        """The settings ask for the pool (UPSTREAM_POOL, and no upstream proxy)."""
        self.on = False
        """It works: wanted, running, and mitmproxy behaves as the hand-over assumes."""
        self.limits = PoolLimits()
        self.ages: dict[str | None, AgeLimit] = {}
        """Each site's age limit: what one site shows of its timeout says nothing of another's."""
        self.warmth: Warmth[Key] = Warmth(self.limits)
        self.entries: dict[Key, list[Entry]] = {}
        self.opening: dict[Key, int] = {}
        self.handed: dict[str, Entry] = {}
        """Server connection id -> the warm connection it was given."""
        self.keys: dict[str, Key] = {}
        """Server connection id -> its key, for the credentialed requests that use it."""
        self.of_client: dict[str, list[str]] = {}
        self.counted: set[str] = set()
        self.dialling_clients: set[str] = set()
        self.dialled_ids: set[str] = set()
        self.deferred: set[str] = set()
        """Client connections whose CONNECT the pool answered: their upstream opens when a request needs it."""
        self.tunnelled: set[str] = set()
        self.site_alpn: dict[tuple[str, int, tuple[bytes, ...]], bytes] = {}
        """(host, port, a client's ALPN offers) -> what the site chose: the deferred clients' own ALPN."""
        self.reserved: contextvars.ContextVar[tuple[connection.Server, Entry] | None] = contextvars.ContextVar(
            "atlassian_auth_proxy_upstream_pool", default=None
        )
        self.generation = 0
        self.proven: dict[Key, tuple[float, SSL.Context]] = {}
        """Key -> when tlsconfig last built, for it, what its warm connections hold, and that `SSL.Context`."""
        self._helper: AfterTlsConfig | None = None
        self._restore: Any = None
        self._sweeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._configure(DEFAULTS.upstream_pool, None, PoolLimits())

    # The lifecycle

    def use(self, prepared: Prepared) -> None:
        settings = prepared.settings
        limits = PoolLimits(
            settings.upstream_pool_size,
            settings.upstream_pool_idle_seconds,
            settings.upstream_pool_max_age_seconds,
            {site: cap for site, (cap, _) in settings.in_flight().items()},
        )
        self._configure(settings.upstream_pool, settings.upstream_proxy, limits)

    def _configure(self, wanted: bool, upstream_proxy: object, limits: PoolLimits) -> None:
        if limits != self.limits:
            self.limits, self.ages = limits, {}
            self.warmth.limits = limits
        self.wanted = wanted and upstream_proxy is None
        if upstream_proxy is not None and wanted:
            logger.info("upstream pool: off (connections go through the upstream proxy)")
        if not self.wanted:
            self._stop()
        elif self._helper is not None:
            self._start()

    def running(self) -> None:
        self._helper = AfterTlsConfig(self)
        ctx.master.addons.add(self._helper)
        if self.wanted:
            self._start()

    def done(self) -> None:
        self._stop()
        if self._helper is not None and ctx.master.addons.get(self._helper.name) is self._helper:
            ctx.master.addons.remove(self._helper)
        self._helper = None

    def _start(self) -> None:
        if self.on:
            return
        if missing := unavailable(POOL):
            logger.warning("upstream pool: off, this mitmproxy differs from what it needs: %s", "; ".join(missing))
            return
        if others := [a for a in ctx.master.addons.chain if self._builds_upstream_tls(a)]:
            logger.warning("upstream pool: off, %s builds upstream TLS itself", type(others[0]).__name__)
            return
        self._restore = hand_over_connections(asyncio.get_running_loop(), self._claim)
        self.on = True
        logger.info(
            "upstream pool: %d warm connection(s) per credential host in use (idle %gs), each replaced after %gs",
            self.limits.size,
            self.limits.idle,
            self.limits.max_age,
        )

    def _builds_upstream_tls(self, addon: Any) -> bool:
        """Another addon setting `ssl_conn` would make tlsconfig's connection not the one used."""
        return callable(getattr(addon, "tls_start_server", None)) and type(addon).__name__ not in (
            "TlsConfig",
            AfterTlsConfig.__name__,
        )

    def _stop(self) -> None:
        self.on = False
        if self._restore is not None:
            self._restore()
            self._restore = None
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in list(self._tasks):
            task.cancel()
        self._flush()
        self.warmth.clear()

    def _off(self, why: str) -> None:
        """A safety switch: mitmproxy no longer behaves as the hand-over assumes."""
        logger.error("upstream pool: off, %s; every upstream connection is dialled as without it", why)
        self._stop()

    def configure(self, updated: set[str]) -> None:
        if updated & TLS_OPTIONS:
            self.generation += 1
            self._flush()

    def _flush(self) -> None:
        for entries in self.entries.values():
            for entry in entries:
                entry.close()
        self.entries.clear()
        self.proven.clear()

    # A client's connection

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if self.on:
            share_pool(nextlayer, self)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        """After every check of the CONNECT: answered now when warm connections wait for its host."""
        if not self.on or flow.response is not None or flow.client_conn.proxy_mode.type_name != "regular":
            return
        address = (flow.request.host, flow.request.port)
        if any(entries and (key.inputs.host, key.inputs.port) == address for key, entries in self.entries.items()):
            self.deferred.add(flow.client_conn.id)
            connected(flow)

    def after_tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """After tlsconfig, which would make a deferred client's TLS wait for the site's."""
        if not self.on:
            return
        client = data.context.client
        if data.ignore_connection:
            self.tunnelled.add(client.id)
        elif client.id in self.deferred:
            data.establish_server_tls_first = False
            address = data.context.server.address
            alpn = self.site_alpn.get((address[0], address[1], tuple(client.alpn_offers))) if address else None
            if alpn is not None:  # b"": the site chose none, and the client is offered none either
                data.context.server.alpn = alpn

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        self.reserved.set(None)
        server, client = data.server, data.client
        if not self.on or server.address is None or server.via is not None or not server.tls:
            return
        if client.id in self.tunnelled:
            return
        key = Key(TlsInputs.of(client, server, server.address), self.generation)
        self._track(client.id, server.id, key)
        if client.id in self.dialling_clients or server.id in self.dialled_ids:
            self.dialled_ids.discard(server.id)
            return
        entry = self._take(key)
        if entry is not None:
            self.handed[server.id] = entry
            self.reserved.set((server, entry))

    def _claim(self, address: tuple[str, int]) -> socket.socket | None:
        """The reserved warm socket for the connection mitmproxy is dialling in this task, if it is for `address`."""
        reservation = self.reserved.get()
        if reservation is None:
            return None
        self.reserved.set(None)
        server, entry = reservation
        if address == server.address and not entry.claimed:
            entry.claimed = True
            return entry.sock
        entry.close()
        self.handed.pop(server.id, None)
        return None

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        entry = self.handed.get(data.server.id)
        if entry is not None and not entry.claimed:
            self._release(data.server.id)
            self._off("mitmproxy connected without taking the reserved connection")

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        """Killed before it connected (its warm socket unused), or the hand-over failed (the layer redials)."""
        self.dialled_ids.discard(data.server.id)
        entry = self.handed.get(data.server.id)
        if entry is not None and not entry.claimed:
            self._release(data.server.id)

    def after_tls_start_server(self, data: tls.TlsData) -> None:
        """After tlsconfig built a TLS client for a connection given a warm socket: use the warm one's instead."""
        entry = self.handed.get(data.conn.id)
        if entry is None or not entry.claimed:
            return
        built, server = data.ssl_conn, data.conn
        if (
            built is not None
            and built.get_context() is entry.ssl.get_context()
            and server.sni == entry.sni
            and tuple(server.alpn_offers) == entry.alpn_offers
        ):
            data.ssl_conn = entry.ssl
            return
        # A TLS option changed since `server_connect`: the socket already carries a ClientHello, and the
        # handshake tlsconfig's object starts fails; the requests waiting for it get a new connection.
        logger.warning("upstream pool: %s was configured differently at use; a new connection replaces it", entry.key)

    def tls_established_server(self, data: tls.TlsData) -> None:
        """What the site chose for a client's ALPN offers: what a deferred client with those offers is offered."""
        server = data.conn
        if self.on and isinstance(server, connection.Server) and server.address and server.alpn is not None:
            offers = tuple(data.context.client.alpn_offers)
            self.site_alpn.pop((server.address[0], server.address[1], offers), None)
            self.site_alpn[(server.address[0], server.address[1], offers)] = server.alpn
            while len(self.site_alpn) > SITE_ALPN_KEPT:
                del self.site_alpn[next(iter(self.site_alpn))]

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        entry = self.handed.get(data.server.id)
        if entry is not None and not entry.claimed:
            self._release(data.server.id)

    def client_disconnected(self, client: connection.Client) -> None:
        for server_id in self.of_client.pop(client.id, ()):
            self._release(server_id)
            self.keys.pop(server_id, None)
            self.counted.discard(server_id)
            self.dialled_ids.discard(server_id)
        self.deferred.discard(client.id)
        self.tunnelled.discard(client.id)

    def _track(self, client_id: str, server_id: str, key: Key) -> None:
        if server_id not in self.keys:
            self.of_client.setdefault(client_id, []).append(server_id)
        self.keys[server_id] = key

    def _release(self, server_id: str) -> None:
        entry = self.handed.pop(server_id, None)
        if entry is not None and not entry.claimed:
            entry.close()

    # A request

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """The site answered a credentialed request: its key stays warm; the record and the count say how it went."""
        if not self.on:
            return
        record = FlowRecord.of(flow.metadata)
        if record.decision is not Decision.INJECT:
            return
        server = flow.server_conn
        key = self.keys.get(server.id)
        if key is None:
            key = self._predicted(flow)
            self._track(flow.client_conn.id, server.id, key)
        if self.warmth.touch(key, record.site, time.monotonic()):
            self._cool(time.monotonic())
            self._fill(key)
            self._sweep_soon()
        kind = WARM if server.id in self.handed else NEW
        record.upstream = kind
        if server.id not in self.counted:
            self.counted.add(server.id)
            self.connections.labels(record.site or OTHER_SITE, kind).inc()

    def error(self, flow: http.HTTPFlow) -> None:
        if not self.on:
            return
        record = FlowRecord.of(flow.metadata)
        if record.decision is Decision.INJECT and record.upstream is None and flow.server_conn.timestamp_start:
            record.upstream = WARM if flow.server_conn.id in self.handed else NEW

    def _predicted(self, flow: http.HTTPFlow) -> Key:
        """The key of the connection a later client like this one will get (mitmproxy's own first connection of
        a client opens before its ClientHello, so `server_connect` could not tell): mitmproxy names the host as
        SNI on connections it opens for a request. A wrong guess warms connections nobody takes."""
        client, request = flow.client_conn, flow.request
        inputs = TlsInputs(request.host, request.port, request.host, (), (), client.sni, tuple(client.alpn_offers))
        return Key(inputs, self.generation)

    # What the HTTP layer asks (`mitmproxy_internals.PoolExtension`)

    def pooled(self, server: connection.Connection) -> bool:
        return server.id in self.handed

    def must_dial(self, flow: http.HTTPFlow) -> bool:
        """Sent again already, not safe to send twice, or not possible to: a body that streams (its connection is
        picked before it arrived: `raw_content` is None) is gone once sent. `stream` alone says too much: an HTTP/2
        GET without content-length has it, and its empty body is complete all the same."""
        record = FlowRecord.of(flow.metadata)
        return record.resent or not replayable(flow.request.method) or flow.request.raw_content is None

    def dialling(self, client: connection.Client, now: bool) -> None:
        if now:
            self.dialling_clients.add(client.id)
        else:
            self.dialling_clients.discard(client.id)

    def dialled(self, client: connection.Client, servers: list[connection.Connection]) -> None:
        """Kept under `client` too: a connection whose `server_connect` ran already, or returned before taking
        (plain http, a TLS option the pool does not warm), never discards its id there; the client's leaving does."""
        for server in servers:
            if server.id not in self.keys:
                self.dialled_ids.add(server.id)
                self.of_client.setdefault(client.id, []).append(server.id)

    def redial(self, server: connection.Connection, error: str, flows: list[http.HTTPFlow]) -> bool:
        """No new connection for requests the proxy gave up on (their upstream timeout closed this one)."""
        entry = self.handed.pop(server.id, None)
        if entry is None:
            return True
        if any(FlowRecord.of(waiting.metadata).timed_out for waiting in flows):
            return False
        if error == "connection closed":
            self._age(entry.key).closed_waiting(time.monotonic() - entry.created, time.monotonic())
        for waiting in flows:
            FlowRecord.of(waiting.metadata).resent = True
        logger.info(
            "upstream pool: a warm connection to %s failed (%s); dialling a new one",
            entry.key.inputs.host,
            failure_kind(error),
        )
        return True

    def may_resend(self, flow: http.HTTPFlow) -> bool:
        record = FlowRecord.of(flow.metadata)
        if record.resent or record.timed_out or not replayable(flow.request.method):
            return False
        record.resent = True
        logger.info(
            "upstream pool: %s closed a warm connection as %s left; sending it again",
            flow.request.host,
            flow.request.method,
        )
        return True

    # The warm connections

    def _take(self, key: Key) -> Entry | None:
        """The oldest live warm connection for `key` (the site's timeout is nearest for it), checked again against
        what tlsconfig would build now; the pool is refilled behind it."""
        entries = self.entries.get(key)
        now = time.monotonic()
        taken = None
        while entries:
            entry = entries.pop(0)
            if not expired(entry.created, now, self._age(key).current(now)) and entry.alive():
                taken = entry
                break
            self._retire(entry)
        if entries:
            asyncio.get_running_loop().call_later(REFILL_SECONDS, self._fill, key)
        else:
            self._fill(key)
        if taken is not None and not self._built_alike(taken):
            self._retire(taken)
            return None
        return taken

    def _built_alike(self, entry: Entry) -> bool:
        """tlsconfig, asked now with the same inputs, builds what the entry holds: the same cached
        `SSL.Context`, SNI and ALPN offers. A client certificate file that appeared, or an option changed
        without a `configure` (none should), costs a new connection here, or, within `PROOF_SECONDS` of the
        last build for the key, at use (`after_tls_start_server`). If tlsconfig no longer caches its contexts,
        no warm connection could ever be proven alike: the pool turns itself off."""
        now = time.monotonic()
        proof = self.proven.get(entry.key)
        if proof is not None and now - proof[0] < PROOF_SECONDS and proof[1] is entry.ssl.get_context():
            return True
        try:
            built, server = server_tls(entry.key.inputs)
        except (SSL.Error, ValueError) as e:
            logger.warning("upstream pool: tlsconfig refused %s now: %s", entry.key, e)
            return False
        if built.get_context() is entry.ssl.get_context():
            alike = (server.sni, tuple(server.alpn_offers)) == (entry.sni, entry.alpn_offers)
            if alike:
                self.proven[entry.key] = (now, built.get_context())
            return alike
        if built.get_context() is not server_tls(entry.key.inputs)[0].get_context():
            self._off("mitmproxy's tlsconfig no longer shares TLS contexts")
        return False

    def _age(self, key: Key) -> AgeLimit:
        site = self.warmth.site_of(key)
        age = self.ages.get(site)
        if age is None:
            age = self.ages[site] = AgeLimit(self.limits.max_age)
        return age

    def _cool(self, now: float) -> None:
        """Close the warm connections of keys no longer in use, or beyond the bound on keys (a new one just came)."""
        for key, site in self.warmth.cooled(now):
            self.proven.pop(key, None)
            for entry in self.entries.pop(key, []):
                self._retire(entry, site)

    def _retire(self, entry: Entry, site: str | None = None) -> None:
        entry.close()
        self.connections.labels(site or self.warmth.site_of(entry.key) or OTHER_SITE, RETIRED).inc()

    def _fill(self, key: Key) -> None:
        if not self.on:
            return
        waiting = len(self.entries.get(key, ()))
        site_held = sum(
            len(self.entries.get(k, ())) + self.opening.get(k, 0) for k in self.warmth.keys_of(self.warmth.site_of(key))
        )
        for _ in range(self.warmth.missing(key, waiting, self.opening.get(key, 0), time.monotonic(), site_held)):
            self.opening[key] = self.opening.get(key, 0) + 1
            task = asyncio.get_running_loop().create_task(self._open(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _open(self, key: Key) -> None:
        entry = None
        try:
            entry = await asyncio.wait_for(self._connect(key), CONNECT_SECONDS)
        except (OSError, SSL.Error, ValueError, TimeoutError) as e:
            self.warmth.failed(key, time.monotonic())
            logger.info("upstream pool: warming a connection to %s failed: %s", key.inputs.host, failure_kind(str(e)))
        finally:
            self.opening[key] = self.opening.get(key, 1) - 1
            if not self.opening[key]:
                del self.opening[key]
        if entry is None:
            return
        if not self.on or key.generation != self.generation or key not in self.warmth:
            entry.close()
            return
        self.entries.setdefault(key, []).append(entry)

    async def _connect(self, key: Key) -> Entry:
        """Dial as mitmproxy would (the loop's name resolution, so CONNECT_TO applies), then send mitmproxy's
        own ClientHello for `key` and leave the site's answer unread."""
        loop = asyncio.get_running_loop()
        inputs = key.inputs
        sock = await dial(inputs.host, inputs.port)
        try:
            ssl_conn, server = server_tls(inputs)
            with contextlib.suppress(SSL.WantReadError):
                ssl_conn.do_handshake()
            await loop.sock_sendall(sock, ssl_conn.bio_read(65536))
        except BaseException:
            sock.close()
            raise
        return Entry(key, sock, ssl_conn, server.sni, tuple(server.alpn_offers), time.monotonic())

    def _sweep_soon(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        """Retire warm connections the site closed or that near its timeout, forget keys no longer in use,
        refill the rest; until nothing is warm."""
        while self.warmth or self.entries:
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            for key in list(self.entries):
                age = self._age(key)
                limit = age.current(now)
                keep = []
                for entry in self.entries[key]:
                    if expired(entry.created, now, limit):
                        self._retire(entry)
                    elif not entry.alive():
                        age.closed_waiting(now - entry.created, now)
                        self._retire(entry)
                    else:
                        keep.append(entry)
                self.entries[key] = keep
            self._cool(now)
            for key in self.warmth.hot():
                self._fill(key)
            self.entries = {key: entries for key, entries in self.entries.items() if entries}

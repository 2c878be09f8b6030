"""Bad client input: bounded request heads and a deadline for sending them.

mitmproxy buffers a request head until it is complete and has no limit on its size; its only
deadline is `tcp_timeout`, an idle timeout that a client sending one byte a second never
reaches. Here a client must finish each request head within `head_timeout` seconds of
connecting (or of its CONNECT, its TLS handshake with the proxy, or its previous response),
else the connection is closed. Tunnels that are not decrypted, raw TCP and WebSocket connections
are exempt once they start (mitmproxy's `tcp_timeout` still applies to them).
A head larger than `MAX_HEAD_BYTES` is answered with 431 before anything goes upstream.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence

from mitmproxy import connection, http, tcp, tls

from proxy_addon.addons.deadlines import Deadlines
from proxy_addon.addons.mitmproxy_internals import close_connection
from proxy_addon.addons.prepared import DEFAULTS, Prepared
from proxy_addon.addons.replies import refuse
from proxy_addon.policy.refusals import MAX_HEAD_BYTES, Refusal

logger = logging.getLogger(__name__)


def head_size(method: str, path: str, fields: Sequence[tuple[bytes, bytes]]) -> int:
    """Bytes of an HTTP/1 request head: request line and header lines with their CRLFs."""
    return len(method) + len(path) + 12 + sum(len(name) + len(value) + 4 for name, value in fields)


class ClientLimits:
    """431 for oversized heads; closes clients that take longer than `head_timeout` to send one."""

    def __init__(self) -> None:
        self.head_timeout = DEFAULTS.client_timeout
        self._deadlines = Deadlines()
        self._open: collections.Counter[str] = collections.Counter()

    def use(self, prepared: Prepared) -> None:
        self.head_timeout = prepared.settings.client_timeout

    def client_connected(self, client: connection.Client) -> None:
        self._arm(client)

    def client_disconnected(self, client: connection.Client) -> None:
        self._disarm(client)
        self._open.pop(client.id, None)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._arm(flow.client_conn)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        self._disarm(data.context.client)

    def tls_established_client(self, data: tls.TlsData) -> None:
        self._arm(data.context.client)

    def tcp_start(self, flow: tcp.TCPFlow) -> None:
        self._disarm(flow.client_conn)

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow.client_conn)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow.client_conn)
        self._open[flow.client_conn.id] += 1
        request = flow.request
        size = head_size(request.method, request.path, request.headers.fields)
        if flow.response is None and size > MAX_HEAD_BYTES:
            refuse(flow, Refusal.HEAD_TOO_LARGE, size=size, limit=MAX_HEAD_BYTES)

    def response(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finished(flow)

    def done(self) -> None:
        self._deadlines.stop()

    def _finished(self, flow: http.HTTPFlow) -> None:
        client = flow.client_conn
        self._open[client.id] -= 1
        if self._open[client.id] <= 0:
            del self._open[client.id]
            if client.connected:
                self._arm(client)

    def _arm(self, client: connection.Client) -> None:
        self._deadlines.set(client.id, self.head_timeout, self._expire, client)

    def _disarm(self, client: connection.Client) -> None:
        self._deadlines.clear(client.id)

    def _expire(self, client: connection.Client) -> None:
        peer = client.peername
        logger.info(
            "closing a client that sent no complete request within %g s (%s)", self.head_timeout, peer and peer[0]
        )
        close_connection(client, client)

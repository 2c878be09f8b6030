"""No handshake with the own host of a site whose credentialed requests all go to the API gateway.

Under `connection_strategy = eager` (mitmproxy's default) a CONNECT opens the upstream connection
before it is answered, and the TLS layer handshakes on it before the client's handshake. For the
own host of a scoped or client-credentials site with a known cloudId that handshake is wasted:
every credentialed request moves to the gateway, and a new connection per request paid it on top
of the gateway's. Here the CONNECT is answered without opening the connection, and the client's
handshake does not wait for one, so it opens, as under `lazy`, only if a request does go there (a
web page of the site). Under `lazy` the CONNECT's answer is the one mitmproxy would give anyway.

Both halves are needed, and the second only when the first took: telling the TLS layer not to
handshake upstream first while the connection is already open leaves that connection waiting for
a ClientHello that never comes (the HTTP layer takes it for ready), and every request to the own
host hangs.
"""

from __future__ import annotations

from mitmproxy import http, tls

from proxy_addon.addons.prepared import Prepared, no_sites
from proxy_addon.addons.replies import connected
from proxy_addon.policy.verdict import moved_to_gateway


class GatewayConnect:
    """Answers a CONNECT to a gateway site's own host without opening it first; its client's handshake goes first."""

    def __init__(self) -> None:
        self.policy = no_sites()

    def use(self, prepared: Prepared) -> None:
        self.policy = prepared.policy

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and moved_to_gateway(self.policy, flow.request.host, flow.request.port):
            connected(flow)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        server = data.context.server
        if data.ignore_connection or server.connected or server.address is None:
            return
        if moved_to_gateway(self.policy, server.address[0], server.address[1]):
            data.establish_server_tls_first = False

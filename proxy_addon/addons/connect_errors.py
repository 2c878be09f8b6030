"""The CONNECT failure page: mitmproxy's own names the resolved (internal) address."""

from __future__ import annotations

from mitmproxy import http

from proxy_addon.addons.replies import proxy_reply
from proxy_addon.policy.failures import failure_kind


class ConnectErrors:
    """Replaces mitmproxy's CONNECT failure body, which names the resolved address."""

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        if flow.response is None or flow.response.status_code != 502:
            return
        host, port = flow.request.host, flow.request.port
        flow.response = proxy_reply(502, f"cannot reach {host}:{port}: {failure_kind(flow.server_conn.error)}")

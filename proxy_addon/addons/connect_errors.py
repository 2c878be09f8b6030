"""The CONNECT failure page: mitmproxy's own names the resolved (internal) address."""

from __future__ import annotations

from mitmproxy import http

from proxy_addon.addons.replies import refuse
from proxy_addon.policy.failures import failure_kind
from proxy_addon.policy.refusals import Refusal


class ConnectErrors:
    """Replaces mitmproxy's CONNECT failure body, which names the resolved address."""

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        if flow.response is None or flow.response.status_code != 502:
            return
        request = flow.request
        refuse(
            flow,
            Refusal.CONNECT_FAILED,
            host=request.host,
            port=request.port,
            kind=failure_kind(flow.server_conn.error),
        )

"""Error replies the proxy itself makes: they name the host and the kind of failure, nothing more.

mitmproxy's own text carries the resolved address and port, which with CONNECT_TO is an
internal address; clients get a fixed sentence instead.
"""

from __future__ import annotations

from mitmproxy import http

FAILURE_KINDS = (
    (("refused", "errno 111"), "the connection was refused"),
    (
        ("name or service not known", "errno -2", "errno -3", "nodename nor servname", "getaddrinfo"),
        "the name did not resolve",
    ),
    (("timed out", "timeout"), "the connection timed out"),
    (("unreachable",), "the network is unreachable"),
    (("reset",), "the connection was reset"),
    (("certificate verify failed",), "its TLS certificate is not trusted"),
    (
        ("closed connection", "without sending complete message body"),
        "the connection closed before the response was complete",
    ),
)


def failure_kind(error: str | None) -> str:
    """Map an OS or mitmproxy error text to a short, address-free description."""
    text = (error or "").lower()
    for needles, kind in FAILURE_KINDS:
        if any(needle in text for needle in needles):
            return kind
    return "the connection failed"


def proxy_reply(status: int, message: str) -> http.Response:
    return http.Response.make(
        status,
        f"atlassian-auth-proxy: {message}\n",
        {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"},
    )


class ConnectErrors:
    """Replaces mitmproxy's CONNECT failure body, which names the resolved address."""

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        if flow.response is None or flow.response.status_code != 502:
            return
        host, port = flow.request.host, flow.request.port
        flow.response = proxy_reply(502, f"cannot reach {host}:{port}: {failure_kind(flow.server_conn.error)}")

"""Failures described for clients and logs: the kind of failure, never an address or mitmproxy's text.

mitmproxy's own text carries the resolved address and port, which with CONNECT_TO is an
internal address; clients and logs get a fixed phrase instead.
"""

from __future__ import annotations

UNTRUSTED_CERTIFICATE = "its TLS certificate is not trusted"
FAILURE_KINDS = (
    (("refused", "errno 111"), "the connection was refused"),
    (
        ("name or service not known", "errno -2", "errno -3", "nodename nor servname", "getaddrinfo"),
        "the name did not resolve",
    ),
    (("timed out", "timeout"), "the connection timed out"),
    (("unreachable",), "the network is unreachable"),
    (("reset",), "the connection was reset"),
    (("certificate verify failed",), UNTRUSTED_CERTIFICATE),
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

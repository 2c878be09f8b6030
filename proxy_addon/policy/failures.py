"""Failures described for clients and logs: the kind of failure, never an address or mitmproxy's text.

mitmproxy's own text carries the resolved address and port, which with CONNECT_TO is an
internal address; clients and logs get a fixed phrase instead. The same goes for a client's
failed TLS handshake with the proxy, whose most common cause is a client that does not trust
the proxy's CA.
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


CLIENT_TLS_FAILURES = (
    (("closed early",), "the client closed the connection before its TLS handshake began", False),
    (
        ("unknown ca", "bad certificate", "certificate unknown"),
        "the client refused the proxy's certificate: it does not trust the proxy's CA",
        True,
    ),
    (
        ("disconnected during the handshake", "connection closed"),
        "the client closed the connection during the handshake, most likely because it does not trust the "
        "proxy's CA (Mono and .NET close without an alert)",
        True,
    ),
    (
        ("tls version", "protocol version", "unsupported protocol"),
        "the client and the proxy share no TLS version",
        False,
    ),
    (("clienthello",), "the client's TLS hello could not be read", False),
)


def client_tls_failure(error: str | None) -> tuple[str, bool]:
    """Why a client's TLS handshake with the proxy failed, as a fixed phrase, and whether the fix is to
    make the client trust the proxy's CA. `error` is mitmproxy's text (`Connection.error`)."""
    text = (error or "").lower()
    for needles, phrase, untrusted in CLIENT_TLS_FAILURES:
        if any(needle in text for needle in needles):
            return phrase, untrusted
    return "the TLS handshake failed", False

"""Fail closed (issue 11): every check refuses when it cannot decide; none lets a request through by raising."""

from __future__ import annotations

import socket

import pytest

from support.clients import open_tunnel, read_until_closed
from support.proxy import basic

LOGIN = "ci:Pr0xy-pa55word-9f3e"
VALID = basic(*LOGIN.split(":")).encode()


def raw_head(host: str, port: int, head: bytes) -> bytes:
    """Send `head` verbatim (any bytes) and return what the proxy answers until it closes or accepts."""
    with socket.create_connection((host, port), timeout=15) as sock:
        sock.sendall(head)
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


@pytest.fixture
def guarded(make_proxy):
    return make_proxy(ATLASSIAN_PROXY_PROXY_AUTH=LOGIN)


@pytest.mark.parametrize(
    "value",
    [b"Basic \xc3\xa9", b"Basic \xe9", VALID + b"\xff", b"Basic " + "é".encode() * 3],
    ids=["utf8-e-acute", "latin1-byte", "valid-then-ff", "non-ascii-run"],
)
def test_non_ascii_proxy_authorization_gets_407_for_connect_and_plain_http(guarded, plain_site, value):
    connect = b"CONNECT acme.atlassian.net:443 HTTP/1.1\r\nHost: acme.atlassian.net:443\r\nProxy-Authorization: "
    assert raw_head(guarded.host, guarded.port, connect + value + b"\r\n\r\n").startswith(b"HTTP/1.1 407")
    seen = len(plain_site.record.requests)
    plain = (
        f"GET http://127.0.0.1:{plain_site.port}/internal HTTP/1.1\r\nHost: 127.0.0.1:{plain_site.port}\r\n".encode()
        + b"Proxy-Authorization: "
        + value
        + b"\r\nConnection: close\r\n\r\n"
    )
    assert raw_head(guarded.host, guarded.port, plain).startswith(b"HTTP/1.1 407")
    assert len(plain_site.record.requests) == seen


def tunnel_request(proxy, head: bytes) -> bytes:
    tls = open_tunnel(proxy.host, proxy.port, "acme.atlassian.net", "acme.atlassian.net", proxy.ca_file)
    with tls:
        tls.sendall(head)
        return read_until_closed(tls)


@pytest.mark.parametrize("host", ["acme.atlassian.net:²", "acme.atlassian.net:٤٤٣", "acme.atlassian.net:𝟒𝟒𝟑"])
def test_unparsable_host_authority_is_400_and_nothing_goes_upstream(proxy, site, host):
    seen = len(site.record.requests)
    head = (
        f"GET /rest/api/3/myself HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic Y2xpZW50OnNlY3JldA==\r\n"
        "Cookie: own=1\r\nConnection: close\r\n\r\n"
    ).encode()
    reply = tunnel_request(proxy, head)
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b"Traceback" not in reply
    assert len(site.record.requests) == seen

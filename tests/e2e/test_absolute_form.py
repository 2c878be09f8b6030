"""`GET https://... HTTP/1.1` sent to the proxy in plain text, without CONNECT (axios < 1.16.1).

The proxy opens TLS to the URL's host itself and verifies it, so that host is the real
destination; the hop from the client is cleartext, which only loopback may use.
"""

from __future__ import annotations

import base64
import socket

from support.clients import read_until_closed
from support.proxy import EMAIL, TOKEN_192, basic

ACME = "acme.atlassian.net"
LOGIN = "ci:s3cret-Pa55word-17"
PROXY_AUTH = "Basic " + base64.b64encode(LOGIN.encode()).decode()
CLIENT_AUTH = "Authorization: Basic Y2xpZW50OnNlY3JldA==\r\n"


def send(host: str, port: int, request: str) -> bytes:
    with socket.create_connection((host, port), timeout=15) as sock:
        sock.sendall(request.encode())
        return read_until_closed(sock)


def absolute(url: str, host: str = ACME, extra: str = "") -> str:
    return f"GET {url} HTTP/1.1\r\nHost: {host}\r\n{CLIENT_AUTH}{extra}Connection: close\r\n\r\n"


def test_from_loopback_it_gets_exactly_the_injected_basic_over_verified_tls(proxy, site):
    reply = send(proxy.host, proxy.port, absolute(f"https://{ACME}/rest/api/3/myself?via=absolute"))
    assert reply.startswith(b"HTTP/1.1 200"), reply
    seen = site.record.last()
    assert seen.path == "/rest/api/3/myself?via=absolute"
    assert seen.sni == ACME
    assert [v for k, v in seen.headers if k.lower() == "authorization"] == [basic(EMAIL, TOKEN_192)]


def test_a_host_header_naming_another_host_gets_421_saying_which(proxy, site):
    before = len(site.record.requests)
    reply = send(proxy.host, proxy.port, absolute(f"https://{ACME}/x", host="other.example.test"))
    assert reply.startswith(b"HTTP/1.1 421"), reply
    assert b"the request names other.example.test" in reply
    assert len(site.record.requests) == before


def test_plain_http_absolute_form_stays_refused(proxy, site):
    before = len(site.record.requests)
    reply = send(proxy.host, proxy.port, absolute(f"http://{ACME}/x"))
    assert reply.startswith(b"HTTP/1.1 403"), reply
    assert b"plain http" in reply
    assert len(site.record.requests) == before


def test_inside_a_cleartext_tunnel_to_another_host_nothing_is_injected(proxy, site):
    """CONNECT other.example.test, then a plain-text absolute-form request for the credential host."""
    before = len(site.record.requests)
    with socket.create_connection((proxy.host, proxy.port), timeout=15) as sock:
        sock.sendall(b"CONNECT other.example.test:443 HTTP/1.1\r\nHost: other.example.test:443\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head
        sock.sendall(absolute(f"https://{ACME}/x?via=tunnel").encode())
        reply = read_until_closed(sock)
    injected = [r for r in site.record.requests[before:] if r.header("Authorization") == basic(EMAIL, TOKEN_192)]
    assert injected == [], reply

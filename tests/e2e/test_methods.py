"""Credentials ride only GET, HEAD, OPTIONS, POST, PUT, PATCH and DELETE (red team #9), end to end: any other
method to a credential host, in any case, is answered by the proxy and nothing reaches the site. (A TRACE echoed
by the site is test_redteam_findings.py's.)"""

from __future__ import annotations

import pytest

from support.clients import raw_tunnel


@pytest.mark.parametrize("method", [b"TRACE", b"trace", b"TRACK", b"PROPFIND", b"get"])
def test_another_method_inside_the_tunnel_gets_405_and_nothing_is_sent(proxy, site, method):
    before = len(site.record.requests)
    request = method + b" /rest/api/3/myself HTTP/1.1\r\nHost: acme.atlassian.net\r\nConnection: close\r\n\r\n"
    reply, _ = raw_tunnel(proxy.host, proxy.port, "acme.atlassian.net", "acme.atlassian.net", proxy.ca_file, request)
    assert reply.startswith(b"HTTP/1.1 405 "), reply[:200]
    assert b"\r\nAllow: GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE\r\n" in reply
    assert len(site.record.requests) == before


def test_a_connect_inside_the_tunnel_is_refused_and_nothing_is_sent(proxy, site):
    """mitmproxy refuses a CONNECT outside its regular mode before any hook sees it; the verdict's rule would answer
    405 if one ever did."""
    before = len(site.record.requests)
    request = b"CONNECT other.example.test:443 HTTP/1.1\r\nHost: other.example.test:443\r\n\r\n"
    reply, _ = raw_tunnel(proxy.host, proxy.port, "acme.atlassian.net", "acme.atlassian.net", proxy.ca_file, request)
    assert not reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert len(site.record.requests) == before

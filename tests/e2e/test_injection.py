"""End to end: real proxy, real TLS stand-in, real clients. What reaches the site is the proof."""

from __future__ import annotations

import ssl

import httpx
import pytest

from support import h2_upstream
from support.clients import curl, raw_connect, raw_tunnel, with_httpx, with_requests
from support.proxy import EMAIL, TOKEN_24, TOKEN_192, basic

MYSELF = "https://acme.atlassian.net/rest/api/3/myself"


def test_curl_gets_the_configured_identity_and_loses_its_own(proxy, site):
    result = curl(
        proxy.url,
        MYSELF,
        proxy.ca_file,
        "-u",
        "client:own-password",
        "-H",
        "Cookie: tenant.session.token=client-cookie",
        "-H",
        "Proxy-Authorization: Basic Y2xpZW50OnByb3h5",
        "-D",
        "-",
    )
    assert result.returncode == 0, result.stderr
    assert '"displayName": "Test User"' in result.stdout
    seen = site.record.last()
    assert seen.path == "/rest/api/3/myself"
    assert seen.header("Authorization") == basic(EMAIL, TOKEN_192)
    assert seen.header("Cookie") is None
    assert seen.header("Proxy-Authorization") is None
    assert seen.sni == "acme.atlassian.net"


def test_set_cookie_from_the_site_never_reaches_the_client(proxy, site):
    result = curl(proxy.url, MYSELF, proxy.ca_file, "-D", "-", "-o", "/dev/null")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/1.1 200")
    assert "set-cookie" not in result.stdout.lower()


def test_userinfo_in_the_url_is_replaced(proxy, site):
    result = curl(proxy.url, "https://someone:their-password@acme.atlassian.net/rest/api/3/myself", proxy.ca_file)
    assert result.returncode == 0, result.stderr
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)


@pytest.mark.parametrize("client", [with_requests, with_httpx], ids=["requests", "httpx"])
def test_python_clients_get_the_identity(proxy, site, client):
    reply = client(proxy.url, MYSELF, proxy.ca_file, {"Authorization": "Bearer client-token", "Cookie": "x=y"})
    assert reply.status == 200
    assert "set-cookie" not in {k.lower() for k in reply.headers}
    seen = site.record.last()
    assert seen.header("Authorization") == basic(EMAIL, TOKEN_192)
    assert seen.header("Cookie") is None


@pytest.mark.parametrize("token", [TOKEN_24, TOKEN_192], ids=["legacy-24", "variable-192"])
def test_tokens_of_any_length_and_alphabet(make_proxy, site, token):
    assert len(token) in (24, 192)
    proxy = make_proxy(ATLASSIAN_PROXY_API_TOKEN=token)
    result = curl(proxy.url, MYSELF, proxy.ca_file)
    assert result.returncode == 0, result.stderr
    assert site.record.last().header("Authorization") == basic(EMAIL, token)


@pytest.mark.parametrize(
    "url",
    [
        "https://ACME.Atlassian.NET/rest/api/3/myself",
        "https://acme.atlassian.net./rest/api/3/myself",
    ],
    ids=["upper-case", "trailing-dot"],
)
def test_spellings_of_the_same_host_are_the_same_host(proxy, site, url):
    result = curl(proxy.url, url, proxy.ca_file)
    assert result.returncode == 0, result.stderr
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)


@pytest.mark.parametrize("host", ["other.example.test", "acme.atlassian.net.example.test", "evilatlassian.net"])
def test_other_hosts_are_tunnelled_untouched(proxy, site, ca_file, host):
    # Trusting only the stand-in's own CA proves the proxy did not decrypt: its CA would fail.
    result = curl(proxy.url, f"https://{host}/untouched", ca_file, "-H", "Authorization: Bearer mine")
    assert result.returncode == 0, result.stderr
    seen = site.record.last()
    assert seen.path == "/untouched"
    assert seen.header("Authorization") == "Bearer mine"
    assert seen.sni == host

    intercepted = curl(proxy.url, f"https://{host}/untouched", proxy.ca_file)
    assert intercepted.returncode == 60, "the proxy's CA must not be able to verify a tunnelled host"


def test_plain_http_to_a_credential_host_is_refused_and_nothing_is_sent(make_proxy, site):
    proxy = make_proxy(ATLASSIAN_PROXY_UPSTREAM_POOL="false")  # it counts upstream connections: no warm ones
    connections, requests_seen = site.record.connections, len(site.record.requests)
    result = curl(proxy.url, "http://acme.atlassian.net/rest/api/3/myself", proxy.ca_file, "-w", "%{http_code}")
    assert result.stdout.endswith("403")
    assert "use https://" in result.stdout
    assert (site.record.connections, len(site.record.requests)) == (connections, requests_seen)


def test_connect_elsewhere_with_an_atlassian_host_header_gets_nothing(proxy, site, ca_file):
    request = b"GET /spoofed-host HTTP/1.1\r\nHost: acme.atlassian.net\r\nConnection: close\r\n\r\n"
    reply, _ = raw_tunnel(proxy.host, proxy.port, "other.example.test", "other.example.test", ca_file, request)
    assert reply.startswith(b"HTTP/1.1 200")
    seen = site.record.last()
    assert seen.path == "/spoofed-host"
    assert seen.header("Authorization") is None


def test_connect_elsewhere_with_an_atlassian_sni_gets_nothing(proxy, site, ca_file):
    request = b"GET /spoofed-sni HTTP/1.1\r\nHost: acme.atlassian.net\r\nConnection: close\r\n\r\n"
    reply, _ = raw_tunnel(proxy.host, proxy.port, "other.example.test", "acme.atlassian.net", ca_file, request)
    assert reply.startswith(b"HTTP/1.1 200"), "tunnelled: the stand-in's own certificate verified"
    seen = site.record.last()
    assert seen.path == "/spoofed-sni"
    assert seen.header("Authorization") is None


def test_sni_naming_another_host_inside_an_atlassian_connect_gets_nothing(proxy, site, ca_file):
    request = b"GET /other-sni HTTP/1.1\r\nHost: other.example.test\r\nConnection: close\r\n\r\n"
    reply, _ = raw_tunnel(proxy.host, proxy.port, "acme.atlassian.net", "other.example.test", ca_file, request)
    assert reply.startswith(b"HTTP/1.1 200")
    seen = site.record.last()
    assert seen.path == "/other-sni"
    assert seen.header("Authorization") is None


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /misdirected HTTP/1.1\r\nHost: other.example.test\r\nConnection: close\r\n\r\n",
        b"GET /misdirected HTTP/1.1\r\nHost: acme.atlassian.net:8443\r\nConnection: close\r\n\r\n",
        b"GET https://other.example.test/misdirected HTTP/1.1\r\nHost: other.example.test\r\nConnection: close\r\n\r\n",
    ],
    ids=["host-header", "host-header-port", "absolute-form"],
)
def test_request_naming_another_host_inside_the_tunnel_gets_421(proxy, site, request_bytes):
    requests_seen = len(site.record.requests)
    reply, _ = raw_tunnel(
        proxy.host, proxy.port, "acme.atlassian.net", "acme.atlassian.net", proxy.ca_file, request_bytes
    )
    assert reply.startswith(b"HTTP/1.1 421"), reply[:200]
    assert len(site.record.requests) == requests_seen


def test_trailing_dot_sni_is_tunnelled_not_hung(proxy, site, ca_file):
    request = b"GET /dot-sni HTTP/1.1\r\nHost: acme.atlassian.net\r\nConnection: close\r\n\r\n"
    reply, _ = raw_tunnel(proxy.host, proxy.port, "acme.atlassian.net.", "acme.atlassian.net.", ca_file, request)
    assert reply.startswith(b"HTTP/1.1 200")
    assert site.record.last().header("Authorization") is None


def test_unreachable_site_gets_a_502_naming_the_host_not_the_internal_address(make_proxy, site):
    proxy = make_proxy(
        ATLASSIAN_PROXY_CONNECT_TO=f"dead.atlassian.net=127.0.0.9:9,*.atlassian.net=127.0.0.1:{site.port}"
    )
    result = curl(proxy.url, "https://dead.atlassian.net/x", proxy.ca_file, "-v")
    assert "CONNECT tunnel failed, response 502" in result.stderr
    raw, _ = raw_connect(proxy.host, proxy.port, "dead.atlassian.net")
    assert raw.startswith(b"HTTP/1.1 502")
    assert b"cannot reach dead.atlassian.net:443: the connection was refused" in raw
    assert b"127.0.0.9" not in raw
    assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0, "the proxy keeps serving others"


def test_http2_authority_naming_another_host_gets_421(make_proxy, ca):
    h2_site = h2_upstream.H2Server(ca.issue_cert("acme.atlassian.net"))
    try:
        proxy = make_proxy(ATLASSIAN_PROXY_CONNECT_TO=f"acme.atlassian.net=127.0.0.1:{h2_site.port}")
        context = ssl.create_default_context(cafile=str(proxy.ca_file))
        with httpx.Client(proxy=proxy.url, verify=context, http2=True, trust_env=False) as client:
            ok = client.get("https://acme.atlassian.net/h2")
            assert (ok.status_code, ok.http_version) == (200, "HTTP/2")
            seen = h2_site.record.last()
            assert dict(seen.headers)["authorization"] == basic(EMAIL, TOKEN_192)

            before = len(h2_site.record.requests)
            spoofed = client.get("https://acme.atlassian.net/h2", headers={"Host": "other.example.test"})
            assert spoofed.status_code == 421
            assert len(h2_site.record.requests) == before
    finally:
        h2_site.close()

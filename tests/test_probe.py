"""Issue 11 #4 and #5: after a pause, the probe holds its slot only while its flow lives and at most the
upstream timeout; a host a client chose under the wildcard never makes /healthz unready."""

from __future__ import annotations

import time

import pytest

from support.adminclient import admin_port, get, healthz
from support.clients import open_tunnel, status_and_body, with_requests
from support.proxy import EMAIL, TOKEN_24, basic, wait_for

BAD = basic(EMAIL, TOKEN_24)
ACME, GLOBEX = "acme.atlassian.net", "globex.atlassian.net"
PROBE_SECONDS = 4.0
TRAILER_HEAD = b"POST /upload HTTP/1.1\r\nHost: acme.atlassian.net\r\nTransfer-Encoding: chunked\r\n\r\n"
TRAILER_BODY = b"5\r\nhello\r\n0\r\nX-Checksum: 1234\r\n\r\n"
NO_BODY_HEAD = b"POST /upload HTTP/1.1\r\nHost: globex.atlassian.net\r\nContent-Length: 100\r\n\r\n"


@pytest.fixture
def rejecting(site):
    site.record.rejected.add(BAD)
    yield
    site.record.rejected.clear()


def myself(host: str) -> str:
    return f"https://{host}/rest/api/3/myself"


def seen_for(site, host: str) -> int:
    with site.record.lock:
        return sum(1 for r in site.record.requests if r.header("Host") == host)


def reaches_the_site(proxy, site, host: str) -> bool:
    """One request to `host`: did it get past the proxy's local 401?"""
    before = seen_for(site, host)
    status_and_body(proxy, myself(host))
    return seen_for(site, host) > before


def test_a_crashed_or_bodiless_probe_frees_its_slot_and_a_wildcard_host_leaves_healthz_ready(
    make_proxy, site, rejecting
):
    proxy = make_proxy(
        ATLASSIAN_PROXY_API_TOKEN=TOKEN_24,
        ATLASSIAN_PROXY_UPSTREAM_TIMEOUT=str(PROBE_SECONDS),
        ATLASSIAN_PROXY_ADMIN_PORT="0",
    )
    port = admin_port(proxy.output)
    for host in (ACME, GLOBEX):  # HOSTS is the default *.atlassian.net: both are a client's choice
        assert status_and_body(proxy, myself(host))[0] == "401"
    wait_for(lambda: proxy.output.count("rejected the API token") == 2, what="both hosts to be paused")
    assert healthz(port) == (200, {"status": "ok", "paused": [ACME, GLOBEX]})
    assert get(port, "/livez")[0] == 200
    paused = with_requests(proxy.url, myself(ACME), proxy.ca_file, {})
    assert paused.status == 401
    assert "token_rejected" in paused.body
    time.sleep(int(paused.headers["Retry-After"]) + 0.5)  # the pause is a clock: any request now would be the probe

    crashed = open_tunnel(proxy.host, proxy.port, ACME, ACME, proxy.ca_file)
    crashed.sendall(TRAILER_HEAD)
    wait_for(lambda: site.record.last().path == "/upload", what="the probe's head to reach the site")
    crashed.sendall(TRAILER_BODY)
    wait_for(lambda: "HTTP trailers are not implemented" in proxy.output, what="mitmproxy's HTTP/1 layer to fail")
    bodiless = open_tunnel(proxy.host, proxy.port, GLOBEX, GLOBEX, proxy.ca_file)
    bodiless.sendall(NO_BODY_HEAD)
    site.record.rejected.clear()  # the token is good again: the next probe that reaches the site ends the pause
    try:
        for host in (ACME, GLOBEX):  # both probes' clients stay connected, and no hook reports an end
            assert not reaches_the_site(proxy, site, host), f"the probe to {host} holds its slot for now"
        for host in (ACME, GLOBEX):
            wait_for(lambda h=host: reaches_the_site(proxy, site, h), timeout=2 * PROBE_SECONDS, what=f"{host} freed")
            assert status_and_body(proxy, myself(host))[0] == "200", "the pause is over"
    finally:
        crashed.close()
        bodiless.close()
    assert healthz(port) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "settings",
    [{"ATLASSIAN_PROXY_HOSTS": ACME}, {"ATLASSIAN_PROXY_SITE": ACME}],
    ids=["named-in-hosts", "atlassian-proxy-site"],
)
def test_a_paused_host_the_settings_name_makes_healthz_503_but_not_livez(make_proxy, site, rejecting, settings):
    proxy = make_proxy(ATLASSIAN_PROXY_API_TOKEN=TOKEN_24, ATLASSIAN_PROXY_ADMIN_PORT="0", **settings)
    port = admin_port(proxy.output)
    assert status_and_body(proxy, myself(ACME))[0] == "401"
    wait_for(lambda: "rejected the API token" in proxy.output, what="the pause")
    status, body = healthz(port)
    assert status == 503
    assert body["reason"].startswith(f"{ACME} rejected the API token")
    assert get(port, "/livez") == (200, "application/json", '{"status": "ok"}\n')

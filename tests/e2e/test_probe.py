"""After a pause the proxy checks the token itself (issue 20 #11): no client request is the test, so a
client that never finishes its request holds nobody out; a host a client chose under the wildcard
never makes /healthz unready (issue 11 #5)."""

from __future__ import annotations

import time

import pytest

from support.adminclient import admin_port, get, healthz
from support.clients import open_tunnel, status_and_body, with_requests
from support.proxy import EMAIL, TOKEN_24, basic, wait_for

BAD = basic(EMAIL, TOKEN_24)
ACME = "acme.atlassian.net"
NO_BODY_HEAD = b"POST /upload HTTP/1.1\r\nHost: acme.atlassian.net\r\nContent-Length: 100\r\n\r\n"


@pytest.fixture
def rejecting(site):
    site.record.rejected.add(BAD)
    yield
    site.record.rejected.clear()


def myself(host: str) -> str:
    return f"https://{host}/rest/api/3/myself"


def seen_since(site, count: int) -> list:
    with site.record.lock:
        return site.record.requests[count:]


def pause_and_wait_it_out(proxy, site) -> None:
    """The site rejects the token; wait until the pause is over (a clock: nothing tells when)."""
    assert status_and_body(proxy, myself(ACME))[0] == "401"
    wait_for(lambda: "rejected the API token" in proxy.output, what="the pause")
    paused = with_requests(proxy.url, myself(ACME), proxy.ca_file, {})
    assert (paused.status, "token_rejected" in paused.body) == (401, True)
    time.sleep(int(paused.headers["Retry-After"]) + 0.5)


def test_after_the_pause_the_proxy_checks_the_token_itself_and_a_client_without_a_body_holds_nobody_out(
    make_proxy, site, rejecting
):
    proxy = make_proxy(
        ATLASSIAN_PROXY_API_TOKEN=TOKEN_24, ATLASSIAN_PROXY_UPSTREAM_TIMEOUT="30", ATLASSIAN_PROXY_ADMIN_PORT="0"
    )
    port = admin_port(proxy.output)
    pause_and_wait_it_out(proxy, site)
    assert healthz(port) == (200, {"status": "ok", "paused": [ACME]}), "HOSTS is *.atlassian.net: a client's choice"
    assert get(port, "/livez")[0] == 200
    site.record.rejected.clear()  # the token is good again
    before = len(site.record.requests)
    bodiless = open_tunnel(proxy.host, proxy.port, ACME, ACME, proxy.ca_file)
    try:
        bodiless.sendall(NO_BODY_HEAD)  # and never the body: the client stays connected
        wait_for(lambda: seen_since(site, before), what="the first request after the pause to start the check")
        for _ in range(3):
            assert status_and_body(proxy, myself(ACME))[0] == "200", "nobody is held out"
    finally:
        bodiless.close()
    check, *others = seen_since(site, before)
    assert (check.method, check.path, check.header("Authorization")) == ("GET", "/rest/api/3/myself", BAD)
    assert check.header("User-Agent") is None, "the proxy's own request, not a client's"
    assert [(r.path, (r.header("User-Agent") or "")[:5]) for r in others] == [("/rest/api/3/myself", "curl/")] * 3
    wait_for(lambda: f"{ACME} accepts the API token again" in proxy.output, what="the end of the pause")
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

"""Browser guard: a web page cannot make credentialed requests through the proxy."""

from __future__ import annotations

import pytest

from support.clients import curl
from support.proxy import EMAIL, TOKEN_192, basic

MYSELF = "https://acme.atlassian.net/rest/api/3/myself"


@pytest.mark.parametrize(
    "header",
    ["Origin: https://evil.example", "Origin: null", "Sec-Fetch-Site: cross-site", "Sec-Fetch-Site: same-origin"],
)
def test_browser_requests_get_403_and_no_credentials_upstream(proxy, site, header):
    seen = len(site.record.requests)
    result = curl(proxy.url, MYSELF, proxy.ca_file, "-H", header, "-w", "%{http_code}")
    body, status = result.stdout[:-3], result.stdout[-3:]
    assert status == "403"
    assert body == (
        "atlassian-auth-proxy: refused to add credentials to a browser request (Origin or Sec-Fetch-Site): "
        "set ATLASSIAN_PROXY_ALLOW_BROWSERS=true to allow\n"
    )
    assert len(site.record.requests) == seen, "nothing was sent upstream"


def test_a_user_typed_navigation_still_gets_credentials(proxy, site):
    result = curl(proxy.url, MYSELF, proxy.ca_file, "-H", "Sec-Fetch-Site: none")
    assert result.returncode == 0, result.stderr
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)


def test_allow_browsers_opts_in(make_proxy, site):
    proxy = make_proxy(ATLASSIAN_PROXY_ALLOW_BROWSERS="true")
    result = curl(proxy.url, MYSELF, proxy.ca_file, "-H", "Origin: https://acme.atlassian.net")
    assert result.returncode == 0, result.stderr
    seen = site.record.last()
    assert seen.header("Authorization") == basic(EMAIL, TOKEN_192)
    assert seen.header("Origin") == "https://acme.atlassian.net"

"""How the proxy is reached and reaches out: a reverse target and a corporate proxy, parsed once, no password shown."""

from __future__ import annotations

import pytest

from proxy_addon.settings.modes import ReverseTarget, UpstreamProxy


def test_a_reverse_target_is_an_https_site_url():
    assert ReverseTarget.parse(" https://ACME.atlassian.net/ ") == ReverseTarget("acme.atlassian.net", 443)
    assert ReverseTarget.parse("https://jira.corp.example:8443").mode() == "reverse:https://jira.corp.example:8443"


@pytest.mark.parametrize(
    "text",
    [
        "http://acme.atlassian.net",
        "https://user@acme.atlassian.net",
        "https://acme.atlassian.net/jira",
        "https://a.b/?x",
    ],
)
def test_anything_but_a_site_url_is_no_reverse_target(text):
    with pytest.raises(ValueError, match="is not a site URL"):
        ReverseTarget.parse(text)


def test_an_upstream_proxy_keeps_its_password_secret():
    proxy = UpstreamProxy.parse("http://corp%40user:pa%3Ass@proxy.corp.example:3129")
    assert (proxy.host, proxy.port, proxy.user) == ("proxy.corp.example", 3129, "corp@user")
    assert proxy.auth() == "corp@user:pa:ss"
    assert proxy.mode() == "upstream:http://proxy.corp.example:3129"
    assert str(proxy) == repr(proxy) == "http://corp@user:***@proxy.corp.example:3129"
    assert "pa:ss" not in str(proxy)


def test_an_upstream_proxy_without_a_login_or_port():
    proxy = UpstreamProxy.parse("http://proxy.corp.example")
    assert (proxy.port, proxy.auth(), str(proxy)) == (3128, None, "http://proxy.corp.example:3128")


@pytest.mark.parametrize("text", ["https://proxy:3128", "http://:3128", "http://proxy:99999", "http://proxy:3128/path"])
def test_anything_but_http_host_port_is_refused_without_the_password(text):
    with pytest.raises(ValueError, match="the password is not shown here"):
        UpstreamProxy.parse(text)

"""Scoped-token paths on the API gateway: only the site's own prefix, no dot-segment escapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.scoped import Gateway, gateway_path, is_plain_path
from proxy_addon.policy.sites import Site

CLOUD = "c0ffee00-1234"
SITE = Site("acme", (HostPattern.parse("acme.atlassian.net"),), "me@acme.example", scoped=True)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/rest/api/3/myself", f"/ex/jira/{CLOUD}/rest/api/3/myself"),
        ("/rest/agile/1.0/board?x=1", f"/ex/jira/{CLOUD}/rest/agile/1.0/board?x=1"),
        ("/wiki/rest/api/space", f"/ex/confluence/{CLOUD}/wiki/rest/api/space"),
        ("/wiki/api/v2/pages", f"/ex/confluence/{CLOUD}/wiki/api/v2/pages"),
        ("/secure/Dashboard.jspa", None),
        ("/rest/../secure", None),
        ("/rest/%2e%2e/x", None),
        ("/rest/a%2fb", None),
    ],
)
def test_gateway_path(path, expected):
    assert gateway_path(CLOUD, path) == expected


def test_site_for_only_its_own_prefixes():
    gateway = Gateway()
    gateway.add(SITE, CLOUD)
    assert gateway.site_for(f"/ex/jira/{CLOUD}/rest/api/3/myself") is SITE
    assert gateway.site_for(f"/ex/confluence/{CLOUD}/wiki/rest/api/space") is SITE
    assert gateway.site_for(f"/ex/jira/{CLOUD}x/rest") is None
    assert gateway.site_for(f"/ex/jira/{CLOUD}") is None
    assert gateway.site_for(f"/ex/jira/{CLOUD}/../other/rest") is None
    assert gateway.site_for(f"/ex/jira/{CLOUD}/%2E%2E/other/rest") is None
    assert gateway.is_gateway("api.atlassian.com", 443)
    assert not gateway.is_gateway("api.atlassian.com", 8443)
    assert not Gateway().is_gateway("api.atlassian.com", 443)


@given(st.text(max_size=60))
def test_a_path_the_gateway_accepts_never_leaves_the_prefix(tail):
    gateway = Gateway()
    gateway.add(SITE, CLOUD)
    path = f"/ex/jira/{CLOUD}/{tail}"
    if gateway.site_for(path) is SITE:
        assert is_plain_path(path)
        assert ".." not in [segment for segment in path.partition("?")[0].split("/")]

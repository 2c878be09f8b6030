"""Scoped-token paths on the API gateway: only the site's own prefix, no dot-segment escapes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.scoped import Gateway, gateway_path, is_plain_path, site_path
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
        ("/rest/..;/..;/ex/jira/other/rest", None),
        ("/rest/.;x/api", None),
        ("/rest/%2e%2e%3b/x", None),
        ("/rest/api;v=3/myself", f"/ex/jira/{CLOUD}/rest/api;v=3/myself"),
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
    assert gateway.site_for(f"/ex/jira/{CLOUD}/..;/other/rest") is None, "a servlet resolves `..;` as `..`"
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
        assert ".." not in [segment.partition(";")[0] for segment in path.partition("?")[0].split("/")]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/ex/jira/{CLOUD}/rest/api/3/myself", "/rest/api/3/myself"),
        (f"/ex/jira/{CLOUD}/rest/api/3/search?jql=x", "/rest/api/3/search?jql=x"),
        (f"/ex/confluence/{CLOUD}/wiki/rest/api/content/1", "/wiki/rest/api/content/1"),
        (f"/ex/confluence/{CLOUD}/rest/api/content/1", "/wiki/rest/api/content/1"),
        (f"/ex/confluence/{CLOUD}/wiki/api/v2/pages?limit=5", "/wiki/api/v2/pages?limit=5"),
        (f"/ex/jira/{CLOUD}/wiki/rest/api/content", None),
        (f"/ex/jira/{CLOUD}/WIKI/rest/api/content", None),
        (f"/ex/jira/{CLOUD}/../other", None),
        (f"/ex/confluence/{CLOUD}/wiki/..;/..;/x", None),
        (f"/ex/jira/{CLOUD}x/rest/api/3/myself", None),
        ("/ex/jira/another/rest/api/3/myself", None),
        (f"/ex/jira/{CLOUD}", None),
    ],
)
def test_site_path_takes_a_gateway_form_back_to_the_sites_own_paths(path, expected):
    assert site_path(CLOUD, path) == expected


def test_the_gateway_knows_each_tenant_and_its_own_host():
    classic = Site("classic", (HostPattern.parse("*.corp.example"), HostPattern.parse("globex.atlassian.net")), "me")
    gateway = Gateway()
    gateway.add(classic, "c2")
    gateway.add(SITE, CLOUD, "acme.atlassian.net")
    tenant = gateway.tenant_for("/ex/jira/c2/rest/api/3/myself")
    assert tenant is not None
    assert (tenant.site, tenant.cloud_id, tenant.host) == (classic, "c2", "globex.atlassian.net")
    assert gateway.site_for(f"/ex/confluence/{CLOUD}/wiki/x") is SITE
    assert gateway.cloud_id(classic) == "c2"
    wildcards_only = Site("w", (HostPattern.parse("*.atlassian.net"),), "me")
    gateway.add(wildcards_only, "c3")
    assert gateway.tenants["w"].host is None

"""The site table: which configured site a host and port belong to, and the claims it refuses."""

from __future__ import annotations

import pytest

from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.sites import Scheme, Site, SiteConflict, SiteTable, app_password_user

ACME = "acme.atlassian.net"


def site(name: str, *patterns: str, **options) -> Site:
    return Site(name, tuple(HostPattern.parse(p) for p in patterns), f"{name}@example.test", **options)


def test_exact_beats_wildcard_and_longer_wildcard_beats_shorter():
    exact, corp = site("exact", ACME), site("corp", "*.corp.example.test")
    everything = site("all", "*.example.test", "*.atlassian.net")
    table = SiteTable.of([everything, corp, exact])
    assert table.lookup(ACME, 443) is exact
    assert table.lookup("other.atlassian.net", 443) is everything
    assert table.lookup("jira.corp.example.test", 443) is corp
    assert table.lookup("jira.other.example.test", 443) is everything
    assert table.lookup("corp.example.test", 443) is everything


def test_ports_are_part_of_a_pattern():
    dc = site("dc", "jira.corp.example:8443")
    table = SiteTable.of([dc])
    assert table.lookup("jira.corp.example", 8443) is dc
    assert table.lookup("jira.corp.example", 443) is None
    assert table.claims("jira.corp.example")


@pytest.mark.parametrize(
    ("sites", "message"),
    [
        ([site("a", ACME), site("b", ACME)], "sites 'a' and 'b' both claim acme.atlassian.net"),
        ([site("a", "*.atlassian.net"), site("b", "*.atlassian.net")], "both claim *.atlassian.net"),
        ([site("a", "id.atlassian.com")], "id.atlassian.com carries its own auth"),
    ],
)
def test_conflicting_sites_are_refused(sites, message):
    with pytest.raises(SiteConflict, match=message.replace("*", r"\*").replace(".", r"\.")):
        SiteTable.of(sites)


@pytest.mark.parametrize(
    "host", ["api.media.atlassian.com", "id.atlassian.com", "auth.atlassian.com", "x.id.atlassian.com"]
)
def test_hosts_with_their_own_auth_never_match_a_wildcard(host):
    assert SiteTable.of([site("all", "*.atlassian.com")]).lookup(host, 443) is None


@pytest.mark.parametrize(
    ("hosts", "user", "scheme", "warned"),
    [
        (("api.bitbucket.org",), "acme-bitbucket-user", Scheme.BASIC, True),
        (("*.bitbucket.org",), "acme-bitbucket-user", Scheme.BASIC, True),
        (("api.bitbucket.org",), "me@acme.example", Scheme.BASIC, False),
        (("bitbucket.org",), "x-bitbucket-api-token-auth", Scheme.BASIC, False),
        (("api.bitbucket.org",), "", Scheme.BEARER, False),
        (("acme.atlassian.net",), "someone", Scheme.BASIC, False),
    ],
)
def test_a_bitbucket_api_site_with_a_username_for_user_is_an_app_password_one(hosts, user, scheme, warned):
    site = Site("bb", tuple(HostPattern.parse(h) for h in hosts), user, scheme)
    assert app_password_user(site) is warned


def test_a_client_credentials_site_is_minted_and_on_the_gateway():
    hosts = (HostPattern.parse("acme.atlassian.net"),)
    assert Site("a", hosts, "", Scheme.CLIENT_CREDENTIALS).minted
    assert Site("a", hosts, "", Scheme.CLIENT_CREDENTIALS).on_gateway
    assert Site("a", hosts, "me", scoped=True).on_gateway
    assert not Site("a", hosts, "me", scoped=True).minted
    assert not Site("a", hosts, "me", cloud_id="c1").on_gateway

"""Each site's home, where its token's verdict is decided, and the hosts the settings name."""

from __future__ import annotations

from proxy_addon.policy.homes import Home, home_of, named_hosts
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.sites import Site, SiteTable


def site(name: str, *patterns: str) -> Site:
    return Site(name, tuple(HostPattern.parse(p) for p in patterns), f"{name}@example.test")


WILDCARD = site("acme", "*.atlassian.net")
HOMED = site("globex", "*.globex.example", "jira.globex.example:8443", "wiki.globex.example")
SITES = SiteTable.of([WILDCARD, HOMED])


def test_a_site_of_wildcards_only_has_no_home():
    assert home_of(WILDCARD, SITES, None) is None


def test_the_home_is_the_first_exact_host_with_its_port():
    assert home_of(HOMED, SITES, None) == Home("jira.globex.example", 8443)


def test_the_named_site_is_the_home_of_the_site_that_gets_it_and_of_no_other():
    assert home_of(WILDCARD, SITES, "acme.atlassian.net") == Home("acme.atlassian.net", 443)
    assert home_of(HOMED, SITES, "acme.atlassian.net") == Home("jira.globex.example", 8443)
    assert home_of(HOMED, SITES, "x.globex.example") == Home("x.globex.example", 443)
    assert home_of(WILDCARD, SITES, "nobody.example.test") is None, "a host no site claims is nobody's home"


def test_the_named_hosts_are_the_exact_patterns_and_the_named_site():
    assert named_hosts(SITES, None) == {("globex", "jira.globex.example"), ("globex", "wiki.globex.example")}
    assert named_hosts(SITES, "t3.atlassian.net") == {
        ("globex", "jira.globex.example"),
        ("globex", "wiki.globex.example"),
        ("acme", "t3.atlassian.net"),
    }
    assert named_hosts(SITES, "nobody.example.test") == named_hosts(SITES, None)

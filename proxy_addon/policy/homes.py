"""Which hosts the settings name, and each site's home: where its token's verdict is decided.

A host under a wildcard (`t0.atlassian.net` under `*.atlassian.net`) is whatever a client asks
for: another tenant, where even a valid token may be refused. A host the settings name exactly
(a site's exact pattern, or `ATLASSIAN_PROXY_SITE`) is the operator's choice. So a rejection seen
on any host is confirmed at the site's home, one of the named hosts, and only the home's answer
pauses the whole site; a site with no named host has no home, and every host speaks for it.

Pure: the site table and the setting come in, names go out.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy_addon.policy.hosts import HTTPS_PORT
from proxy_addon.policy.sites import Site, SiteTable


@dataclass(frozen=True, slots=True)
class Home:
    """The host (and its port) where a site's token is judged."""

    host: str
    port: int


def home_of(site: Site, sites: SiteTable, named_site: str | None) -> Home | None:
    """`named_site` (ATLASSIAN_PROXY_SITE) when `site` is the one it gets, else `site`'s first exact host;
    None for a site of wildcards only."""
    if (
        named_site is not None
        and (owner := sites.lookup(named_site, HTTPS_PORT)) is not None
        and owner.name == site.name
    ):
        return Home(named_site, HTTPS_PORT)
    return next((Home(p.domain, p.port) for p in site.patterns if not p.wildcard), None)


def named_hosts(sites: SiteTable, named_site: str | None) -> frozenset[tuple[str, str]]:
    """(site, host) for every host the settings name exactly: the sites' exact patterns and ATLASSIAN_PROXY_SITE."""
    named = {(site.name, p.domain) for site in sites.sites for p in site.patterns if not p.wildcard}
    if named_site is not None and (owner := sites.lookup(named_site, HTTPS_PORT)) is not None:
        named.add((owner.name, named_site))
    return frozenset(named)

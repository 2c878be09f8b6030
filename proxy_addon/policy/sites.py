"""Sites: which identity a host gets. Several sites may be configured; one host gets at most one.

A host is looked up by walking from its full name to ever shorter parent domains, so the most
specific pattern wins: an exact name beats any wildcard, and `*.corp.example` beats `*.example`.
Two sites claiming the same pattern is an error at load, never a silent choice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

from proxy_addon.policy.hosts import HostPattern

if TYPE_CHECKING:
    from proxy_addon.policy.layouts import Prefixes

# Hosts that carry their own auth (attachment downloads redirect to the media host with a token
# in the URL): never credentialed, even when a wildcard covers them.
NEVER_CREDENTIALED = ("api.media.atlassian.com", "id.atlassian.com", "auth.atlassian.com")
BITBUCKET_API = "api.bitbucket.org"
APP_PASSWORDS_REMOVED = "2026-07-28"
"""The day Bitbucket Cloud stopped accepting app passwords."""


class Scheme(StrEnum):
    BASIC = "basic"
    BEARER = "bearer"
    CLIENT_CREDENTIALS = "client_credentials"
    """A service account's OAuth client: the proxy mints Bearer access tokens (`credentials.minted`)."""


class SiteConflict(ValueError):
    """Two sites claim the same pattern, or a site claims a host that is never credentialed."""


@dataclass(frozen=True)
class Site:
    """One identity and the hosts it is sent to. `user` is the Basic user (usually the email)."""

    name: str
    patterns: tuple[HostPattern, ...]
    user: str
    scheme: Scheme = Scheme.BASIC
    read_only: bool = False
    scoped: bool = False
    token_expires: date | None = None
    """When the user says the token expires (Atlassian does not tell the proxy)."""
    layout: Prefixes | None = None
    """Where a Data Center or Server site serves its product (`product`, `context_path`); Cloud hosts need none."""
    cloud_id: str | None = None
    """The Cloud site's cloudId as configured; scoped and client-credentials sites look it up without it."""

    @property
    def minted(self) -> bool:
        """Its credential is an access token the proxy mints (a service account's client credentials)."""
        return self.scheme is Scheme.CLIENT_CREDENTIALS

    @property
    def on_gateway(self) -> bool:
        """Its credential works only on the API gateway: a scoped token, or a minted access token."""
        return self.scoped or self.scheme is Scheme.CLIENT_CREDENTIALS


def app_password_user(site: Site) -> bool:
    """A Basic site for Bitbucket's REST API whose user has no `@`: an app password's Bitbucket username.

    App passwords were removed on `APP_PASSWORDS_REMOVED`; the API tokens that replace them take
    the Atlassian account email as the REST API's user, so such a site's requests all fail.
    """
    return (
        site.scheme is Scheme.BASIC
        and "@" not in site.user
        and any(pattern.matches(BITBUCKET_API) for pattern in site.patterns)
    )


def never_credentialed(name: str) -> bool:
    return any(name == host or name.endswith("." + host) for host in NEVER_CREDENTIALED)


@dataclass(frozen=True)
class SiteTable:
    """Host (and port) to site, built once at load."""

    sites: tuple[Site, ...]
    exact: dict[tuple[str, int], Site] = field(default_factory=dict)
    wildcard: dict[tuple[str, int], Site] = field(default_factory=dict)

    @classmethod
    def of(cls, sites: Iterable[Site]) -> SiteTable:
        table = cls(tuple(sites))
        for site in table.sites:
            for pattern in site.patterns:
                index = table.wildcard if pattern.wildcard else table.exact
                key = (pattern.domain, pattern.port)
                if key in index:
                    raise SiteConflict(f"sites {index[key].name!r} and {site.name!r} both claim {pattern}")
                if not pattern.wildcard and never_credentialed(pattern.domain):
                    raise SiteConflict(f"{pattern} carries its own auth and never gets credentials")
                index[key] = site
        return table

    def lookup(self, name: str | None, port: int | None) -> Site | None:
        """The site whose most specific pattern matches `name:port`, or None; `name` is normalized."""
        if name is None or port is None or never_credentialed(name):
            return None
        if site := self.exact.get((name, port)):
            return site
        labels = name.split(".")
        for i in range(1, len(labels)):
            if site := self.wildcard.get((".".join(labels[i:]), port)):
                return site
        return None

    def claims(self, name: str | None) -> bool:
        """Does any site claim this normalized name on any port? (Plain http to it is refused.)"""
        return name is not None and any(p.matches(name) for site in self.sites for p in site.patterns)


CLOUD_SITE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.atlassian\.net")


def pinnable_site(name: str, configured: tuple[HostPattern, ...]) -> bool:
    """May `login --site` send a token to `name` (normalized) and pin HOSTS to it?

    Only an Atlassian Cloud site name (one label under atlassian.net, as Atlassian issues them)
    or a host the configuration already names exactly: a typo or look-alike never gets the token.
    """
    return CLOUD_SITE.fullmatch(name) is not None or any(
        not pattern.wildcard and pattern.matches(name) for pattern in configured
    )

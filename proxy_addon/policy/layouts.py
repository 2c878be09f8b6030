"""Where Jira and Confluence live on a site: a bounded request's product comes from its site, never from a guess.

Atlassian Cloud serves both products on one host, Jira at `/` and Confluence under `/wiki`; the
API gateway serves each under `/ex/{jira|confluence}/{cloudId}`. A Data Center or Server site
serves one product, at the context path its administrator chose (`/`, `/jira`, `/confluence`),
which its `[[sites]]` table declares (`product`, `context_path`). The boundaries judge a path in
one canonical form, Cloud's (`/rest/...` is Jira, `/wiki/...` is Confluence): a layout places a
site's path in that form and says where the product lives on the site, so that id lookups go
back to the site's own paths. A site whose layout is not declared places nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from proxy_addon.policy.scoped import GATEWAY


class Product(StrEnum):
    JIRA = "Jira"
    CONFLUENCE = "Confluence"


CANONICAL = {Product.JIRA: "", Product.CONFLUENCE: "/wiki"}
"""Where each product's paths begin in the canonical form the route table is written in (Cloud's)."""
GATEWAY_PREFIX = re.compile(r"/ex/(jira|confluence)/[0-9a-f-]+(?=/|$)", re.IGNORECASE | re.ASCII)
CLOUD_DOMAIN = "atlassian.net"


@dataclass(frozen=True, slots=True)
class Placed:
    """A site's path in canonical form, and where its product lives on that site."""

    product: Product
    route: str
    base: str
    """The site's own path for the product's canonical beginning: `""` for Cloud's Jira, `/wiki` for
    Cloud's Confluence, `/ex/jira/{cloudId}` on the gateway, a Data Center context path."""


def _under(route: str, prefix: str) -> bool:
    """Is the lower-case `route` at or below the lower-case `prefix` (`""`: the root, under which everything is)?"""
    return not prefix or route == prefix or route.startswith(prefix + "/")


LATEST = re.compile(r"/rest/(api|agile)/latest(?=/|$)", re.IGNORECASE | re.ASCII)
LATEST_IS = {"api": "/rest/api/2", "agile": "/rest/agile/1.0"}
"""On Data Center and Server, Jira's REST APIs answer `latest` for their newest version, which there is 2
(`/rest/api`) and 1.0 (`/rest/agile`): the same API, placed as that version. Cloud documents only 2 and 3."""


@dataclass(frozen=True, slots=True)
class Prefixes:
    """Each product at one path prefix of the site (`""`: the root), or not served there (None).

    Both at once is Cloud's layout; a path under both prefixes belongs to the longer one.
    Prefixes are compared without regard to case, as the route table is. `data_center`: a
    declared Data Center or Server site, whose `latest` API versions are placed as what they are
    there (`LATEST_IS`).
    """

    jira: str | None = None
    confluence: str | None = None
    data_center: bool = False

    @property
    def known(self) -> bool:
        return self.jira is not None or self.confluence is not None

    def place(self, route: str) -> Placed | None:
        """`route` (a decoded path without query) in canonical form, or None when no product serves it."""
        lowered = route.lower()
        best: tuple[Product, str] | None = None
        for product, prefix in ((Product.JIRA, self.jira), (Product.CONFLUENCE, self.confluence)):
            if prefix is not None and _under(lowered, prefix.lower()) and (best is None or len(prefix) > len(best[1])):
                best = product, prefix
        if best is None:
            return None
        product, prefix = best
        placed = CANONICAL[product] + route[len(prefix) :] or "/"
        if self.data_center and product is Product.JIRA and (latest := LATEST.match(placed)):
            placed = LATEST_IS[latest[1].lower()] + placed[latest.end() :]
        return Placed(product, placed, prefix)

    def __str__(self) -> str:
        served = ((Product.JIRA, self.jira), (Product.CONFLUENCE, self.confluence))
        named = [f"{product} at {prefix or '/'}" for product, prefix in served if prefix is not None]
        return ", ".join(named) or "not known"


@dataclass(frozen=True, slots=True)
class GatewayPrefixes:
    """The API gateway: `/ex/jira/{cloudId}` is Jira, `/ex/confluence/{cloudId}` Confluence, with or without `/wiki`."""

    known = True

    def place(self, route: str) -> Placed | None:
        match = GATEWAY_PREFIX.match(route)
        if match is None:
            return None
        prefix = match[0]
        if match[1].lower() == "jira":
            return Prefixes(jira=prefix).place(route)
        wiki = prefix + "/wiki"
        return Prefixes(confluence=wiki if _under(route.lower(), wiki.lower()) else prefix).place(route)

    def __str__(self) -> str:
        return "the API gateway's /ex/jira/{cloudId} and /ex/confluence/{cloudId}"


type Layout = Prefixes | GatewayPrefixes
CLOUD = Prefixes(jira="", confluence="/wiki")
ON_GATEWAY = GatewayPrefixes()
UNKNOWN = Prefixes()


def declared(product: Product, context_path: str) -> Prefixes:
    """The layout a Data Center or Server site declares: one product at its context path (`/`, `/jira`)."""
    prefix = context_path.rstrip("/")
    if product is Product.JIRA:
        return Prefixes(jira=prefix, data_center=True)
    return Prefixes(confluence=prefix, data_center=True)


def is_cloud_host(name: str) -> bool:
    """An Atlassian Cloud site's host (normalized): Cloud's layout, whatever a site table says."""
    return name == CLOUD_DOMAIN or name.endswith("." + CLOUD_DOMAIN)


def layout_of(host: str | None, site_layout: Prefixes | None) -> Layout:
    """The layout a request to `host` (normalized) is judged in.

    The host decides first: the gateway and Cloud hosts have Cloud's layout. Any other host has
    its site's declared layout, or none known.
    """
    if host == GATEWAY:
        return ON_GATEWAY
    if host is not None and is_cloud_host(host):
        return CLOUD
    return site_layout if site_layout is not None else UNKNOWN

"""The `Prepared` configuration hook tests hand to the root or a child, as `configure` would build it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import SecretStr

from proxy_addon.addons.prepared import Prepared
from proxy_addon.credentials.sources import Credentials, EnvToken, Resolved
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Site, SiteTable
from proxy_addon.policy.verdict import Policy


def resolved(site: Site, token: str) -> Resolved:
    """`site` with `token` from the environment."""
    secret = SecretStr(token)
    return Resolved(site, EnvToken(secret, "test"), Credentials.of(site.user, secret, "test", site.scheme))


def prepared(sites: Iterable[Site] = (), token: str = "tok3n-for-hook-tests", **fields: Any) -> Prepared:
    """`sites`, each with `token`; `fields` as `Prepared` takes them (clients, login, ...)."""
    sites = tuple(sites)
    fields.setdefault("policy", Policy(SiteTable.of(sites), Gateway()))
    return Prepared(resolved=tuple(resolved(site, token) for site in sites), **fields)

"""Ask a site who the credentials belong to (its identity page), and a Cloud site's cloudId.

Both go through the proxy's own HTTP client (`credentials.http_client`), so `check` and `login`
test exactly the path `run` uses.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy_addon.credentials.http_client import Reach, Unreachable, fetch, get, json_object
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import rejection_reason
from proxy_addon.policy.unauthorized import identity_page
from proxy_addon.settings.names import SettingsError, env_name


@dataclass(frozen=True)
class Answer:
    """What the identity page said: the status, why it rejected the credentials, and whose they are."""

    status: int
    rejection: str | None
    display_name: str | None
    account_id: str | None


def identity_path(site: Site, host: str, port: int) -> str | None:
    """Where `host` says whose credentials of `site` these are (the page token health asks too, from the
    site's layout); None for hosts whose identity page is elsewhere (bitbucket.org's is on api.bitbucket.org)."""
    page = identity_page(site, host, port, None)
    return page.path if page.host == host else None


@dataclass(frozen=True)
class CheckTarget:
    """Where to verify a site's token: a host, its port, and the identity page there."""

    host: str
    port: int
    path: str | None


def check_target(site: Site, preferred: str | None) -> CheckTarget:
    """`preferred` (ATLASSIAN_PROXY_SITE) when it belongs to this site, else the site's only exact host."""
    exact = [p for p in site.patterns if not p.wildcard]
    matching = [p for p in site.patterns if preferred is not None and p.matches(preferred)]
    if preferred is not None and matching:
        port = matching[0].port
        return CheckTarget(preferred, port, identity_path(site, preferred, port))
    if len(exact) == 1:
        host, port = exact[0].domain, exact[0].port
        return CheckTarget(host, port, identity_path(site, host, port))
    raise SettingsError(f"{env_name('site')} is not set: set it to your site (e.g. acme.atlassian.net), or pass --site")


def cloud_id(site: str, reach: Reach) -> str:
    """The site's cloudId from `/_edge/tenant_info`, which needs no credentials."""
    status, _, body = get(site, 443, "/_edge/tenant_info", {}, reach)
    value = json_object(body).get("cloudId") if status == 200 else None
    if not isinstance(value, str) or not value.replace("-", "").isalnum():
        raise Unreachable(f"cannot look up the cloudId of {site}: /_edge/tenant_info answered HTTP {status}")
    return value


def ask_myself(
    site: str, credentials: Credentials, reach: Reach, port: int = 443, path: str = "/rest/api/3/myself"
) -> Answer:
    status, headers, body = fetch(site, port, path, credentials, reach)
    profile = json_object(body) if status == 200 else {}
    return Answer(
        status,
        rejection_reason(status, headers),
        profile.get("displayName") or profile.get("display_name"),
        profile.get("accountId"),
    )

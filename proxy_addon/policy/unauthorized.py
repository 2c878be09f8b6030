"""What a site's 401 (or redirect) says about the token: rejected, short of a scope, or not known yet.

Atlassian answers 401 for three different reasons, and only one of them means the token is bad:
- `X-Seraph-LoginReason: AUTHENTICATED_FAILED` / `AUTHENTICATION_DENIED` (on a 401 or a 200):
  the site rejected the credentials. Definitive.
- `X-Failure-Category: FAILURE_CLIENT_SCOPE_CHECK`: a scoped token has no scope for this route.
  The token is fine; pausing it would stop every other route.
- any other 401: a revoked token, or an endpoint that wants a permission the account lacks
  (`POST /rest/api/3/project` without admin rights). Only the site's identity page can tell
  which, so the proxy asks it once before it pauses anything.

Pure code: the hooks gather the status and headers and act on the `AnswerKind`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from proxy_addon.policy.hosts import normalize_host
from proxy_addon.policy.scoped import GATEWAY, Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.token_health import rejection_reason

SCOPE_CHECK = "FAILURE_CLIENT_SCOPE_CHECK"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
RENAMABLE_DOMAIN = "atlassian.net"
BITBUCKET_API = "api.bitbucket.org"
SCOPE_MISSES_REMEMBERED = 1000
"""Routes whose scope miss was already logged; bounded, as routes carry issue keys and ids."""


class AnswerKind(StrEnum):
    REJECTED = "rejected"
    SCOPE_MISS = "scope-miss"
    AMBIGUOUS = "ambiguous"


def classify(status: int, headers: Mapping[str, str], from_identity_page: bool) -> AnswerKind | None:
    """What this answer to a credentialed request says about the token; None: nothing against it.

    A plain 401 from the identity page itself is definitive: that page answers every valid
    token, so there is nothing left to confirm.
    """
    if status == 401 and headers.get("x-failure-category", "").strip().upper() == SCOPE_CHECK:
        return AnswerKind.SCOPE_MISS
    reason = rejection_reason(status, headers)
    if reason is None:
        return None
    if status == 401 and reason == "HTTP 401" and not from_identity_page:
        return AnswerKind.AMBIGUOUS
    return AnswerKind.REJECTED


@dataclass(frozen=True, slots=True)
class IdentityPage:
    """Where to ask whether a token is valid: the site's own identity endpoint."""

    host: str
    port: int
    path: str


def identity_page(host: str, port: int, bearer: bool, cloud_id: str | None) -> IdentityPage:
    """The identity endpoint for credentials sent to `host:port`.

    Jira/Confluence Cloud: /rest/api/3/myself; the gateway (scoped tokens): that path under the
    site's /ex/jira/{cloudId}; Bitbucket: api.bitbucket.org/2.0/user; Data Center (bearer):
    /rest/api/2/myself.
    """
    if host == GATEWAY and cloud_id is not None:
        return IdentityPage(GATEWAY, 443, f"/ex/jira/{cloud_id}/rest/api/3/myself")
    if host in ("bitbucket.org", BITBUCKET_API):
        return IdentityPage(BITBUCKET_API, 443, "/2.0/user")
    return IdentityPage(host, port, "/rest/api/2/myself" if bearer else "/rest/api/3/myself")


def own_identity_page(site: Site, sent_to: str, port: int, sites: SiteTable, gateway: Gateway) -> IdentityPage | None:
    """The identity page for `site`'s credentials sent to `sent_to:port`, if it is the site's own.

    Asking it carries the token, so it goes only where the token already may go: a host of the
    same site, or the gateway under the site's own cloudId. (Bitbucket's git host, for one, has
    its identity page on api.bitbucket.org, which may be another site's: it is never asked.)
    """
    cloud_id = gateway.cloud_id(site)
    page = identity_page(sent_to, port, site.scheme is Scheme.BEARER, cloud_id)
    own = sites.lookup(page.host, page.port)
    if (page.host == GATEWAY and cloud_id is not None) or (own is not None and own.name == site.name):
        return page
    return None


def check_page(site: Site, host: str, port: int, sites: SiteTable, gateway: Gateway) -> IdentityPage | None:
    """Where the proxy checks the token of `site` for `host` after a pause: where that host's requests went.

    A scoped site's requests all go to the gateway, so its token is checked there.
    """
    sent_to = GATEWAY if host == GATEWAY or (site.scoped and gateway.cloud_id(site) is not None) else host
    return own_identity_page(site, sent_to, port, sites, gateway)


class OncePer:
    """Remembers which keys were already reported, so each is logged once (bounded)."""

    def __init__(self, limit: int = SCOPE_MISSES_REMEMBERED) -> None:
        self.limit = limit
        self._seen: set[tuple[str, ...]] = set()

    def first(self, *key: str) -> bool:
        if key in self._seen or len(self._seen) >= self.limit:
            return False
        self._seen.add(key)
        return True


def renamed_to(status: int, location: str | None, host: str) -> str | None:
    """The other `atlassian.net` host a redirect from `host` points to (a renamed site), or None."""
    if status not in REDIRECTS or not location:
        return None
    try:
        target = normalize_host(urlsplit(location).hostname)
    except ValueError:
        return None
    if target is None or target == host:
        return None
    if target != RENAMABLE_DOMAIN and not target.endswith("." + RENAMABLE_DOMAIN):
        return None
    return target

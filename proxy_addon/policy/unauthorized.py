"""What a site's 401 (or redirect) says about the token, and where the proxy asks whether the token is good.

Atlassian answers 401 for three different reasons, and only one of them means the token is bad:
- `X-Failure-Category: FAILURE_CLIENT_SCOPE_CHECK`: a scoped token has no scope for this route.
  The token is fine; pausing it would stop every other route.
- `X-Seraph-LoginReason: AUTHENTICATED_FAILED` / `AUTHENTICATION_DENIED` (on a 401 or a 200): a
  login failed. But Seraph sets it for any failed login, and Data Center reads one from the query
  of any URL (`os_username`, `os_password`), so on a client's request it may be the client's own.
- any other 401: a revoked token, or an endpoint that wants a permission the account lacks
  (`POST /rest/api/3/project` without admin rights).
So no answer to a client's request is a verdict on the token by itself: only the site's identity
page, which answers every valid token, can tell, and the proxy asks it before it pauses anything.
The page is derived from the site's layout (a Data Center context path included); only a 2xx
from it accepts the token.

Pure code: the hooks gather the status and headers and act on what comes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote_plus, urlsplit

from proxy_addon.policy.hosts import normalize_host
from proxy_addon.policy.layouts import CLOUD, Prefixes, layout_of
from proxy_addon.policy.scoped import GATEWAY, Gateway
from proxy_addon.policy.sites import BITBUCKET_API, Scheme, Site, SiteTable
from proxy_addon.policy.token_health import Scope, rejection_reason

SCOPE_CHECK = "FAILURE_CLIENT_SCOPE_CHECK"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
RENAMABLE_DOMAIN = "atlassian.net"
SCOPE_MISSES_REMEMBERED = 1000
"""Routes whose scope miss was already logged; bounded, as routes carry issue keys and ids."""


QUERY_LOGINS = frozenset({"os_username", "os_password", "os_authtype", "os_cookie"})
"""Query parameters with which Seraph (Jira and Confluence Data Center) logs a request in, lower case."""


class AnswerKind(StrEnum):
    SCOPE_MISS = "scope-miss"
    AGAINST = "against"
    """A 401 or a failed login: against the token, unless the identity page says otherwise."""


def classify(status: int, headers: Mapping[str, str]) -> AnswerKind | None:
    """What this answer to a credentialed request says about the token; None: nothing against it."""
    if status == 401 and headers.get("x-failure-category", "").strip().upper() == SCOPE_CHECK:
        return AnswerKind.SCOPE_MISS
    return None if rejection_reason(status, headers) is None else AnswerKind.AGAINST


class PageAnswer(StrEnum):
    """What the identity page said of the token."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    """No verdict: a 404, a 5xx, a redirect, or no answer at all."""


def read_identity_page(status: int, headers: Mapping[str, str]) -> tuple[PageAnswer, str]:
    """The identity page's answer to the token, and its reason (for the log).

    Accepted only by a 2xx, or by a scope miss (the token was authenticated, then found short of the
    page's scope); rejected by a 401 or a failed login; anything else tells nothing.
    """
    if status == 401 and headers.get("x-failure-category", "").strip().upper() == SCOPE_CHECK:
        return PageAnswer.ACCEPTED, f"HTTP 401 {SCOPE_CHECK}"
    reason = rejection_reason(status, headers)
    if reason is not None:
        return PageAnswer.REJECTED, reason
    if 200 <= status < 300:
        return PageAnswer.ACCEPTED, f"HTTP {status}"
    return PageAnswer.UNKNOWN, f"HTTP {status}, which says nothing of the token"


def confirmed(answer: PageAnswer, own: bool) -> Scope | None:
    """What a 401 (or failed login) pauses once the identity page answered.

    `own`: the page is the identity page of the host that answered, so its acceptance speaks for
    that host too (the 401 was about a permission). Otherwise the page is the site's home's: it
    accepting the token leaves only that host refusing it (another tenant), which pauses alone.
    A page that tells nothing leaves the 401 unconfirmed, and it counts as a rejection: pausing a
    good token costs a pause, sending a bad one again and again can lock the account.
    """
    if answer is PageAnswer.ACCEPTED:
        return None if own else Scope.HOST
    return Scope.SITE


def query_login(path: str) -> str | None:
    """The login parameter in the query of `path` (`os_username`, `os_password`, ...; any case, decoded), or None.

    Data Center's Seraph logs a request in with these wherever they appear in a URL, before the
    `Authorization` the proxy sets: a client's own login, as a client's `Authorization` is.
    """
    query = path.partition("?")[2]
    if not query:
        return None
    lowered = query.lower()
    if "os_" not in lowered and "%" not in lowered:
        return None
    for part in query.split("&"):
        name = unquote_plus(part.partition("=")[0]).lower()
        if name in QUERY_LOGINS:
            return name
    return None


@dataclass(frozen=True, slots=True)
class IdentityPage:
    """Where to ask whether a token is valid: the site's own identity endpoint."""

    host: str
    port: int
    path: str


def identity_path(site: Site, host: str) -> str:
    """The path of the identity page on `host` for `site`'s credentials, from the layout `host` is judged in.

    A declared Data Center or Server site: `{context_path}/rest/api/2/myself` for Jira,
    `{context_path}/rest/api/user/current` for Confluence. Otherwise Cloud's `/rest/api/3/myself`,
    or `/rest/api/2/myself` for a bearer site (Data Center's, at the root).
    """
    layout = layout_of(host, site.layout)
    if isinstance(layout, Prefixes) and layout != CLOUD:
        if layout.jira is not None and layout.confluence is None:
            return f"{layout.jira}/rest/api/2/myself"
        if layout.confluence is not None and layout.jira is None:
            return f"{layout.confluence}/rest/api/user/current"
    return "/rest/api/2/myself" if site.scheme is Scheme.BEARER else "/rest/api/3/myself"


def identity_page(site: Site, host: str, port: int, cloud_id: str | None) -> IdentityPage:
    """The identity endpoint for `site`'s credentials sent to `host:port`.

    The gateway (scoped tokens): Cloud's path under the site's /ex/jira/{cloudId}; Bitbucket:
    api.bitbucket.org/2.0/user; any other host: `identity_path`.
    """
    if host == GATEWAY and cloud_id is not None:
        return IdentityPage(GATEWAY, 443, f"/ex/jira/{cloud_id}/rest/api/3/myself")
    if host in ("bitbucket.org", BITBUCKET_API):
        return IdentityPage(BITBUCKET_API, 443, "/2.0/user")
    return IdentityPage(host, port, identity_path(site, host))


def own_identity_page(site: Site, sent_to: str, port: int, sites: SiteTable, gateway: Gateway) -> IdentityPage | None:
    """The identity page for `site`'s credentials sent to `sent_to:port`, if it is the site's own.

    Asking it carries the token, so it goes only where the token already may go: a host of the
    same site, or the gateway under the site's own cloudId. (Bitbucket's git host, for one, has
    its identity page on api.bitbucket.org, which may be another site's: it is never asked.)
    """
    cloud_id = gateway.cloud_id(site)
    page = identity_page(site, sent_to, port, cloud_id)
    own = sites.lookup(page.host, page.port)
    if (page.host == GATEWAY and cloud_id is not None) or (own is not None and own.name == site.name):
        return page
    return None


def check_page(site: Site, host: str, port: int, sites: SiteTable, gateway: Gateway) -> IdentityPage | None:
    """The identity page of `site`'s credentials for `host`: where that host's requests went.

    A scoped site's requests all go to the gateway, so its token is checked there.
    """
    sent_to = GATEWAY if host == GATEWAY or (site.on_gateway and gateway.cloud_id(site) is not None) else host
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

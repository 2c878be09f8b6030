"""What a site's answer to credentials says of the token, in one step: pass, scope miss, rejected, or confirm.

The answer's status and verdict fields (`policy.unauthorized.classify`), where the credentials
went and the site's identity page decide it. No answer to a client's request pauses the token by
itself: a 401 or a failed login is confirmed against the identity page first, unless there is no
page to ask (then it counts as a rejection) or the request was that very page, asked exactly as
the proxy asks it (`GET`, no query: nothing left to confirm, and nothing of the client's in it).

Two kinds of answer never pause anything nor ask any page: a 401 to a minted access token (a
service account's: the proxy mints a new one instead, `RENEW`), and a 401 from Atlassian's
remote MCP server, which has no identity page of its own (`UNJUDGED`).

The page asked is the one of the site's home when it has one (`policy.homes`): a classic token
is the account's, so its verdict is taken where the settings point, never on a host a client
chose. The hooks and the proxy's own requests gather the facts; `credentials.outbound` acts on
the reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from proxy_addon.policy.homes import home_of
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import rejection_reason
from proxy_addon.policy.unauthorized import AnswerKind, IdentityPage, check_page, classify
from proxy_addon.policy.verdict import Policy


class TokenVerdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    """Nothing against the token: the answer counts for it."""
    SCOPE_MISS = "scope-miss"
    """A scoped token lacks the scope of this route: the answer goes to the client, the token stays in use."""
    REJECTED = "rejected"
    """The site rejected the token: its site pauses."""
    CONFIRM = "confirm"
    """A 401 or a failed login: the identity page decides whether the token pauses."""
    RENEW = "renew"
    """A 401 to a minted access token (not a scope miss): the proxy mints a new one; nothing pauses."""
    UNJUDGED = "unjudged"
    """An answer against the token that nothing can confirm and nothing may pause on (the remote MCP server's
    401, a minted token's odd answer): the answer goes to the client, the token's health stays as it is."""


MCP_HOST = "mcp.atlassian.com"
"""Atlassian's remote MCP server: its 401s (an API token without MCP's scopes, an OAuth session to renew) are
the client's to handle, and it has no identity page to ask."""


class Sent(NamedTuple):
    """Where credentials went: the method, the host and port the request was sent to, and its path.

    A tuple: one is made for every answer to a credential, and a frozen dataclass costs three times as much.
    """

    method: str
    host: str
    port: int
    path: str

    @property
    def route(self) -> str:
        """The path without its query: queries carry JQL and other data that stays out of the log."""
        return self.path.partition("?")[0]


@dataclass(frozen=True, slots=True)
class Reading:
    verdict: TokenVerdict
    rejection: str | None = None
    """`REJECTED`: why, for the log line that says so; `CONFIRM`: what the answer said."""
    page: IdentityPage | None = None
    """`CONFIRM`: the identity page to ask."""
    own: bool = True
    """`CONFIRM`: the page is the answering host's own, so its acceptance speaks for that host too."""


PASSED = Reading(TokenVerdict.PASS)
SCOPE_MISSED = Reading(TokenVerdict.SCOPE_MISS)
RENEWED = Reading(TokenVerdict.RENEW)
UNJUDGED = Reading(TokenVerdict.UNJUDGED)


def token_page(site: Site, host: str, port: int, policy: Policy) -> IdentityPage | None:
    """Where the proxy asks whether `site`'s token is good, for an answer from (or a request to) `host:port`:
    the identity page of the site's home, or for a site without one, `host`'s own; None when that page
    is not the site's own to ask."""
    home = home_of(site, policy.sites, policy.named_site)
    if home is not None:
        host, port = home.host, home.port
    return check_page(site, host, port, policy.sites, policy.gateway)


def read_answer(status: int, fields: Mapping[str, str], sent: Sent, site: Site, policy: Policy) -> Reading:
    """What the answer to `site`'s credentials, `sent` as they were, says of the token.

    `fields` are the answer's verdict fields by lower-case name (`X-Failure-Category`,
    `X-Seraph-LoginReason`).
    """
    kind = classify(status, fields)
    if kind is None:
        return PASSED
    if kind is AnswerKind.SCOPE_MISS:
        return SCOPE_MISSED
    if site.minted:
        return RENEWED if status == 401 else UNJUDGED
    if sent.host == MCP_HOST:
        return UNJUDGED
    reason = rejection_reason(status, fields)
    page = token_page(site, sent.host, sent.port, policy)
    if page is None:
        return Reading(
            TokenVerdict.REJECTED, f"{reason}, and site {site.name} has no identity page of its own to confirm it"
        )
    if sent.method == "GET" and (sent.host, sent.port, sent.path) == (page.host, page.port, page.path):
        return Reading(TokenVerdict.REJECTED, reason)  # the identity page itself answers every valid token
    own = page == check_page(site, sent.host, sent.port, policy.sites, policy.gateway)
    return Reading(TokenVerdict.CONFIRM, reason, page, own)

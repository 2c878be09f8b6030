"""What a site's answer to credentials says of the token, in one step: pass, scope miss, rejected, or confirm.

The answer's status and verdict fields (`policy.unauthorized.classify`), where the credentials
went and the site's identity page decide it. Only a definitive rejection pauses the token; an
ambiguous 401 is confirmed against the site's own identity page first, unless there is none
to ask (then it counts as a rejection) or the answer came from that very page (nothing left to
confirm). The hooks and the proxy's own requests gather the facts; `credentials.outbound`
acts on the reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import rejection_reason
from proxy_addon.policy.unauthorized import AnswerKind, IdentityPage, classify, own_identity_page
from proxy_addon.policy.verdict import Policy


class TokenVerdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    """Nothing against the token: the answer counts for it."""
    SCOPE_MISS = "scope-miss"
    """A scoped token lacks the scope of this route: the answer goes to the client, the token stays in use."""
    REJECTED = "rejected"
    """The site rejected the token: it pauses."""
    CONFIRM = "confirm"
    """An ambiguous 401: the site's identity page decides whether the token pauses."""


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
    """`REJECTED`: why, for the log line that says so."""
    page: IdentityPage | None = None
    """`CONFIRM`: the identity page to ask."""


PASSED = Reading(TokenVerdict.PASS)
SCOPE_MISSED = Reading(TokenVerdict.SCOPE_MISS)


def read_answer(status: int, fields: Mapping[str, str], sent: Sent, site: Site, policy: Policy) -> Reading:
    """What the answer to `site`'s credentials, `sent` as they were, says of the token.

    `fields` are the answer's verdict fields by lower-case name (`X-Failure-Category`,
    `X-Seraph-LoginReason`).
    """
    kind = classify(status, fields, False)
    if kind is None:
        return PASSED
    if kind is AnswerKind.SCOPE_MISS:
        return SCOPE_MISSED
    if kind is AnswerKind.REJECTED:
        return Reading(TokenVerdict.REJECTED, rejection_reason(status, fields))
    page = own_identity_page(site, sent.host, sent.port, policy.sites, policy.gateway)
    if page is None:
        reason = f"HTTP 401, and site {site.name} has no identity page of its own to confirm it"
        return Reading(TokenVerdict.REJECTED, reason)
    if sent.method == "GET" and (sent.host, sent.route) == (page.host, page.path):
        return Reading(TokenVerdict.REJECTED, "HTTP 401")  # the identity page itself answers every valid token
    return Reading(TokenVerdict.CONFIRM, page=page)

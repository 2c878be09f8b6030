"""Every answer the proxy makes itself, in one table: the decision it records, its status, its text.

A hook that refuses names a `Refusal` and the facts its text needs; `addons.replies.refuse` is
the one writer that turns the entry into the client's answer. Most refusals are the one answer
of the decision they are named after (`REFUSAL_OF`); a few decisions have more than one answer
(the proxy login's 407 and its lockout's 429), and a few answers record no decision at all (the
pages of upstream failures, which keep the decision the request already had).

Texts name the host, the client or the setting involved and what to do; never a secret, an
address or an upstream's own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from proxy_addon.policy.record import Decision

MAX_HEAD_BYTES = 64 * 1024
"""The largest request head the proxy reads; a larger one is answered 431 (`HEAD_TOO_LARGE`, `HEAD_UNFINISHED`)."""
REALM = "atlassian-auth-proxy"
"""The realm of the proxy login's `Proxy-Authenticate` challenge."""


class Refusal(StrEnum):
    """Each answer the proxy makes in place of the site's; see `REFUSALS` for what each says."""

    CLEARTEXT = "cleartext"
    BAD_AUTHORITY = "bad-authority"
    MISDIRECTED = "misdirected"
    CLEARTEXT_HOP = "cleartext-hop"
    READ_ONLY = "read-only"
    CLIENT_SITE = "client-site"
    CLIENT_READ_ONLY = "client-read-only"
    METHOD_OVERRIDE = "method-override"
    QUERY_LOGIN = "query-login"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    MOVED = "moved"
    BROWSER = "browser"
    BACKED_OFF = "backed-off"
    PROXY_AUTH = "proxy-auth"
    LOCKED_OUT = "locked-out"
    RATE_LIMITED = "rate-limited"
    HEAD_TOO_LARGE = "head-too-large"
    HEAD_UNFINISHED = "head-unfinished"
    AMBIGUOUS_HEAD = "ambiguous-head"
    AMBIGUOUS_TARGET = "ambiguous-target"
    UNTRUSTED_UPSTREAM = "untrusted-upstream"
    UPSTREAM_FAILED = "upstream-failed"
    UPSTREAM_TIMEOUT = "upstream-timeout"
    CONNECT_FAILED = "connect-failed"
    UNDECIDED = "undecided"
    UNDECIDED_LOGIN = "undecided-login"
    OUT_OF_BOUNDS = "out-of-bounds"
    TOO_MANY_LOOKUPS = "too-many-lookups"
    UNJUDGED = "unjudged"
    BAD_QUERY = "bad-query"
    UNKNOWN_ENCODING = "unknown-encoding"
    BODY_TOO_LARGE = "body-too-large"
    LOOKUP_FAILED = "lookup-failed"
    CLIENT_CREDENTIALS_REJECTED = "client-credentials-rejected"
    MINT_FAILED = "mint-failed"
    RATE_LIMIT_HOLD = "rate-limit-hold"
    QUEUE_TIMEOUT = "queue-timeout"


@dataclass(frozen=True, slots=True)
class Reply:
    """One entry of the table. `template` and the header values are `str.format` templates of the facts."""

    status: int
    template: str
    decision: Decision | None
    """What the flow's record says was done; None keeps what it says (an upstream failure's page)."""
    headers: tuple[tuple[str, str], ...] = ()
    """A header whose value comes out empty (a fact the site did not give) is left out."""
    error: str | None = None
    """Set: the body is JSON, as Atlassian's own errors are: this code, the text, and `body_fields`."""
    body_fields: tuple[str, ...] = ()
    named: bool = True
    """A JSON body's message begins with `atlassian-auth-proxy: `; False: with the text alone (which names the site)."""


LOGIN_REQUIRED = (
    "proxy authentication required: send Proxy-Authorization with the user and password the proxy was given"
)
CHALLENGE = (("Proxy-Authenticate", f'Basic realm="{REALM}"'),)
RETRY_AFTER = (("Retry-After", "{retry_after}"),)
UPSTREAM_FAILED = "the request to {host} failed: {kind}"

REFUSALS: Mapping[Refusal, Reply] = {
    Refusal.CLEARTEXT: Reply(
        403, "refused to send credentials over plain http to {host}: use https://", Decision.CLEARTEXT
    ),
    Refusal.BAD_AUTHORITY: Reply(
        400, "the Host, :authority or URL of this request is not a valid host[:port]", Decision.BAD_AUTHORITY
    ),
    Refusal.MISDIRECTED: Reply(421, "this connection goes to {host}; {differs}", Decision.MISDIRECTED),
    Refusal.CLEARTEXT_HOP: Reply(
        403,
        "refused to add credentials: this https:// request reached the proxy in plain text from another "
        "address, not through a CONNECT tunnel; use CONNECT (axios: upgrade to 1.16.1 or later)",
        Decision.CLEARTEXT_HOP,
    ),
    Refusal.READ_ONLY: Reply(
        403,
        "site {site} is read-only: {method} {route} is not a read (see docs/how-to/sites.md, Read-only)",
        Decision.READ_ONLY,
    ),
    Refusal.CLIENT_SITE: Reply(
        403, "client {client} may not use site {site}: its sites are {bound}", Decision.CLIENT_SITE
    ),
    Refusal.CLIENT_READ_ONLY: Reply(
        403,
        "client {client} is read-only: {method} {route} is not a read (see docs/how-to/sites.md, Read-only)",
        Decision.CLIENT_READ_ONLY,
    ),
    Refusal.METHOD_OVERRIDE: Reply(
        400,
        "{restricted}: {override} would let the site run this {method} as another method, and its requests are "
        "judged by their method (see docs/reference/boundaries.md)",
        Decision.METHOD_OVERRIDE,
    ),
    Refusal.QUERY_LOGIN: Reply(
        400,
        "the query carries {login}, a login of the client's own: requests to {host} go with the site's "
        "token only; remove os_username, os_password, os_authType and os_cookie from the URL",
        Decision.QUERY_LOGIN,
    ),
    Refusal.METHOD_NOT_ALLOWED: Reply(
        405,
        "{method} is never sent to {host} with credentials: only {allowed}, the methods Atlassian's APIs use",
        Decision.METHOD_NOT_ALLOWED,
        (("Allow", "{allowed}"),),
    ),
    Refusal.MOVED: Reply(
        502,
        "this request was changed after the proxy decided where its credentials go ({what} of {host}, by another "
        "addon or a mitmproxy option such as map_remote); it was not sent",
        Decision.MOVED,
    ),
    Refusal.BROWSER: Reply(
        403,
        "refused to add credentials to a browser request (Origin or Sec-Fetch-Site): "
        "set ATLASSIAN_PROXY_ALLOW_BROWSERS=true to allow",
        Decision.BROWSER,
    ),
    Refusal.BACKED_OFF: Reply(
        401,
        "{host} rejected the API token (it may be revoked or expired); it is not sent again for {retry_after} s. "
        "Replace it: atlassian-auth-proxy login, or the token file.",
        Decision.BACKED_OFF,
        RETRY_AFTER,
        error="token_rejected",
        body_fields=("retry_after",),
    ),
    Refusal.PROXY_AUTH: Reply(407, LOGIN_REQUIRED, Decision.PROXY_AUTH, CHALLENGE),
    Refusal.LOCKED_OUT: Reply(
        429,
        "too many failed proxy logins as this user; try again in {retry_after} s",
        Decision.PROXY_AUTH,
        RETRY_AFTER,
    ),
    Refusal.RATE_LIMITED: Reply(
        429,
        "client {client} is past its limit of {limit} requests per minute; retry in {retry_after} s",
        Decision.RATE_LIMITED,
        RETRY_AFTER,
    ),
    Refusal.HEAD_TOO_LARGE: Reply(
        431, "the request head is {size} bytes; the limit is {limit} bytes", Decision.HEAD_TOO_LARGE
    ),
    Refusal.HEAD_UNFINISHED: Reply(
        431, "the request head is unfinished after {limit} bytes; the limit is {limit} bytes", None
    ),
    Refusal.AMBIGUOUS_HEAD: Reply(
        400, "a header holds NUL, CR or a folded line: send each header on one line", Decision.AMBIGUOUS_HEAD
    ),
    Refusal.AMBIGUOUS_TARGET: Reply(
        400,
        "{who}the request target holds {what}, which URL parsers read in different ways: percent-encode it "
        "(see docs/reference/requests.md)",
        Decision.AMBIGUOUS_TARGET,
    ),
    Refusal.UNTRUSTED_UPSTREAM: Reply(502, UPSTREAM_FAILED, Decision.UNTRUSTED_UPSTREAM),
    Refusal.UPSTREAM_FAILED: Reply(502, UPSTREAM_FAILED, None),
    Refusal.UPSTREAM_TIMEOUT: Reply(
        504, "{host} did not answer within {timeout:g} s (ATLASSIAN_PROXY_UPSTREAM_TIMEOUT)", None
    ),
    Refusal.CONNECT_FAILED: Reply(502, "cannot reach {host}:{port}: {kind}", None),
    Refusal.UNDECIDED: Reply(502, "this request could not be checked, so it was not sent", Decision.UNDECIDED),
    Refusal.UNDECIDED_LOGIN: Reply(407, LOGIN_REQUIRED, Decision.UNDECIDED, CHALLENGE),
    Refusal.OUT_OF_BOUNDS: Reply(403, "{reason}", Decision.OUT_OF_BOUNDS),
    Refusal.TOO_MANY_LOOKUPS: Reply(403, "client {client}: too many ids to look up at once", Decision.OUT_OF_BOUNDS),
    Refusal.UNJUDGED: Reply(403, "client {client}: this request could not be judged", Decision.OUT_OF_BOUNDS),
    Refusal.BAD_QUERY: Reply(400, "{reason}", Decision.BAD_QUERY),
    Refusal.UNKNOWN_ENCODING: Reply(400, "client {client}: the body's Content-Encoding is unknown", Decision.BAD_QUERY),
    Refusal.BODY_TOO_LARGE: Reply(
        413,
        "client {client}: this route is judged by its body, which must come with a Content-Length "
        "of at most {limit_kib} KiB",
        Decision.BODY_TOO_LARGE,
    ),
    Refusal.LOOKUP_FAILED: Reply(
        502,
        "client {client}: could not look up the project or space of an id in this request ({error}), "
        "so it was not sent",
        Decision.LOOKUP_FAILED,
    ),
    Refusal.CLIENT_CREDENTIALS_REJECTED: Reply(
        502,
        "site {site}: {token_host} rejected the client credentials ({why}); no access token is minted until they "
        "are replaced (client_secret_env, client_secret_file, or atlassian-auth-proxy login --client-id), at most "
        "one try every {retry_every} s",
        Decision.CLIENT_CREDENTIALS_REJECTED,
        error="client_credentials_rejected",
        named=False,
    ),
    Refusal.MINT_FAILED: Reply(
        502,
        "site {site}: no access token: {token_host} could not mint one ({why}); try again shortly",
        Decision.MINT_FAILED,
        RETRY_AFTER,
        error="client_credentials_unavailable",
        body_fields=("retry_after",),
        named=False,
    ),
    Refusal.RATE_LIMIT_HOLD: Reply(
        429,
        "site {site} ({host}) answered 429 Too Many Requests; this request is held here for {retry_after} s and not "
        "sent (scope: {scope}), since a retry before the site's wait is over makes the wait longer",
        Decision.RATE_LIMIT_HOLD,
        (*RETRY_AFTER, ("RateLimit-Reason", "{reason}")),
        error="rate_limited",
    ),
    Refusal.QUEUE_TIMEOUT: Reply(
        503,
        "site {site} ({host}): this request waited {timeout:g} s for one of the {limit} requests the proxy sends "
        "there at once (max_in_flight) and was not sent; retry in {retry_after} s",
        Decision.QUEUE_TIMEOUT,
        RETRY_AFTER,
    ),
}

REFUSAL_OF: Mapping[Decision, Refusal] = {
    decision: Refusal[decision.name] for decision in Decision if decision.name in Refusal.__members__
}
"""Each refusing decision's own answer: the refusal of its name (`refused-misdirected`: `MISDIRECTED`)."""


def message(refusal: Refusal, **facts: object) -> str:
    """The one-line text of `refusal`, its template filled from `facts`."""
    return REFUSALS[refusal].template.format(**facts)

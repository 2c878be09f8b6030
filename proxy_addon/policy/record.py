"""What the proxy knows about one request, in one place every hook reads and writes.

Each hook that learns a fact about a flow (who authenticated, which site, what was decided)
writes it here, and the log, the metrics and the token verdicts read the same names. The
record is a `dict` of plain values kept in one `flow.metadata` entry, so flows saved with
`mitmdump -w` or shown in mitmweb still serialize; the properties give it its types.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

METADATA_KEY = "atlassian_auth_proxy"


class Decision(StrEnum):
    """What the proxy did with a request; the log's `credentials=` and the metrics' `decision`."""

    NONE = "none"
    """Nothing was decided: the request failed first (a CONNECT to a host that cannot be reached)."""
    INJECT = "injected"
    """The request went to a credential host with the site's credentials in place of the client's."""
    PASS = "passed"  # noqa: S105 - a verdict, not a password
    """The request went to a host that gets no credentials, as the client sent it."""
    CLEARTEXT = "refused-cleartext"
    """Plain `http://` to a credential host: credentials never travel in cleartext."""
    CLEARTEXT_HOP = "refused-cleartext-hop"
    """An absolute-form `https://` request sent in plain text from a client that is not on loopback."""
    MISDIRECTED = "refused-misdirected"
    """A request inside a tunnel names another host (`Host`, `:authority`, an absolute URL or the SNI)."""
    READ_ONLY = "refused-read-only"
    """A write to a `read_only` site."""
    BROWSER = "refused-browser"
    """A browser's request (`Origin`, or `Sec-Fetch-Site` other than `none`) without `ALLOW_BROWSERS`."""
    PROXY_AUTH = "refused-proxy-auth"
    """No right proxy login, or one of a user locked out after failed logins."""
    HEAD_TOO_LARGE = "refused-head-too-large"
    """A request head larger than 64 KiB."""
    UNTRUSTED_UPSTREAM = "refused-untrusted-upstream"
    """The site's TLS certificate is not trusted: nothing is sent to it."""
    BACKED_OFF = "backed-off"
    """The site's token was rejected and is paused: the proxy answers in the site's place."""
    UNDECIDED = "refused-undecided"
    """A check raised or did not complete; see addons/fail_closed.py."""
    BAD_AUTHORITY = "refused-bad-authority"
    """A `Host`, `:authority` or URL that is not a valid `host[:port]`, or a target that is neither `/…`, `*`
    nor an absolute URL."""
    AMBIGUOUS_HEAD = "refused-ambiguous-head"
    """A header holding NUL, a bare CR or a folded line, which servers read in different ways."""
    AMBIGUOUS_TARGET = "refused-ambiguous-target"
    """A credentialed request's target holds a byte URL parsers read in different ways (`policy/targets.py`)."""
    CLIENT_SITE = "refused-client-site"
    """A `[[clients]]` client asked for a site outside its `sites`."""
    CLIENT_READ_ONLY = "refused-client-read-only"
    """A `read_only` client asked for something other than a read."""
    RATE_LIMITED = "refused-rate-limited"
    """A client went past its `requests_per_minute`; answered 429 by the proxy."""
    OUT_OF_BOUNDS = "refused-out-of-bounds"
    """A bounded client's request reaches outside its Jira projects or Confluence spaces."""
    BAD_QUERY = "refused-bad-query"
    """A bounded client's request that cannot be judged: a JQL/CQL or body that does not parse, an odd path."""
    BODY_TOO_LARGE = "refused-body-too-large"
    """A body a boundary must read is larger than it reads, or of unknown length."""
    LOOKUP_FAILED = "refused-lookup-failed"
    """The project or space of an id could not be looked up."""
    METHOD_OVERRIDE = "refused-method-override"
    """A method-override header or `_method` parameter on a request a bounded or read-only rule judges by its method."""
    QUERY_LOGIN = "refused-query-login"
    """A login of the client's own (`os_username`, `os_password`, ...) in the query of a credentialed request."""
    MOVED = "refused-moved"
    """A credentialed request whose destination, or a judged request's method or path, changed after its
    verdict (another addon or a mitmproxy option moved it): nothing is sent."""
    METHOD_NOT_ALLOWED = "refused-method"
    """A method Atlassian's APIs do not use (TRACE, TRACK, CONNECT inside a tunnel, unknown) to a credential host."""
    CLIENT_CREDENTIALS_REJECTED = "refused-client-credentials"
    """auth.atlassian.com rejected a client-credentials site's client id and secret: no access token to send."""
    MINT_FAILED = "refused-mint-failed"
    """A client-credentials site has no usable access token: auth.atlassian.com could not be asked, or failed."""
    RATE_LIMIT_HOLD = "rate-limit-hold"
    """The site answered 429 for a scope this request is in, and the hold lasts: answered 429 here, not sent."""
    QUEUE_TIMEOUT = "queue-timeout"
    """The request waited `queue_timeout_seconds` for a place among its site's `max_in_flight`: a 503, not sent."""


class Fact[T]:
    """One typed entry of a `FlowRecord`, stored under the attribute's own name."""

    def __init__(self, default: T) -> None:
        self.default = default
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, record: FlowRecord, owner: type | None = None) -> T:
        value: T = record.get(self.name, self.default)
        return value

    def __set__(self, record: FlowRecord, value: T) -> None:
        record[self.name] = value


class FlowRecord(dict[str, Any]):
    """The facts of one flow. Get it with `FlowRecord.of(flow.metadata)`; never build the key by hand."""

    user: Fact[str | None] = Fact(None)
    """Who authenticated to the proxy: PROXY_AUTH's user or a `[[clients]]` name (never the password)."""
    site: Fact[str | None] = Fact(None)
    """The configured site whose identity the real destination gets."""
    host: Fact[str | None] = Fact(None)
    """The normalized host the credentials went to; with `site`, the key of the token verdicts."""
    stamp: Fact[int | None] = Fact(None)
    """When the credentials were sent, on the token-health clock (see `TokenHealth.stamp`)."""
    auth_failed: Fact[bool] = Fact(False)
    """The site's answer to the injected credentials was a 401 (not a scope miss) or a login failure."""
    timed_out: Fact[bool] = Fact(False)
    """The upstream did not answer within the upstream timeout."""
    destination: Fact[str | None] = Fact(None)
    """`scheme://host:port` of a credentialed request as its verdict left it (a scoped site's request
    already moved to the gateway): the wire adds the credential only while the request still says so."""
    route: Fact[str | None] = Fact(None)
    """`METHOD path` of a judged request as its boundary let it go (a search already confined): the wire
    adds the credential only while the request still says so."""
    replay: Fact[bool] = Fact(False)
    """The gateway answered 401 to a minted access token that had not expired: the answer is held back
    (never streamed) while the proxy mints a new one, and a GET or HEAD is sent again with it."""
    held: Fact[bool] = Fact(False)
    """A boundary holds the request until it has read and judged the body: nothing of it may go
    upstream before (addons/wire.py refuses it if mitmproxy starts streaming it)."""
    upstream: Fact[str | None] = Fact(None)
    """`warm` (a connection the upstream pool held ready) or `new`: what carried a credentialed request to
    the site; None with the pool off, or when nothing went (addons/upstream_pool.py)."""
    resent: Fact[bool] = Fact(False)
    """A warm connection closed under the request before any byte of an answer; it went again on a new one."""

    @property
    def decision(self) -> Decision:
        value = self.get("decision", Decision.NONE)
        return value if type(value) is Decision else Decision(value)  # plain text after a flow was loaded

    @decision.setter
    def decision(self, value: Decision) -> None:
        self["decision"] = value

    @classmethod
    def of(cls, metadata: dict[str, Any]) -> FlowRecord:
        """The flow's record, created on first use (and typed again after a flow was loaded from a file)."""
        record = metadata.get(METADATA_KEY)
        if not isinstance(record, FlowRecord):
            record = cls(record if isinstance(record, dict) else {})
            metadata[METADATA_KEY] = record
        return record

"""Rate-limit holds: after a site's 429, requests in its scope are answered here until the site's wait is over.

Atlassian limits API-token traffic per tenant in three ways and says which in `RateLimit-Reason`:
a burst limit per endpoint and method (`jira-burst-based`, `confluence-burst-based`), a limit of
writes per issue (`jira-per-issue-on-write`) and quotas (`*-quota-*`, and anything else). A
request sent again before `Retry-After` ends "will fail and return the same or longer
Retry-After period", so every early retry of every agent lengthens the penalty for all of them.
A hold answers the requests in the 429's scope locally, never sent, until the site's wait is over:
- the scope: `*-burst-based` holds that method on that endpoint (the path with issue keys,
  numeric ids and UUIDs replaced, so `/issue/OPS-1` and `/issue/OPS-2` are one endpoint);
  `*-per-issue-on-write` holds the writes whose path names that issue; anything else the whole
  site (the tenant: one host of it);
- the length: `Retry-After` (seconds or an HTTP date), else `X-RateLimit-Reset` (ISO 8601), else
  5 s, doubled by each further hint-less 429 in that scope until a request in it succeeds, at most
  60 s. A 429 to a request that was already under way when its scope's hold began (sent before it)
  extends the hold to its own hint but never doubles it.

Each hold is kept under a digest of its site, host, scope and key, never the key itself: a store
shared by several proxies (`state/`) holds only digests, and a process that checks a request
computes the digests of the scopes that request is in. Pure: the caller passes the clocks in.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

FIRST_HOLD = 5.0
"""A 429 without Retry-After or X-RateLimit-Reset holds its scope this long, doubling per further such 429."""
LONGEST_UNHINTED = 60.0
LONGEST_HINTED = 3600.0
"""A wait the site names is kept up to an hour (Atlassian's quotas reset hourly); a longer one is cut to that."""
STRIKES_KEPT = 600.0
"""How long a scope's count of hint-less 429s lasts after the last one, when no request in it succeeds."""
HOLDS_KEPT = 1000
"""Holds one process keeps at once, and counts of hint-less 429s; past this the oldest is forgotten (costs at
most one more 429, or one doubling)."""
READS = frozenset({"GET", "HEAD", "OPTIONS"})

BURST = "-burst-based"
PER_ISSUE = "-per-issue-on-write"
REASON = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A `RateLimit-Reason` the proxy repeats: a short token; anything else is not copied."""
ISSUE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[0-9]+", re.ASCII)
NUMBER = re.compile(r"[0-9]+", re.ASCII)
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)
ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})", re.ASCII)
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
ISSUE_PATH = re.compile(r"/rest/api/(?:2|3|latest)/issue/([^/?#]+)", re.ASCII)
AN_ID = "{id}"


class Scope(StrEnum):
    """What a hold holds; the metrics' `scope` label."""

    ENDPOINT = "endpoint"
    ISSUE = "issue"
    SITE = "site"


@dataclass(frozen=True, slots=True)
class Place:
    """A scope and its key: `GET /rest/api/3/issue/{id}` (endpoint), `OPS-1` (issue), `` (site)."""

    scope: Scope
    key: str = ""

    @property
    def label(self) -> str:
        """How the local 429 names it: `endpoint GET /rest/api/3/search/jql`, `issue OPS-1`, `site`."""
        return f"{self.scope} {self.key}" if self.key else str(self.scope)


SITE = Place(Scope.SITE)


def _unescaped(match: re.Match[str]) -> str:
    char = chr(int(match[1], 16))
    return char if char in UNRESERVED else "%" + match[1].upper()


def resolved(path: str) -> str:
    """The path without its query as a server resolving it reads it: percent-escapes of unreserved characters
    decoded, `;` parameters, empty and `.` segments dropped, `..` applied. A client that spells a held
    endpoint or issue differently (`//rest`, `/./`, `;x=1`, `%6Aql`, a trailing `/`) is still held."""
    kept: list[str] = []
    for segment in path.partition("?")[0].split("/"):
        segment = ESCAPE.sub(_unescaped, segment.partition(";")[0])
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    return "/" + "/".join(kept)


def endpoint(method: str, path: str) -> str:
    """`METHOD /path` without its query, each issue key, numeric id and UUID segment replaced by `{id}`.

    The version of an API (`/rest/api/3`) is no id: a number right after `api` stays.
    """
    segments = resolved(path).split("/")
    for i, segment in enumerate(segments):
        if (
            ISSUE_KEY.fullmatch(segment)
            or UUID.fullmatch(segment)
            or (NUMBER.fullmatch(segment) and segments[i - 1] != "api")
        ):
            segments[i] = AN_ID
    return f"{method} {'/'.join(segments)}"


def issue_of(path: str) -> str | None:
    """The issue a Jira path names (`/rest/api/{2,3,latest}/issue/KEY-or-id` and its sub-paths), or None.

    Keys are upper-cased (Jira reads `ops-1` as `OPS-1`); an id stays an id, so a hold on `OPS-1`
    does not hold writes that name the same issue by its number.
    """
    match = ISSUE_PATH.search(resolved(path))
    if match is None:
        return None
    name = match[1]
    if ISSUE_KEY.fullmatch(name):
        return name.upper()
    return name if NUMBER.fullmatch(name) else None


def place_of(reason: str | None, method: str, path: str) -> Place:
    """The scope a 429 with `RateLimit-Reason: reason` to `method path` holds.

    A per-issue reason on a request that names no issue (a create, a bulk write) holds its endpoint.
    """
    if reason is not None and reason.endswith(BURST):
        return Place(Scope.ENDPOINT, endpoint(method, path))
    if reason is not None and reason.endswith(PER_ISSUE):
        issue = issue_of(path)
        return Place(Scope.ISSUE, issue) if issue is not None else Place(Scope.ENDPOINT, endpoint(method, path))
    return SITE


def places(method: str, path: str) -> Iterator[Place]:
    """Every scope a request to `method path` is in: its site, its endpoint and, for a write, its issue."""
    yield SITE
    yield Place(Scope.ENDPOINT, endpoint(method, path))
    if method not in READS and (issue := issue_of(path)) is not None:
        yield Place(Scope.ISSUE, issue)


def digest(site: str, host: str, place: Place) -> str:
    """The name of a hold: the same in every process, and nothing of the path or the issue in it."""
    text = "\0".join((site, host, place.scope, place.key))
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def reason_of(headers: Mapping[str, str]) -> str | None:
    """The site's `RateLimit-Reason`, when it is a short token (the only form repeated to clients)."""
    reason = headers.get("ratelimit-reason", "").strip()
    return reason if REASON.fullmatch(reason) else None


def hinted_seconds(headers: Mapping[str, str], now: float) -> float | None:
    """How long the site says to wait: `Retry-After` (seconds or an HTTP date), else `X-RateLimit-Reset`
    (an ISO 8601 time); None when it says neither in a form read here. `now` is the wall clock (epoch s)."""
    retry_after = headers.get("retry-after", "").strip()
    if retry_after.isascii() and retry_after.isdigit():  # str.isdigit alone takes "²", which float() refuses
        return float(retry_after)
    if retry_after:
        try:
            return parsedate_to_datetime(retry_after).timestamp() - now
        except (TypeError, ValueError, IndexError):
            pass
    reset = headers.get("x-ratelimit-reset", "").strip()
    if reset:
        try:
            when = datetime.fromisoformat(reset.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return None
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() - now
    return None


def unhinted_seconds(strikes: int) -> float:
    """The hold after the `strikes`-th hint-less 429 in a row in one scope: 5 s, 10 s, 20 s, ... at most 60 s."""
    return min(FIRST_HOLD * 2.0 ** max(strikes - 1, 0), LONGEST_UNHINTED)


def hinted(seconds: float) -> float:
    return min(max(seconds, 1.0), LONGEST_HINTED)


def whole_seconds(seconds: float) -> int:
    """`Retry-After` of the local 429: the whole seconds left, at least 1."""
    return max(1, math.ceil(seconds))


@dataclass(slots=True)
class Hold:
    """A hold of one scope; times on the monotonic clock."""

    site: str
    scope: Scope
    since: float
    until: float
    reason: str | None


@dataclass(frozen=True, slots=True)
class Held:
    """Why a request is answered locally: the scope it is in, the seconds left, the site's reason."""

    place: Place
    retry_after: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class Started:
    """A hold a 429 started or lengthened: what other processes need to hold the same scope."""

    name: str
    site: str
    place: Place
    seconds: float
    reason: str | None
    hint: bool
    """The site named the wait; else it is the doubling's, and `strikes` counts the hint-less 429s."""
    strikes: int
    new: bool
    """No hold of that scope lasted: one more hold started (the metrics count these)."""


class Holds:
    """The holds of one process, by digest, and each scope's count of hint-less 429s."""

    def __init__(self, kept: int = HOLDS_KEPT) -> None:
        self.kept = kept
        self.holds: dict[str, Hold] = {}
        self.strikes: dict[str, tuple[int, float]] = {}
        """By digest: how many hint-less 429s in a row, and until when that count is kept."""
        self.started: dict[tuple[str, Scope], int] = {}
        """Holds this process's own answers started, by site and scope."""

    def check(self, site: str, host: str, method: str, path: str, now: float) -> Held | None:
        """None when `method path` to (site, host) may go now; else the hold it is in (the longest one)."""
        if not self.holds:
            return None
        held: Held | None = None
        for place in places(method, path):
            name = digest(site, host, place)
            hold = self.holds.get(name)
            if hold is None:
                continue
            if hold.until <= now:
                del self.holds[name]
            elif held is None or whole_seconds(hold.until - now) > held.retry_after:
                held = Held(place, whole_seconds(hold.until - now), hold.reason)
        return held

    def limited(
        self,
        site: str,
        host: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        sent: float,
        now: float,
        wall: float,
    ) -> Started | None:
        """A 429 from (site, host) to `method path`, sent at `sent`: start or lengthen the hold of its scope.

        None when it changes nothing: a hint-less 429 to a request sent before its scope's hold began,
        or a hint no longer than the hold already lasts. `now` and `sent` are monotonic, `wall` the epoch.
        """
        reason = reason_of(headers)
        place = place_of(reason, method, path)
        name = digest(site, host, place)
        hint = hinted_seconds(headers, wall)
        current = self.holds.get(name)
        if current is not None and current.until <= now:
            current = None
        strikes = self.strikes.get(name, (0, 0.0))[0]
        if hint is None:
            if current is not None and sent < current.since:
                return None
            if self.strikes.get(name, (0, now))[1] <= now:
                strikes = 0
            strikes += 1
            self._strike(name, strikes, now)
            seconds = unhinted_seconds(strikes)
        else:
            seconds = hinted(hint)
        started = self._hold(name, site, place.scope, seconds, reason, now)
        if started is None:
            return None
        return Started(name, site, place, seconds, reason, hint is not None, strikes, started)

    def passed(self, site: str, host: str, method: str, path: str) -> list[str]:
        """A request in these scopes got an answer other than 429: their counts of hint-less 429s end.
        The digests of the counts that ended."""
        if not self.strikes:
            return []
        ended = [name for place in places(method, path) if (name := digest(site, host, place)) in self.strikes]
        for name in ended:
            del self.strikes[name]
        return ended

    def adopt(self, name: str, site: str, scope: Scope, seconds: float, reason: str | None, now: float) -> bool:
        """A hold another process started (or found in the store): held here too, at most as long as a 429 of
        the site could hold it, and its reason only in the form a site's is copied (the local 429 repeats it
        as a header: the store is no more trusted than the site). True when it is new here."""
        if reason is not None and not REASON.fullmatch(reason):
            reason = None
        return self._hold(name, site, scope, min(seconds, LONGEST_HINTED), reason, now, count=False) is True

    def adopt_strikes(self, name: str, strikes: int, now: float) -> None:
        if strikes > self.strikes.get(name, (0, 0.0))[0]:
            self._strike(name, strikes, now)

    def _strike(self, name: str, strikes: int, now: float) -> None:
        """Count `strikes` for `name`, kept `STRIKES_KEPT`: each distinct endpoint a hint-less 429 answered adds
        one, and nothing else forgets them between scrapes, so they are bounded as the holds are."""
        self.strikes.pop(name, None)
        self.strikes[name] = (strikes, now + STRIKES_KEPT)
        while len(self.strikes) > self.kept:
            del self.strikes[next(iter(self.strikes))]

    def calm(self, name: str) -> None:
        """Another process saw a request in this scope succeed."""
        self.strikes.pop(name, None)

    def held_sites(self, now: float) -> set[str]:
        """Every site with a hold that lasts; the ones that ended are forgotten here."""
        for name in [name for name, hold in self.holds.items() if hold.until <= now]:
            del self.holds[name]
        for name in [name for name, (_, until) in self.strikes.items() if until <= now]:
            del self.strikes[name]
        return {hold.site for hold in self.holds.values()}

    def lasting(self, now: float) -> Iterator[tuple[str, Hold]]:
        """Every hold that lasts, by digest (to hand to the store when it is back)."""
        return ((name, hold) for name, hold in self.holds.items() if hold.until > now)

    def _hold(
        self, name: str, site: str, scope: Scope, seconds: float, reason: str | None, now: float, count: bool = True
    ) -> bool | None:
        """Hold `name` until `now + seconds` at least. None: no change; True: a new hold; False: a longer one."""
        until = now + seconds
        current = self.holds.get(name)
        if current is not None and current.until > now:
            if current.until >= until:
                return None
            current.until = until
            current.reason = reason or current.reason
            return False
        self.holds.pop(name, None)
        self.holds[name] = Hold(site, scope, now, until, reason)
        while len(self.holds) > self.kept:
            del self.holds[next(iter(self.holds))]
        if count:
            self.started[(site, scope)] = self.started.get((site, scope), 0) + 1
        return True

"""Rejected tokens: notice them, and stop sending them before Atlassian locks the account.

Atlassian answers a revoked or expired token with 401, or, on endpoints that allow anonymous
access, with 200 and `X-Seraph-LoginReason: AUTHENTICATED_FAILED` (`AUTHENTICATION_DENIED` once a
CAPTCHA is required). Repeated failed logins can lock the account or trigger that CAPTCHA, so
after a rejection the proxy answers clients itself for a growing pause. When the pause is over,
the proxy checks the token itself (one request to the site's identity page) before anything
else carries it: no client request is ever the test, so no client can hold the others out.

A classic token belongs to an account, not to a host: a confirmed rejection pauses its whole
site (`Scope.SITE`), so asking for one host after another under a wildcard never sends it again.
A host that refuses a token the site's home accepts (another tenant, say) pauses alone
(`Scope.HOST`); those pauses are kept for a bounded number of hosts, as any client can name hosts.

Pure: the caller passes the clock in, decides the scope and runs the check; this module keeps the states.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

API_TOKENS_PAGE = "https://id.atlassian.com/manage-profile/security/api-tokens"
FAILED_LOGIN_REASONS = frozenset({"AUTHENTICATED_FAILED", "AUTHENTICATION_DENIED"})
FIRST_PAUSE = 30.0
MAX_PAUSE = 300.0
MOST_FAILURES = 64
"""A count of rejections another process told is kept up to this: the pause is MAX_PAUSE long well before it."""
RECHECK_SECONDS = 5.0
"""After a check that got no verdict (the site unreachable, or no answer on the token), the pause is kept
this long, then checked again."""
HOSTS_REMEMBERED = 1000
"""Hosts paused on their own at once; past this the oldest such pause is forgotten. It guards only a
token the site's home accepted, so forgetting it costs at most one more request and one confirmation."""


def rejection_reason(status: int, headers: Mapping[str, str]) -> str | None:
    """Why this response says the credentials were rejected, or None if it does not."""
    login_reason = headers.get("x-seraph-loginreason", "")
    for reason in login_reason.split(","):
        if reason.strip() in FAILED_LOGIN_REASONS:
            return f"X-Seraph-LoginReason {reason.strip()}"
    if status == 401:
        return "HTTP 401"
    return None


@dataclass(frozen=True, slots=True)
class Hold:
    """Why the token may not go to a (site, host) now."""

    retry_after: int
    """Whole seconds until the pause is over (at least 1)."""
    check_due: bool = False
    """The pause is over, but the token is not trusted again until the proxy's own check says so."""


class Scope(StrEnum):
    """What a rejection pauses."""

    SITE = "site"
    """Every host of the site: the token itself was rejected."""
    HOST = "host"
    """One host: it refused a token the site's home accepts."""


@dataclass
class Backoff:
    """When to trust the token again after the site rejected it. Times are monotonic seconds."""

    failures: int = 0
    until: float = 0.0
    host: str = ""
    """The host where the rejection was seen."""
    since: int = 0
    """The token-health clock of the last change to this pause."""

    def pause(self) -> float:
        return min(FIRST_PAUSE * 2.0 ** (self.failures - 1), MAX_PAUSE)

    def hold(self, now: float) -> Hold:
        """During the pause, its rest; after it, a check is due (and requests wait for it)."""
        if now < self.until:
            return Hold(max(1, round(self.until - now)))
        return Hold(1, check_due=True)

    def rejected(self, now: float) -> None:
        self.failures += 1
        self.until = now + self.pause()

    def kept(self, now: float, seconds: float) -> None:
        """The check could not tell: the pause goes on for `seconds`, not doubled."""
        self.until = max(self.until, now + seconds)


class Change(StrEnum):
    """How a verdict changed what the proxy does with a (site, host)'s token."""

    REJECTED = "rejected"
    ACCEPTED = "accepted"


class TokenHealth:
    """Each site's verdict on its current token, and the hosts that refused a token their site accepts.

    A request carries the `stamp()` of when it was sent; its response counts only when neither
    its site's token, nor its site's verdict, nor its host's own verdict changed since. So the
    many responses to requests that were in flight when a token was rejected count once, and one
    site's verdict or token change never makes another site's responses stale.
    """

    def __init__(self, hosts_remembered: int = HOSTS_REMEMBERED) -> None:
        self.sites: dict[str, Backoff] = {}
        """Site-wide pauses, by site."""
        self.hosts: dict[tuple[str, str], Backoff] = {}
        """Pauses of one host, by (site, host), oldest first; at most `hosts_remembered`."""
        self.hosts_remembered = hosts_remembered
        self._clock = 0
        self._token_since: dict[str, int] = {}
        self._site_since: dict[str, int] = {}

    @property
    def backing_off(self) -> bool:
        return bool(self.sites or self.hosts)

    def stamp(self) -> int:
        return self._clock

    def token_changed(self, site: str) -> None:
        """A new token for `site`: what its hosts said of the previous one no longer holds."""
        self._token_since[site] = self._tick()
        self.sites.pop(site, None)
        self._forget_hosts(site)

    def admit(self, site: str, host: str, now: float) -> Hold | None:
        """None when the token may go to `host` now; else why not (and whether the check is due)."""
        backoff = self.sites.get(site)
        if backoff is None:
            if not self.hosts:
                return None
            backoff = self.hosts.get((site, host))
        return None if backoff is None else backoff.hold(now)

    def scope(self, site: str, host: str) -> Scope | None:
        """What pauses the token for (site, host): its site's pause, its own, or nothing."""
        if site in self.sites:
            return Scope.SITE
        return Scope.HOST if (site, host) in self.hosts else None

    def judge(
        self, site: str, host: str, stamp: int, rejection: str | None, now: float, scope: Scope = Scope.SITE
    ) -> Change | None:
        """Record the verdict on a request to (site, host) sent at `stamp`; the change it makes, if any.

        A rejection starts (or doubles) the pause of `scope`; no rejection ends the pause that
        covers (site, host). The answer to the proxy's own check is judged here too.
        """
        if not self._current(site, host, stamp):
            return None
        if rejection is not None:
            if scope is Scope.SITE:
                backoff = self.sites.setdefault(site, Backoff(host=host))
                self._forget_hosts(site)
                self._site_since[site] = backoff.since = self._tick()
            else:
                backoff = self.hosts.pop((site, host)) if (site, host) in self.hosts else Backoff(host=host)
                self.hosts[(site, host)] = backoff
                backoff.since = self._tick()
                while len(self.hosts) > self.hosts_remembered:
                    del self.hosts[next(iter(self.hosts))]
            backoff.rejected(now)
            return Change.REJECTED
        if site in self.sites:
            del self.sites[site]
            self._site_since[site] = self._tick()
            return Change.ACCEPTED
        if self.hosts.pop((site, host), None) is not None:
            self._tick()
            return Change.ACCEPTED
        return None

    def adopt(self, site: str, host: str, scope: Scope, failures: int, seconds: float, now: float) -> Change | None:
        """Another process's pause (shared through a store): kept here as if seen here, with its count of
        rejections and its end when they are later than this process's own. REJECTED when it starts a pause here.

        Answers to requests sent before it count no more, as after a rejection seen here.
        """
        if scope is Scope.SITE:
            backoff = self.sites.get(site)
            if backoff is None:
                backoff = self.sites[site] = Backoff(host=host)
                self._forget_hosts(site)
                new = True
            else:
                new = False
            self._site_since[site] = backoff.since = self._tick()
        else:
            if site in self.sites:
                return None
            new = (site, host) not in self.hosts
            backoff = self.hosts.setdefault((site, host), Backoff(host=host))
            backoff.since = self._tick()
            while len(self.hosts) > self.hosts_remembered:
                del self.hosts[next(iter(self.hosts))]
        backoff.failures = max(backoff.failures, min(failures, MOST_FAILURES))
        backoff.until = max(backoff.until, now + min(seconds, MAX_PAUSE))
        return Change.REJECTED if new else None

    def adopt_accepted(self, site: str, host: str, scope: Scope) -> Change | None:
        """Another process found the token good again where this pause was: it ends here too."""
        if scope is Scope.SITE and site in self.sites:
            del self.sites[site]
            self._site_since[site] = self._tick()
            return Change.ACCEPTED
        if scope is Scope.HOST and self.hosts.pop((site, host), None) is not None:
            self._tick()
            return Change.ACCEPTED
        return None

    def pause_of(self, site: str, host: str, now: float) -> tuple[int, float] | None:
        """The pause covering (site, host): its count of rejections and the seconds it has left; None without one."""
        backoff = self._covering(site, host)
        return None if backoff is None else (backoff.failures, max(backoff.until - now, 0.0))

    def keep(self, site: str, host: str, stamp: int, now: float, seconds: float | None = RECHECK_SECONDS) -> None:
        """A check begun at `stamp` got no verdict: the pause covering (site, host) goes on for `seconds`
        (None: as long as it lasts now, for a host the proxy cannot check), then the check is due again."""
        backoff = self._covering(site, host)
        if backoff is not None and self._current(site, host, stamp):
            backoff.kept(now, backoff.pause() if seconds is None else seconds)

    def pause(self, site: str, host: str) -> float:
        """The length of the pause covering (site, host)."""
        backoff = self._covering(site, host)
        if backoff is None:
            raise KeyError((site, host))
        return backoff.pause()

    def paused(self) -> Iterator[tuple[str, str, Scope]]:
        """Every pause: (site, the host where it was seen, what it pauses)."""
        for site, backoff in self.sites.items():
            yield site, backoff.host, Scope.SITE
        for site, host in self.hosts:
            yield site, host, Scope.HOST

    def _covering(self, site: str, host: str) -> Backoff | None:
        return self.sites.get(site) or self.hosts.get((site, host))

    def _current(self, site: str, host: str, stamp: int) -> bool:
        own = self.hosts.get((site, host))
        since = max(self._token_since.get(site, 0), self._site_since.get(site, 0), own.since if own else 0)
        return stamp >= since

    def _forget_hosts(self, site: str) -> None:
        if any(key[0] == site for key in self.hosts):
            self.hosts = {key: b for key, b in self.hosts.items() if key[0] != site}

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

"""Rejected tokens: notice them, and stop sending them before Atlassian locks the account.

Atlassian answers a revoked or expired token with 401, or, on endpoints that allow anonymous
access, with 200 and `X-Seraph-LoginReason: AUTHENTICATED_FAILED` (`AUTHENTICATION_DENIED` once a
CAPTCHA is required). Repeated failed logins can lock the account or trigger that CAPTCHA, so
after a rejection the proxy answers clients itself for a growing pause. When the pause is over,
the proxy checks the token itself (one request to the site's identity page) before anything
else carries it: no client request is ever the test, so no client can hold the others out.

Pure: the caller passes the clock in and runs the check; this module keeps the states.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

API_TOKENS_PAGE = "https://id.atlassian.com/manage-profile/security/api-tokens"
FAILED_LOGIN_REASONS = frozenset({"AUTHENTICATED_FAILED", "AUTHENTICATION_DENIED"})
FIRST_PAUSE = 30.0
MAX_PAUSE = 300.0
RECHECK_SECONDS = 5.0
"""After a check that got no answer (the site unreachable), the pause is kept this long, then checked again."""


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


@dataclass
class Backoff:
    """When to trust the token again after the site rejected it. Times are monotonic seconds."""

    failures: int = 0
    until: float = 0.0

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
    """Each (site, host)'s verdict on its site's current token, kept apart from every other's.

    A request carries the `stamp()` of when it was sent; its response counts only when neither
    its site's token nor that (site, host)'s verdict changed since. So the many responses to
    requests that were in flight when a token was rejected count once, and one site's verdict
    or token change never makes another site's responses stale.
    """

    def __init__(self) -> None:
        self.backoffs: dict[tuple[str, str], Backoff] = {}
        self._clock = 0
        self._token_since: dict[str, int] = {}
        self._verdict_since: dict[tuple[str, str], int] = {}

    @property
    def backing_off(self) -> bool:
        return bool(self.backoffs)

    def stamp(self) -> int:
        return self._clock

    def token_changed(self, site: str) -> None:
        """A new token for `site`: what its hosts said of the previous one no longer holds."""
        self._clock += 1
        self._token_since[site] = self._clock
        self.backoffs = {key: b for key, b in self.backoffs.items() if key[0] != site}

    def admit(self, site: str, host: str, now: float) -> Hold | None:
        """None when the token may go to `host` now; else why not (and whether the check is due)."""
        backoff = self.backoffs.get((site, host))
        return None if backoff is None else backoff.hold(now)

    def judge(self, site: str, host: str, stamp: int, rejection: str | None, now: float) -> Change | None:
        """Record the site's answer to a request sent at `stamp`; the change it makes, if any.

        The answer to the proxy's own check is judged here too: a rejection doubles the pause,
        anything else ends it.
        """
        key = (site, host)
        if not self._current(key, stamp):
            return None
        if rejection is not None:
            self.backoffs.setdefault(key, Backoff()).rejected(now)
            self._changed(key)
            return Change.REJECTED
        if key in self.backoffs:
            del self.backoffs[key]
            self._changed(key)
            return Change.ACCEPTED
        return None

    def keep(self, site: str, host: str, stamp: int, now: float, seconds: float | None = RECHECK_SECONDS) -> None:
        """A check begun at `stamp` got no verdict: the pause goes on for `seconds` (None: as long as it
        lasts now, for a host the proxy cannot check), then the check is due again."""
        backoff = self.backoffs.get((site, host))
        if backoff is not None and self._current((site, host), stamp):
            backoff.kept(now, backoff.pause() if seconds is None else seconds)

    def pause(self, site: str, host: str) -> float:
        return self.backoffs[(site, host)].pause()

    def _current(self, key: tuple[str, str], stamp: int) -> bool:
        return stamp >= max(self._token_since.get(key[0], 0), self._verdict_since.get(key, 0))

    def _changed(self, key: tuple[str, str]) -> None:
        self._clock += 1
        self._verdict_since[key] = self._clock

"""Rejected tokens: notice them, and stop sending them before Atlassian locks the account.

Atlassian answers a revoked or expired token with 401, or, on endpoints that allow anonymous
access, with 200 and `X-Seraph-LoginReason: AUTHENTICATED_FAILED` (`AUTHENTICATION_DENIED` once a
CAPTCHA is required). Repeated failed logins can lock the account or trigger that CAPTCHA, so
after a rejection the proxy answers clients itself for a growing pause, then lets a single
request through to test the token again.

That probe holds its slot only while its flow lives, and never longer than `probe_seconds`: a
probe whose flow ended without a verdict (client gone, network error, a crash in mitmproxy)
frees the slot when the proxy sees it end, and one whose body never arrives, or whose end no
hook reports, frees it when the bound passes. Otherwise one client could keep every other one
answered locally for good.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

API_TOKENS_PAGE = "https://id.atlassian.com/manage-profile/security/api-tokens"
FAILED_LOGIN_REASONS = frozenset({"AUTHENTICATED_FAILED", "AUTHENTICATION_DENIED"})
FIRST_PAUSE = 30.0
MAX_PAUSE = 300.0
PROBE_SECONDS = 60.0

Holder = tuple[str, str]
"""Who holds a probe slot: (client connection id, flow id)."""
NO_HOLDER: Holder = ("", "")


def rejection_reason(status: int, headers: Mapping[str, str]) -> str | None:
    """Why this response says the credentials were rejected, or None if it does not."""
    login_reason = headers.get("x-seraph-loginreason", "")
    for reason in login_reason.split(","):
        if reason.strip() in FAILED_LOGIN_REASONS:
            return f"X-Seraph-LoginReason {reason.strip()}"
    if status == 401:
        return "HTTP 401"
    return None


@dataclass
class Backoff:
    """When to send the token again after the site rejected it. Times are monotonic seconds."""

    failures: int = 0
    until: float = 0.0
    probe: Holder | None = None
    probe_until: float = 0.0

    @property
    def active(self) -> bool:
        return self.failures > 0

    def pause(self) -> float:
        return min(FIRST_PAUSE * 2 ** (self.failures - 1), MAX_PAUSE)

    def admit(self, now: float, holder: Holder = NO_HOLDER, probe_seconds: float = PROBE_SECONDS) -> bool:
        """May a request carry the token now? After the pause, one at a time goes as a probe.

        A probe slot older than `probe_seconds` counts as free, whatever became of its holder.
        """
        if not self.active:
            return True
        if now < self.until or (self.probe is not None and now < self.probe_until):
            return False
        self.probe, self.probe_until = holder, now + probe_seconds
        return True

    def rejected(self, now: float) -> None:
        self.failures += 1
        self.until = now + self.pause()
        self.probe = None

    def release(self, client: str, flow: str | None = None) -> None:
        """The flow `flow` of `client` (any of its flows, for None) ended: a probe slot it held is free."""
        if self.probe is not None and self.probe[0] == client and flow in (None, self.probe[1]):
            self.probe = None

    def retry_after(self, now: float) -> int:
        return max(1, round(self.until - now))


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
        self.probe_seconds = PROBE_SECONDS

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

    def admit(self, site: str, host: str, now: float, holder: Holder = NO_HOLDER) -> int | None:
        """None when a request to `host` may carry the token now (a probe slot goes to `holder`), else the wait."""
        backoff = self.backoffs.get((site, host))
        if backoff is None or backoff.admit(now, holder, self.probe_seconds):
            return None
        return backoff.retry_after(now)

    def judge(self, site: str, host: str, stamp: int, rejection: str | None, now: float) -> Change | None:
        """Record the site's answer to a request sent at `stamp`; the change it makes, if any."""
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

    def ended(self, client: str, flow: str | None = None) -> None:
        """A flow (or every flow of a client connection) ended without a verdict: free the probe slots it held."""
        for backoff in self.backoffs.values():
            backoff.release(client, flow)

    def pause(self, site: str, host: str) -> float:
        return self.backoffs[(site, host)].pause()

    def _current(self, key: tuple[str, str], stamp: int) -> bool:
        return stamp >= max(self._token_since.get(key[0], 0), self._verdict_since.get(key, 0))

    def _changed(self, key: tuple[str, str]) -> None:
        self._clock += 1
        self._verdict_since[key] = self._clock

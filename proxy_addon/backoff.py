"""Rejected tokens: notice them, and stop sending them before Atlassian locks the account.

Atlassian answers a revoked or expired token with 401, or, on endpoints that allow anonymous
access, with 200 and `X-Seraph-LoginReason: AUTHENTICATED_FAILED` (`AUTHENTICATION_DENIED` once a
CAPTCHA is required). Repeated failed logins can lock the account or trigger that CAPTCHA, so
after a rejection the proxy answers clients itself for a growing pause, then lets a single
request through to test the token again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FAILED_LOGIN_REASONS = frozenset({"AUTHENTICATED_FAILED", "AUTHENTICATION_DENIED"})
FIRST_PAUSE = 30.0
MAX_PAUSE = 300.0


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
    probing: bool = False

    @property
    def active(self) -> bool:
        return self.failures > 0

    def pause(self) -> float:
        return min(FIRST_PAUSE * 2 ** (self.failures - 1), MAX_PAUSE)

    def admit(self, now: float) -> bool:
        """May a request carry the token now? After the pause, exactly one goes as a probe."""
        if not self.active:
            return True
        if now < self.until or self.probing:
            return False
        self.probing = True
        return True

    def rejected(self, now: float) -> None:
        self.failures += 1
        self.until = now + self.pause()
        self.probing = False

    def accepted(self) -> None:
        self.failures = 0
        self.until = 0.0
        self.probing = False

    def probe_ended(self) -> None:
        """A probe that got neither verdict (network error): allow the next one."""
        self.probing = False

    def retry_after(self, now: float) -> int:
        return max(1, round(self.until - now))

"""When a recorded token expiry date counts: the gauge's value, the warning window, "expired".

Atlassian API tokens expire at most a year after creation; the owner sees the date when
creating it. The proxy cannot read it, so the user records it (TOKEN_EXPIRES, `login --expires`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time

from proxy_addon.policy.sites import Site

WARN_DAYS = 14


def expiry_timestamp(day: date) -> float:
    """The Unix time of `day` at 00:00 UTC: the gauge's value, and the moment the token counts as expired."""
    return datetime.combine(day, time(0), tzinfo=UTC).timestamp()


def days_left(day: date, now: float) -> int:
    """Whole days from today (UTC) to `day`; negative once it has passed."""
    return (day - datetime.fromtimestamp(now, UTC).date()).days


def expired(day: date, now: float) -> bool:
    return now >= expiry_timestamp(day)


def due_soon(day: date, now: float) -> bool:
    """Within the warning window (or past): time to create the next token."""
    return days_left(day, now) <= WARN_DAYS


def days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def expiry_dates(sites: Iterable[Site]) -> dict[str, date]:
    """The recorded expiry date of each site that has one, by site name."""
    return {site.name: site.token_expires for site in sites if site.token_expires is not None}


def expiry_problem(dates: Mapping[str, date], now: float) -> str | None:
    """The /healthz reason once a recorded date has passed, else None."""
    gone = [f"site {name} expired on {day.isoformat()}" for name, day in dates.items() if expired(day, now)]
    if not gone:
        return None
    return "the API token of " + ", ".join(gone) + "; requests still go, but replace the token"

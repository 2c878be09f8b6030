"""Recorded token expiry dates: a warning before, a gauge always (the /healthz reason after is the admin
endpoint's, `policy.expiry.expiry_problem`).

Atlassian does not tell the proxy when a token expires; the user records the date
(TOKEN_EXPIRES, `token_expires` in [[sites]], `login --expires`). Requests still go once it
has passed: the site decides, and the date may be wrong.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import date

from prometheus_client import CollectorRegistry, Gauge

from proxy_addon.addons.prepared import Prepared
from proxy_addon.policy.expiry import days, days_left, due_soon, expired, expiry_dates, expiry_timestamp
from proxy_addon.policy.token_health import API_TOKENS_PAGE

logger = logging.getLogger(__name__)

DAY = 86400.0


class TokenExpiry:
    """Warns at start and once a day while a site's token expires within `WARN_DAYS` (or has expired)."""

    def __init__(self, registry: CollectorRegistry, interval: float = DAY) -> None:
        self.interval = interval
        self.dates: dict[str, date] = {}
        self.gauge = Gauge(
            "atlassian_proxy_token_expiry_timestamp_seconds",
            "When the site's API token expires, as recorded by the user (Unix time of that date, 00:00 UTC)",
            ["site"],
            registry=registry,
        )
        self._task: asyncio.Task[None] | None = None

    def use(self, prepared: Prepared) -> None:
        self.dates = expiry_dates(entry.site for entry in prepared.resolved)
        self.gauge.clear()
        for name, day in self.dates.items():
            self.gauge.labels(name).set(expiry_timestamp(day))

    def running(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._daily())

    def done(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _daily(self) -> None:
        while True:
            self.warn(time.time())
            await asyncio.sleep(self.interval)

    def warn(self, now: float) -> None:
        for name, day in self.dates.items():
            if not due_soon(day, now):
                continue
            left = days_left(day, now)
            when = f"expired on {day.isoformat()}" if expired(day, now) else f"expires on {day.isoformat()}"
            count = f"{days(-left)} ago" if left < 0 else f"in {days(left)}"
            logger.warning(
                "the API token of site %s %s (%s): create the next one at %s and store it "
                "(atlassian-auth-proxy login --expires DATE, or the token file)",
                name,
                when,
                count,
                API_TOKENS_PAGE,
            )

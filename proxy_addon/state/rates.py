"""Clients' `requests_per_minute` windows as every process on a store counts them: one window per client.

With a store, each request of a rate-limited client (and each lookup it causes) is counted there,
by one script on the server's clock, so two processes with `requests_per_minute = 4` let 4
through between them, not 8. That is one bounded round trip for the requests of rate-limited
clients only; no other request asks the store. The process counts what the store admitted in its
own window too, so when the store is lost it goes on from what it let through itself.
"""

from __future__ import annotations

import time

from proxy_addon.policy.rate import ClientRates
from proxy_addon.state.store import Store


class SharedRates:
    """The windows of rate-limited clients: in the store when it can be reached, else this process's own."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def sharing(self) -> bool:
        return self.store.sharing

    async def admit(self, rates: ClientRates, client: str, limit: int, count: int = 1) -> int | None:
        """None when `client` may send `count` more requests now (counted), else the seconds until it may."""
        if self.store.sharing:
            shared, wait = await self.store.admit(client, limit, count)
            if shared:
                if wait is None:
                    rates.admit(client, limit, time.monotonic(), count)
                return wait
        return rates.admit(client, limit, time.monotonic(), count)

"""Rate-limit holds as every process on a store sees them: this process's own (`policy.holds.Holds`), the
others' told through the store.

A 429 a process receives starts (or lengthens) its hold at once, here; with a store, the hold is
also written there (where a hint-less 429's doubling is counted across processes) and published,
and the process that received the 429 hands it to its client only after that (bounded by the
store's command timeout): by the time the client can retry through another process, that process
holds the scope too. A process that connects later reads the holds left in the store. The store
holds a hold's digest, site, scope and the site's reason: never the path or the issue it holds.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping

from proxy_addon.policy.holds import Held, Holds, Scope, Started
from proxy_addon.state.store import Event, Store

KIND = "hold"


class SharedHolds:
    """The holds this process honours: what its own answers started, and what the other processes told."""

    def __init__(self, store: Store) -> None:
        self.table = Holds()
        self.store = store
        store.on(KIND, self._adopt)
        store.on("calm", self._calm)
        store.on_connect(self._resync)

    @property
    def any(self) -> bool:
        """Some hold may last: a request must be looked at (else nothing is held, and nothing is computed)."""
        return bool(self.table.holds)

    def check(self, site: str, host: str, method: str, path: str) -> Held | None:
        return self.table.check(site, host, method, path, time.monotonic())

    def answered(
        self, site: str, host: str, method: str, path: str, status: int, headers: Mapping[str, str], sent: float
    ) -> Awaitable[None] | None:
        """The site answered `method path`, sent at `sent` (the epoch): a 429 starts or lengthens its hold,
        another answer ends the count of hint-less 429s in its scopes. With a store, what to wait for before
        the answer goes on to the client: the hold written there and told to the others."""
        if status == 429:
            now, wall = time.monotonic(), time.time()
            started = self.table.limited(site, host, method, path, headers, now - (wall - sent), now, wall)
            if started is not None and self.store.sharing:
                return self._share(started)
        elif self.table.strikes:
            ended = self.table.passed(site, host, method, path)
            if ended and self.store.sharing:
                self.store.calm(ended)
        return None

    async def _share(self, started: Started) -> None:
        event = {
            "name": started.name,
            "site": started.site,
            "scope": str(started.place.scope),
            "reason": started.reason,
        }
        shared = await self.store.hold(started.name, event, started.seconds, started.hint)
        if shared is not None:
            self.table.adopt(
                started.name, started.site, started.place.scope, shared.seconds, started.reason, time.monotonic()
            )
            self.table.adopt_strikes(started.name, shared.strikes, time.monotonic())

    def _adopt(self, event: Event) -> None:
        reason = event.get("reason")
        now = time.monotonic()
        name, site = str(event["name"]), str(event["site"])
        self.table.adopt(
            name, site, Scope(event["scope"]), int(event["ms"]) / 1000, str(reason) if reason else None, now
        )
        if isinstance(event.get("strikes"), int):
            self.table.adopt_strikes(name, event["strikes"], now)

    def _calm(self, event: Event) -> None:
        for name in event["names"]:
            self.table.calm(str(name))

    async def _resync(self) -> None:
        """Reached the store (again): hold what the others left there, and leave there what this process holds."""
        now = time.monotonic()
        for event, seconds in await self.store.kept(KIND):
            self.store.deliver(KIND, {**event, "ms": seconds * 1000})
        for name, hold in list(self.table.lasting(now)):
            event = {"name": name, "site": hold.site, "scope": str(hold.scope), "reason": hold.reason}
            self.store.keep(KIND, name, event, hold.until - now)

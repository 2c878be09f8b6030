"""The state store's life: with `ATLASSIAN_PROXY_STATE_URL`, share through that Redis or Valkey server while running.

Holds, pauses, the confirmation of a 401 and clients' windows reach the store through the one
`Store` the root hands to everything that shares (`state/store.py`); this class only gives it its
remote side when a URL is set, starts it once the proxy runs (connecting in the background: a
store that is down never delays the start) and stops it at the end. The Redis client library is
imported only then, so the embedded default needs nothing beside the proxy.

`atlassian_proxy_state_store_up` is 1 while the store can be reached, 0 while it cannot (each
process then goes on with its own state, and `/healthz` stays 200); without a URL it is not exported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy_addon.addons.prepared import Prepared
from proxy_addon.settings.state_url import StateUrl
from proxy_addon.state.store import Remote, Store


class StoreMetrics(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        if self.store.remote is None:
            return
        yield GaugeMetricFamily(
            "atlassian_proxy_state_store_up",
            "1 while the state store (ATLASSIAN_PROXY_STATE_URL) can be reached, else 0",
            value=1 if self.store.sharing else 0,
        )


def remote_for(url: StateUrl) -> Remote:
    from proxy_addon.state.redis_store import RedisStore  # the client library only when a URL asks for it

    return RedisStore(url)


class StateStore:
    """Gives the shared `Store` its remote side for the state URL, and runs it while the proxy runs."""

    def __init__(self, store: Store, registry: CollectorRegistry | None = None) -> None:
        self.store = store
        self.url: StateUrl | None = None
        self.started = False
        self._swaps: set[asyncio.Task[None]] = set()
        if registry is not None:
            registry.register(StoreMetrics(store))

    def use(self, prepared: Prepared) -> None:
        url = prepared.settings.state_url
        if url == self.url and (url is None) == (self.store.remote is None):
            return
        self.url = url
        remote = None if url is None else remote_for(url)
        if not self.started:
            self.store.remote = remote
            return
        task = asyncio.get_running_loop().create_task(self._swap(remote))
        self._swaps.add(task)
        task.add_done_callback(self._swaps.discard)

    async def _swap(self, remote: Remote | None) -> None:
        await self.store.use(remote)
        await self.store.start()

    async def running(self) -> None:
        self.started = True
        await self.store.start()

    async def done(self) -> None:
        await self.store.stop()

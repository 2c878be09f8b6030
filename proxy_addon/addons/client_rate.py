"""Each `[[clients]]` client's `requests_per_minute`: past it, the proxy answers 429 itself.

Every HTTP request a rate-limited client sends through the proxy counts, whatever its
destination: requests inside its intercepted tunnels and plain requests, not the CONNECTs
that open tunnels. A refused request sends nothing upstream, and other clients are not
affected: each has its own window. With a state store the window is the store's, one for every
process (`state.rates`): only then does a rate-limited client's request wait, for one bounded
round trip.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from mitmproxy import http

from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.replies import refuse
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.rate import ClientRates
from proxy_addon.policy.record import FlowRecord
from proxy_addon.policy.refusals import Refusal
from proxy_addon.state.rates import SharedRates
from proxy_addon.state.store import Store


class ClientRate:
    """429 with Retry-After for a client past its requests per minute."""

    def __init__(self, shared: SharedRates | None = None) -> None:
        self.clients = ClientTable()
        self.rates = ClientRates()
        self.shared = SharedRates(Store()) if shared is None else shared

    def use(self, prepared: Prepared) -> None:
        self.clients, self.rates = prepared.clients, prepared.rates

    def requestheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        if flow.response is not None or not self.clients:
            return None
        record = FlowRecord.of(flow.metadata)
        client = self.clients.get(record.user)
        if client is None or client.requests_per_minute is None:
            return None
        if self.shared.sharing:
            return self._shared(flow, client, client.requests_per_minute)
        limited(
            flow,
            client,
            client.requests_per_minute,
            self.rates.admit(client.name, client.requests_per_minute, time.monotonic()),
        )
        return None

    async def _shared(self, flow: http.HTTPFlow, client: Client, limit: int) -> None:
        limited(flow, client, limit, await self.shared.admit(self.rates, client.name, limit))


def limited(flow: http.HTTPFlow, client: Client, limit: int, retry_after: int | None) -> None:
    if retry_after is not None:
        refuse(flow, Refusal.RATE_LIMITED, client=client.name, limit=limit, retry_after=retry_after)

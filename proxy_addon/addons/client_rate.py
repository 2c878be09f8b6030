"""Each `[[clients]]` client's `requests_per_minute`: past it, the proxy answers 429 itself.

Every HTTP request a rate-limited client sends through the proxy counts, whatever its
destination: requests inside its intercepted tunnels and plain requests, not the CONNECTs
that open tunnels. A refused request sends nothing upstream, and other clients are not
affected: each has its own window.
"""

from __future__ import annotations

import time

from mitmproxy import http

from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.replies import refuse
from proxy_addon.policy.clients import ClientTable
from proxy_addon.policy.rate import ClientRates
from proxy_addon.policy.record import FlowRecord
from proxy_addon.policy.refusals import Refusal


class ClientRate:
    """429 with Retry-After for a client past its requests per minute."""

    def __init__(self) -> None:
        self.clients = ClientTable()
        self.rates = ClientRates()

    def use(self, prepared: Prepared) -> None:
        self.clients, self.rates = prepared.clients, prepared.rates

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or not self.clients:
            return
        record = FlowRecord.of(flow.metadata)
        client = self.clients.get(record.user)
        if client is None or client.requests_per_minute is None:
            return
        limit = client.requests_per_minute
        retry_after = self.rates.admit(client.name, limit, time.monotonic())
        if retry_after is not None:
            refuse(flow, Refusal.RATE_LIMITED, client=client.name, limit=limit, retry_after=retry_after)

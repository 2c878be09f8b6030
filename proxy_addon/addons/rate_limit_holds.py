"""Rate-limit holds: the site's 429 goes to its client unchanged, and starts a hold; while it lasts, requests in
its scope get a local 429 and are never sent (`policy.holds` says which scope and how long).

Right after the injector: a request the injector decided to credential and that a hold covers is
answered before any later check works on it; and once more in `request`, the last hook before it is
sent, for a hold that began while its body arrived, a boundary looked it up or it waited for a slot.
In `responseheaders` the site's answer to a credential is read where the token verdicts read it:
a 429 starts (or lengthens) the hold, any
other answer ends the doubling of its scopes. With a state store, the 429 reaches its client only
once the hold is in the store, so a retry through another proxy is held too (`state.holds`).

Nothing is computed for a request while no hold lasts and no doubling is counted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable, Iterator

from mitmproxy import http
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy_addon.addons import fields
from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.replies import refuse
from proxy_addon.policy.holds import Held, Scope
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import Refusal
from proxy_addon.state.holds import SharedHolds

HOLD_FIELDS = frozenset({b"retry-after", b"ratelimit-reason", b"x-ratelimit-reset"})
"""The answer's fields a hold reads, gathered in one pass, only from a 429."""


def refuse_held(flow: http.HTTPFlow, site: str, host: str, held: Held) -> None:
    """The local 429 of a held request: Retry-After, the site's reason, and what is held where."""
    refuse(
        flow,
        Refusal.RATE_LIMIT_HOLD,
        site=site,
        host=host,
        scope=held.place.label,
        retry_after=held.retry_after,
        reason=held.reason or "",
    )


class HoldMetrics(Collector):
    """`atlassian_proxy_rate_limit_holds_total{site,scope}` and `atlassian_proxy_rate_limit_held{site}`, read
    from the holds when scraped: every configured site and scope from 0."""

    def __init__(self, holds: SharedHolds, sites: Iterable[str] = ()) -> None:
        self.holds = holds
        self.sites = tuple(sites)

    def collect(self) -> Iterator[Metric]:
        table = self.holds.table
        lasting = table.held_sites(time.monotonic())
        if self.sites:  # a hold told by the store may name any site: only this process's sites become labels
            lasting &= set(self.sites)
        sites = sorted({*self.sites, *lasting, *(site for site, _ in table.started)})
        started = CounterMetricFamily(
            "atlassian_proxy_rate_limit_holds",
            "Rate-limit holds this process started after the site's 429, by site and scope (endpoint, issue, site)",
            labels=["site", "scope"],
        )
        held = GaugeMetricFamily(
            "atlassian_proxy_rate_limit_held", "1 while a rate-limit hold on the site lasts", labels=["site"]
        )
        for site in sites:
            for scope in Scope:
                started.add_metric([site, scope], table.started.get((site, scope), 0))
            held.add_metric([site], 1 if site in lasting else 0)
        yield started
        yield held


class RateLimitHolds:
    """Answers held requests with the local 429; starts holds from the site's 429s."""

    def __init__(self, holds: SharedHolds, registry: CollectorRegistry | None = None) -> None:
        self.holds = holds
        self.metrics = HoldMetrics(holds)
        if registry is not None:
            registry.register(self.metrics)

    def use(self, prepared: Prepared) -> None:
        self.metrics.sites = tuple(site.name for site in prepared.table.sites)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._check(flow)

    def request(self, flow: http.HTTPFlow) -> None:
        if not flow.request.stream:  # a streamed request's head and body are already on their way
            self._check(flow)

    def _check(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or not self.holds.any:
            return
        record = FlowRecord.of(flow.metadata)
        site, host = record.site, record.host
        if record.decision is not Decision.INJECT or site is None or host is None:
            return
        held = self.holds.check(site, host, flow.request.method, flow.request.path)
        if held is not None:
            refuse_held(flow, site, host, held)

    def responseheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        response = flow.response
        if response is None:
            return None
        status = response.status_code
        if status != 429 and not self.holds.table.strikes:
            return None
        record = FlowRecord.of(flow.metadata)
        site, host = record.site, record.host
        if record.decision is not Decision.INJECT or record.stamp is None or site is None or host is None:
            return None  # not the site's answer to a credential that went out
        request = flow.request
        seen = fields.values(response.headers, HOLD_FIELDS) if status == 429 else {}
        return self.holds.answered(site, host, request.method, request.path, status, seen, request.timestamp_start)

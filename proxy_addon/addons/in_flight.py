"""The in-flight cap: at most `max_in_flight` credentialed requests of a site at the site at once, per process;
the rest wait in arrival order, up to `queue_timeout_seconds`, then get a local 503 with Retry-After.

Atlassian advises a handful of requests per tenant at a time; many agents behind one proxy would
otherwise send as many as they like. After every check (`FailClosed`): only a request that will
be sent takes a place, and answers the proxy makes itself (holds, pauses, refusals) never do. A
request takes its site's slot in `request`, once its body is here and before anything of it is sent
(a request whose body is streamed: in `requestheaders`, as its head goes out right after that hook),
so a client that sends a head and then withholds its body holds no place the site's other requests
need; it gives the slot back when it ends: in `response` (for a streamed
answer, once its last byte went through) or `error` (the upstream failed, the flow was killed, the
client left). A client that leaves while queued leaves the queue (`client_disconnected`), and
gives back every slot its requests held. A request that waited is looked at once more when its turn
comes: a hold or a pause that began meanwhile answers it, and its slot passes on at once.

Nothing waits while a site has room: taking a slot is a count and a dict entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from enum import Enum

from mitmproxy import connection, http
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proxy_addon.addons.prepared import DEFAULTS, Prepared
from proxy_addon.addons.rate_limit_holds import refuse_held
from proxy_addon.addons.replies import refuse
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import Refusal
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.state.holds import SharedHolds

logger = logging.getLogger(__name__)

RETRY_AFTER = 5
"""The Retry-After of the 503 after a wait in the queue: the site is busy, not refusing."""


class Outcome(Enum):
    TURN = "turn"
    """A slot was handed over: the request holds it."""
    TIMED_OUT = "timed-out"
    LEFT = "left"
    """The client went away."""


@dataclass(eq=False)
class Waiter:
    flow: http.HTTPFlow
    turn: asyncio.Future[Outcome]
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class SiteQueue:
    """One site's slots: how many are taken, and who waits for one, first come first served."""

    site: str
    limit: int
    timeout: float
    busy: int = 0
    waiting: deque[Waiter] = field(default_factory=deque)

    def queued(self) -> int:
        return sum(1 for waiter in self.waiting if not waiter.turn.done())


class InFlightMetrics(Collector):
    """`atlassian_proxy_in_flight{site}` and `atlassian_proxy_queued{site}`, read when scraped."""

    def __init__(self, queues: dict[str, SiteQueue]) -> None:
        self.queues = queues

    def collect(self) -> Iterator[Metric]:
        busy = GaugeMetricFamily(
            "atlassian_proxy_in_flight", "Credentialed requests of the site at the site now", labels=["site"]
        )
        queued = GaugeMetricFamily(
            "atlassian_proxy_queued", "Requests waiting for a place among the site's max_in_flight", labels=["site"]
        )
        for name, queue in sorted(self.queues.items()):
            busy.add_metric([name], queue.busy)
            queued.add_metric([name], queue.queued())
        yield busy
        yield queued


class InFlightCap:
    """Holds each site's credentialed requests to `max_in_flight` at once; queues the rest."""

    def __init__(self, holds: SharedHolds, health: TokenHealth, registry: CollectorRegistry | None = None) -> None:
        self.holds = holds
        self.health = health
        self.queues: dict[str, SiteQueue] = {}
        self.holding: dict[str, tuple[SiteQueue, str]] = {}
        """By flow id: the queue whose slot the flow holds, and its client connection's id."""
        self.default = (DEFAULTS.max_in_flight, DEFAULTS.queue_timeout_seconds)
        if registry is not None:
            registry.register(InFlightMetrics(self.queues))

    def use(self, prepared: Prepared) -> None:
        """Each site's cap and wait; a site's queue and its slots taken outlive a new configuration."""
        limits = prepared.settings.in_flight()
        for name in [name for name in self.queues if name not in limits]:
            del self.queues[name]  # its holders still give their slots back (to a queue nobody uses)
        for name, (limit, timeout) in limits.items():
            queue = self.queues.get(name)
            if queue is None:
                self.queues[name] = SiteQueue(name, limit, timeout)
            else:
                queue.limit, queue.timeout = limit, timeout
                self._fill(queue)

    def requestheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        return self._take(flow) if flow.request.stream else None

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        return None if flow.request.stream else self._take(flow)

    def _take(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """A slot for `flow` if the site has room, else what to wait for: a slot, the queue timeout or the client
        leaving."""
        if flow.response is not None:
            return None
        record = FlowRecord.of(flow.metadata)
        if record.decision is not Decision.INJECT or record.site is None:
            return None
        queue = self.queues.get(record.site)
        if queue is None:
            limit, timeout = self.default
            queue = self.queues[record.site] = SiteQueue(record.site, limit, timeout)
        if queue.busy < queue.limit and not queue.waiting:
            queue.busy += 1
            self.holding[flow.id] = (queue, flow.client_conn.id)
            return None
        return self._wait(flow, queue)

    async def _wait(self, flow: http.HTTPFlow, queue: SiteQueue) -> None:
        loop = asyncio.get_running_loop()
        waiter = Waiter(flow, loop.create_future())
        waiter.timer = loop.call_later(queue.timeout, self._expire, queue, waiter)
        queue.waiting.append(waiter)
        try:
            outcome = await waiter.turn
        except asyncio.CancelledError:
            self._leave(queue, waiter)
            self.release(flow)
            raise
        if outcome is Outcome.TURN:
            self._turn(flow)
        elif outcome is Outcome.TIMED_OUT:
            record = FlowRecord.of(flow.metadata)
            refuse(
                flow,
                Refusal.QUEUE_TIMEOUT,
                site=queue.site,
                host=record.host or flow.request.host,
                timeout=queue.timeout,
                limit=queue.limit,
                retry_after=RETRY_AFTER,
            )
        elif flow.killable:
            flow.kill()  # the client left: nothing of it is sent

    def _turn(self, flow: http.HTTPFlow) -> None:
        """The request's turn came after a wait: a hold or pause that began meanwhile still answers it."""
        record = FlowRecord.of(flow.metadata)
        site, host = record.site, record.host
        if site is None or host is None:
            return
        held = self.holds.check(site, host, flow.request.method, flow.request.path) if self.holds.any else None
        if held is not None:
            self.release(flow)
            refuse_held(flow, site, host, held)
            return
        paused = self.health.admit(site, host, time.monotonic())
        if paused is not None:
            self.release(flow)
            refuse(flow, Refusal.BACKED_OFF, host=host, retry_after=paused.retry_after)

    def response(self, flow: http.HTTPFlow) -> None:
        self.release(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.release(flow)

    def client_disconnected(self, client: connection.Client) -> None:
        """The client went away: its queued requests leave their queues, and its slots are free again."""
        for queue in self.queues.values():
            for waiter in [w for w in queue.waiting if w.flow.client_conn.id == client.id]:
                self._settle(waiter, Outcome.LEFT)
                self._leave(queue, waiter)
        if self.holding:
            for flow_id in [key for key, (_, owner) in self.holding.items() if owner == client.id]:
                self._release_id(flow_id)

    def release(self, flow: http.HTTPFlow) -> None:
        """The flow's slot, if it holds one, goes to the first request still waiting, else back to its site."""
        if self.holding:
            self._release_id(flow.id)

    def _release_id(self, flow_id: str) -> None:
        held = self.holding.pop(flow_id, None)
        if held is None:
            return
        queue = held[0]
        queue.busy -= 1
        self._fill(queue)

    def _fill(self, queue: SiteQueue) -> None:
        """Hand free slots to the waiters, first come first served."""
        while queue.waiting and queue.busy < queue.limit:
            waiter = queue.waiting.popleft()
            if waiter.turn.done():
                continue
            queue.busy += 1
            self.holding[waiter.flow.id] = (queue, waiter.flow.client_conn.id)
            self._settle(waiter, Outcome.TURN)

    def _expire(self, queue: SiteQueue, waiter: Waiter) -> None:
        self._settle(waiter, Outcome.TIMED_OUT)
        self._leave(queue, waiter)

    @staticmethod
    def _settle(waiter: Waiter, outcome: Outcome) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
        if not waiter.turn.done():
            waiter.turn.set_result(outcome)

    @staticmethod
    def _leave(queue: SiteQueue, waiter: Waiter) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
        if waiter in queue.waiting:
            queue.waiting.remove(waiter)

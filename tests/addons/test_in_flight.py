"""The in-flight cap: at most `max_in_flight` at once per site, the rest in arrival order, a 503 past the wait,
and every slot given back however a request ends (a leak would stall its site for good).

tests/e2e/test_rate_limits.py drives the same with real clients and a stand-in that counts what is at it."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.test import tflow, tutils
from prometheus_client import CollectorRegistry, generate_latest

from proxy_addon.addons.in_flight import RETRY_AFTER, InFlightCap
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.settings.loading import load_settings
from proxy_addon.state.holds import SharedHolds
from proxy_addon.state.store import Store

from support.adminclient import samples, value
from support.prepared import prepared

ACME = "acme.atlassian.net"
SITE = Site("default", (HostPattern.parse(ACME),), "me@acme.example")


def cap(limit: int = 2, timeout: float = 30.0, registry: CollectorRegistry | None = None) -> InFlightCap:
    os.environ.update(ATLASSIAN_PROXY_MAX_IN_FLIGHT=str(limit), ATLASSIAN_PROXY_QUEUE_TIMEOUT_SECONDS=str(timeout))
    try:
        settings_ = load_settings()
    finally:
        del os.environ["ATLASSIAN_PROXY_MAX_IN_FLIGHT"], os.environ["ATLASSIAN_PROXY_QUEUE_TIMEOUT_SECONDS"]
    addon = InFlightCap(SharedHolds(Store()), TokenHealth(), registry)
    addon.use(prepared([SITE], settings=settings_))
    return addon


def flow(decision: Decision = Decision.INJECT, path: str = "/rest/api/3/myself") -> http.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(host=ACME, port=443, path=path.encode()))
    f.client_conn = tflow.tclient_conn()  # a connection of its own
    record = FlowRecord.of(f.metadata)
    record.decision, record.site, record.host = decision, "default", ACME
    return f


def busy(addon: InFlightCap) -> int:
    return addon.queues["default"].busy


@pytest.fixture(autouse=True)
def clean(clean_env):
    return clean_env


def test_requests_take_a_slot_once_their_body_is_here_while_the_site_has_room_and_answers_take_none():
    addon = cap(2)
    flows = [flow(), flow()]
    assert [addon.request(f) for f in flows] == [None, None]
    assert busy(addon) == 2
    answered = flow()
    answered.response = http.Response.make(429)
    assert addon.request(answered) is None
    assert addon.request(flow(Decision.PASS)) is None
    assert busy(addon) == 2
    addon.response(flows[0])
    addon.error(flows[1])
    addon.response(flows[1])
    assert busy(addon) == 0
    assert not addon.holding


def test_a_head_takes_no_slot_while_its_body_is_awaited_but_a_streamed_one_does_at_once():
    """A client that sent a head and withholds its body must not hold a place: nothing of it is at the site, and
    max_in_flight such clients would make every other request of the site wait out the queue timeout."""
    addon = cap(1)
    buffered = flow()
    assert addon.requestheaders(buffered) is None
    assert busy(addon) == 0
    streamed = flow()
    streamed.request.stream = True
    assert addon.requestheaders(streamed) is None
    assert busy(addon) == 1, "its head goes upstream right after this hook"
    assert addon.request(streamed) is None
    assert busy(addon) == 1, "no second place for the end of its body"
    addon.response(streamed)
    assert addon.request(buffered) is None
    assert busy(addon) == 1
    addon.response(buffered)
    assert busy(addon) == 0


def test_the_rest_wait_in_arrival_order_and_each_gets_the_slot_given_back():
    async def scenario() -> list[int]:
        addon = cap(1)
        first = flow()
        assert addon.request(first) is None
        order: list[int] = []
        waiting = [flow() for _ in range(3)]

        async def wait(n: int, f: http.HTTPFlow) -> None:
            await addon.request(f)
            order.append(n)

        tasks = [asyncio.create_task(wait(n, f)) for n, f in enumerate(waiting)]
        await asyncio.sleep(0)
        assert addon.queues["default"].queued() == 3
        addon.response(first)
        for n, f in enumerate(waiting):
            await asyncio.sleep(0.01)
            assert order == list(range(n + 1))
            assert f.response is None
            assert busy(addon) == 1
            addon.response(f)
        await asyncio.gather(*tasks)
        assert busy(addon) == 0
        return order

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_past_the_queue_timeout_a_503_with_retry_after_and_no_slot():
    async def scenario() -> http.HTTPFlow:
        addon = cap(1, timeout=0.05)
        assert addon.request(flow()) is None
        late = flow()
        await addon.request(late)
        assert busy(addon) == 1
        assert addon.queues["default"].queued() == 0
        return late

    late = asyncio.run(scenario())
    assert late.response.status_code == 503
    assert late.response.headers["retry-after"] == str(RETRY_AFTER)
    assert b"site default (acme.atlassian.net)" in late.response.content
    assert b"waited 0.05 s for one of the 1 requests" in late.response.content
    assert FlowRecord.of(late.metadata).decision is Decision.QUEUE_TIMEOUT


def test_a_client_that_goes_away_leaves_the_queue_and_gives_back_its_slots():
    async def scenario() -> None:
        addon = cap(1)
        holder, queued = flow(), flow()
        assert addon.request(holder) is None
        task = asyncio.create_task(addon.request(queued))
        await asyncio.sleep(0)
        addon.client_disconnected(queued.client_conn)
        await task
        assert queued.error is not None, "killed: nothing of it is sent"
        assert addon.queues["default"].queued() == 0
        addon.client_disconnected(holder.client_conn)
        assert busy(addon) == 0
        addon.error(holder)
        addon.error(queued)
        assert busy(addon) == 0

    asyncio.run(scenario())


def test_a_waiter_cancelled_before_or_after_its_turn_keeps_no_slot():
    async def scenario() -> None:
        addon = cap(1)
        holder = flow()
        addon.request(holder)
        before, after = flow(), flow()
        cancelled_before = asyncio.create_task(addon.request(before))
        handed = asyncio.create_task(addon.request(after))
        await asyncio.sleep(0)
        cancelled_before.cancel()
        await asyncio.sleep(0)
        addon.response(holder)  # the turn goes past the cancelled one, to `after`
        assert addon.holding.keys() == {after.id}
        handed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handed
        assert busy(addon) == 0
        assert not addon.holding

    asyncio.run(scenario())


def test_a_hold_that_began_while_it_waited_answers_it_and_passes_its_slot_on():
    async def scenario() -> http.HTTPFlow:
        addon = cap(1)
        holder, queued = flow(), flow()
        addon.request(holder)
        task = asyncio.create_task(addon.request(queued))
        await asyncio.sleep(0)
        addon.holds.answered("default", ACME, "GET", "/x", 429, {"retry-after": "30"}, 0.0)
        addon.response(holder)
        await task
        assert busy(addon) == 0
        return queued

    queued = asyncio.run(scenario())
    assert queued.response.status_code == 429
    assert FlowRecord.of(queued.metadata).decision is Decision.RATE_LIMIT_HOLD


def test_the_gauges_show_each_site_in_flight_and_queued():
    async def scenario() -> str:
        registry = CollectorRegistry()
        addon = cap(1, registry=registry)
        addon.request(flow())
        task = asyncio.create_task(addon.request(flow()))
        await asyncio.sleep(0)
        text = generate_latest(registry).decode()
        task.cancel()
        return text

    metrics = samples(asyncio.run(scenario()))
    assert value(metrics, "atlassian_proxy_in_flight", site="default") == 1
    assert value(metrics, "atlassian_proxy_queued", site="default") == 1


ENDINGS = ("response", "error", "left", "cancelled", "answered-later")


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.lists(st.sampled_from(ENDINGS), min_size=1, max_size=12))
def test_however_requests_end_every_slot_comes_back(limit, endings):
    async def scenario() -> None:
        addon = cap(limit, timeout=1)
        flows = [flow() for _ in endings]
        tasks = [asyncio.create_task(as_task(addon.request(f))) for f in flows]
        await asyncio.sleep(0)
        for f, ending, task in zip(flows, endings, tasks, strict=True):
            await asyncio.sleep(0)
            if ending == "left":
                addon.client_disconnected(f.client_conn)
            elif ending == "cancelled":  # the hook's task cancelled; mitmproxy then ends the flow
                task.cancel()
                await asyncio.sleep(0)
                addon.error(f)
            elif ending == "answered-later":
                f.response = http.Response.make(502)
                addon.response(f)
            else:
                getattr(addon, ending)(f)
        await asyncio.gather(*tasks, return_exceptions=True)
        for f in flows:  # mitmproxy ends each flow with one of these; a second is harmless
            addon.error(f)
        assert busy(addon) == 0
        assert not addon.holding
        assert addon.queues["default"].queued() == 0

    asyncio.run(scenario())


async def as_task(result) -> None:
    if result is not None:
        await result

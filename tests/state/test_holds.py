"""Holds shared through a store: a 429 holds here at once and in the store before its client sees it; the
others' holds and calms are kept here; what each side learned is exchanged on (re)connecting."""

from __future__ import annotations

import asyncio
import time

from proxy_addon.policy.holds import LONGEST_HINTED, SITE, Place, Scope, digest
from proxy_addon.state.holds import SharedHolds
from proxy_addon.state.store import Shared, Store

from support.fake_store import FakeRemote, run, shared_store

HOST = "acme.atlassian.net"
BURST = {"retry-after": "2", "ratelimit-reason": "jira-burst-based"}


def answered(holds: SharedHolds, status: int, headers: dict, path: str = "/rest/api/3/search/jql", method="GET"):
    return holds.answered("acme", HOST, method, path, status, headers, time.time())


def test_alone_a_429_holds_at_once_and_nothing_waits():
    holds = SharedHolds(Store())
    assert not holds.any
    assert answered(holds, 429, BURST) is None
    assert holds.any
    held = holds.check("acme", HOST, "GET", "/rest/api/3/search/jql?jql=x")
    assert held is not None
    assert held.place == Place(Scope.ENDPOINT, "GET /rest/api/3/search/jql")


def test_shared_the_429_waits_for_the_store_and_keeps_its_longer_hold():
    store, remote = shared_store(FakeRemote(shared=Shared(20.0, 3)))
    holds = SharedHolds(store)
    run(answered(holds, 429, {}))
    ((what, name, event),) = remote.told
    assert (what, name) == ("hold", digest("acme", HOST, SITE))
    assert event == {"name": name, "site": "acme", "scope": "site", "reason": None, "seconds": 5.0, "hint": False}
    held = holds.check("acme", HOST, "GET", "/")
    assert held is not None
    assert held.retry_after == 20, "the store's count of hint-less 429s doubled it further"
    assert holds.table.strikes[name][0] == 3


def test_a_success_ends_the_doubling_everywhere():
    store, remote = shared_store()
    holds = SharedHolds(store)
    run(answered(holds, 429, {}))
    holds.table.holds.clear()
    assert answered(holds, 200, {}) is None
    assert remote.told[-1] == ("calm", digest("acme", HOST, SITE), {})
    assert not holds.table.strikes


def test_another_processs_hold_is_held_here_and_counts_no_hold_of_this_process():
    store, _ = shared_store()
    holds = SharedHolds(store)
    name = digest("acme", HOST, Place(Scope.ENDPOINT, "GET /rest/api/3/search/jql"))
    store.deliver("hold", {"name": name, "site": "acme", "scope": "endpoint", "reason": "jira-burst-based", "ms": 3000})
    held = holds.check("acme", HOST, "GET", "/rest/api/3/search/jql")
    assert held is not None
    assert (held.retry_after, held.reason) == (3, "jira-burst-based")
    assert holds.table.started == {}
    store.deliver("calm", {"names": [name]})


def test_reconnecting_reads_the_stores_holds_and_leaves_this_processs_there():
    name = digest("acme", HOST, SITE)
    remote = FakeRemote(kept_events={"hold": [({"name": name, "site": "acme", "scope": "site", "reason": None}, 4.0)]})
    store, _ = shared_store(remote)
    holds = SharedHolds(store)
    holds.table.limited("other", HOST, "GET", "/", BURST, time.monotonic(), time.monotonic(), time.time())
    asyncio.run(store.connected())
    assert holds.check("acme", HOST, "GET", "/") is not None
    kept = [entry for entry in remote.told if entry[0] == "keep"]
    assert {entry[2]["site"] for entry in kept} == {"acme", "other"}
    assert all("jql" not in str(entry) and "/rest" not in str(entry) for entry in kept), "no path in the store"


def test_a_malformed_or_endless_hold_from_the_store_is_dropped_or_cut_to_an_hour():
    name = digest("acme", HOST, SITE)
    good = {"name": name, "site": "acme", "scope": "site", "reason": None}
    remote = FakeRemote(
        kept_events={"hold": [({"name": "no-site"}, 4.0), ({**good, "scope": "everything"}, 4.0), (good, 1e12)]}
    )
    store, _ = shared_store(remote)
    holds = SharedHolds(store)
    asyncio.run(store.connected())
    held = holds.check("acme", HOST, "GET", "/")
    assert held is not None
    assert held.retry_after == LONGEST_HINTED, "no longer than a site's 429 could hold it"
    store.deliver("hold", {**good, "name": "endless", "ms": float("inf")})
    store.deliver("hold", {**good, "name": "huge", "ms": 10**15})
    assert "endless" not in holds.table.holds
    assert holds.table.holds["huge"].until - time.monotonic() <= LONGEST_HINTED

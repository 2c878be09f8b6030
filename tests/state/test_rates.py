"""Clients' windows through a store: the store's count when it can tell, this process's own when it cannot."""

from __future__ import annotations

import asyncio

from proxy_addon.policy.rate import ClientRates
from proxy_addon.state.rates import SharedRates
from proxy_addon.state.store import Store

from support.fake_store import FakeRemote, shared_store


def test_alone_the_window_is_this_processs():
    rates, shared = ClientRates(), SharedRates(Store())
    assert not shared.sharing
    answers = [asyncio.run(shared.admit(rates, "agent", 2)) for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] is not None


def test_shared_the_store_counts_and_this_process_keeps_what_it_let_through():
    store, remote = shared_store()
    remote.windows["agent"] = 3  # another process let 3 through
    rates, shared = ClientRates(), SharedRates(store)
    assert asyncio.run(shared.admit(rates, "agent", 4)) is None
    assert asyncio.run(shared.admit(rates, "agent", 4)) == 42
    assert rates.admit("agent", 1, 0.0) is not None, "the one admitted is in this process's window too"


def test_a_store_that_goes_down_leaves_the_count_to_this_process():
    store, remote = shared_store(FakeRemote(up=False))
    rates = ClientRates()
    assert asyncio.run(SharedRates(store).admit(rates, "agent", 1)) is None
    assert asyncio.run(SharedRates(store).admit(rates, "agent", 1)) is not None
    assert remote.windows == {}

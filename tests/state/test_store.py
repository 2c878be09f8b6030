"""The store as its users see it: alone without a remote (or while it is down), the remote's answers with one."""

from __future__ import annotations

import asyncio
import logging

from proxy_addon.state.store import MEMORY, Store

from support.fake_store import FakeRemote, shared_store


def test_without_a_remote_nothing_is_shared_and_every_answer_is_this_process_alone():
    store = Store()
    assert (store.sharing, store.where) == (False, MEMORY)
    store.publish("hold", {"x": 1})
    store.keep("pause", "n", {}, 3.0)
    store.forget("pause", "n", {})
    store.calm(["n"])

    async def work() -> dict[str, str]:
        return {"answer": "accepted"}

    async def asked() -> tuple:
        return (
            await store.hold("n", {}, 5.0, True),
            await store.kept("hold"),
            await store.admit("agent", 4, 1),
            await store.once("n", work, 1.0),
        )

    assert asyncio.run(asked()) == (None, [], (False, None), {"answer": "accepted"})


def test_a_remote_that_is_down_is_as_no_remote():
    store, remote = shared_store(FakeRemote(up=False))
    assert store.where == "redis://127.0.0.1:6379/0"
    assert not store.sharing
    store.publish("hold", {})
    assert asyncio.run(store.admit("agent", 4, 1)) == (False, None)
    assert remote.told == []


def test_events_reach_their_handler_and_a_malformed_one_is_dropped_with_a_warning(caplog):
    store, _ = shared_store()
    seen: list[dict] = []
    store.on("hold", seen.append)
    store.on("pause", lambda event: event["missing"])
    store.deliver("hold", {"name": "n"})
    store.deliver("unknown", {"name": "n"})
    with caplog.at_level(logging.WARNING):
        store.deliver("pause", {})
    assert seen == [{"name": "n"}]
    assert "ignored a malformed pause event from the state store (KeyError)" in caplog.text


def test_an_event_that_makes_its_handler_raise_anything_is_dropped_and_the_next_one_delivered(caplog):
    store, _ = shared_store()
    seen: list[int] = []
    store.on("hold", lambda event: seen.append(int(event["ms"])))
    with caplog.at_level(logging.WARNING):
        store.deliver("hold", {"ms": float("inf")})
    store.deliver("hold", {"ms": 5})
    assert seen == [5]
    assert "ignored a malformed hold event from the state store (OverflowError)" in caplog.text


def test_each_connection_runs_every_resync_and_use_stops_the_previous_remote():
    store, remote = shared_store()
    resynced: list[int] = []

    async def resync() -> None:
        resynced.append(1)

    store.on_connect(resync)

    async def scenario() -> None:
        await store.start()
        await store.connected()
        await store.use(None)

    asyncio.run(scenario())
    assert remote.store is store
    assert resynced == [1]
    assert not remote.up, "the previous remote was stopped"
    assert store.remote is None

"""The state store's life: a remote only with a state URL, started when the proxy runs, its gauge only then."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, generate_latest

from proxy_addon.addons.state_store import StateStore
from proxy_addon.settings.loading import load_settings
from proxy_addon.state.redis_store import RedisStore
from proxy_addon.state.store import Store

from support.adminclient import samples, value
from support.prepared import prepared


def test_without_a_url_nothing_is_shared_and_no_gauge_is_exported(clean_env):
    registry, store = CollectorRegistry(), Store()
    addon = StateStore(store, registry)
    addon.use(prepared(settings=load_settings()))
    assert store.remote is None
    assert "state_store_up" not in generate_latest(registry).decode()


def test_with_a_url_the_store_is_redis_and_its_gauge_says_whether_it_is_reached(clean_env, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_STATE_URL", "redis://:pw-of-the-store@127.0.0.1:1/0")
    registry, store = CollectorRegistry(), Store()
    addon = StateStore(store, registry)
    addon.use(prepared(settings=load_settings()))
    assert isinstance(store.remote, RedisStore)
    assert store.where == "redis://127.0.0.1:1/0"
    text = generate_latest(registry).decode()
    assert value(samples(text), "atlassian_proxy_state_store_up") == 0
    assert "pw-of-the-store" not in text

    async def run_and_stop() -> None:
        await addon.running()
        monkeypatch.delenv("ATLASSIAN_PROXY_STATE_URL")
        addon.use(prepared(settings=load_settings()))  # configured again while running: the store goes
        await asyncio.gather(*addon._swaps)
        assert store.remote is None
        await addon.done()

    asyncio.run(run_and_stop())

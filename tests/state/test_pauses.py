"""Token pauses through a store: this process's pauses and their ends are told; another's is kept here when its
token is this process's too, with one line saying so."""

from __future__ import annotations

import asyncio
import logging
import time

from proxy_addon.policy.token_health import MAX_PAUSE, Change, Scope, TokenHealth
from proxy_addon.state.pauses import SharedPauses, pause_name

from support.fake_store import FakeRemote, shared_store

TAGS = {"acme": "0011223344556677"}


def shared(remote: FakeRemote | None = None):
    store, remote = shared_store(remote)
    health = TokenHealth()
    return SharedPauses(store, health, TAGS.get), health, store, remote


def test_a_rejection_here_is_kept_in_the_store_for_as_long_as_the_pause_and_its_end_is_told():
    pauses, health, _, remote = shared()
    health.judge("acme", "acme.atlassian.net", 0, "HTTP 401", time.monotonic())
    pauses.told("acme", "acme.atlassian.net", Scope.SITE, Change.REJECTED)
    ((what, name, event),) = remote.told
    assert (what, name) == ("keep", f"pause:{pause_name('acme', 'acme.atlassian.net', Scope.SITE, TAGS['acme'])}")
    assert event["failures"] == 1
    assert 29 < event["seconds"] <= 30
    assert event["tag"] == TAGS["acme"]
    pauses.told("acme", "acme.atlassian.net", Scope.SITE, Change.ACCEPTED)
    assert remote.told[-1][0] == "forget"


def test_another_processs_pause_of_the_same_token_pauses_here(caplog):
    _pauses, health, store, _ = shared()
    event = {"site": "acme", "host": "acme.atlassian.net", "scope": "site", "tag": TAGS["acme"], "failures": 2}
    with caplog.at_level(logging.WARNING):
        store.deliver("pause", {**event, "ms": 60000})
        store.deliver("pause", {**event, "ms": 60000})
    hold = health.admit("acme", "other.atlassian.net", time.monotonic())
    assert hold is not None
    assert 59 <= hold.retry_after <= 60
    assert health.pause("acme", "acme.atlassian.net") == 60, "its count of rejections: the second pause's length"
    assert caplog.text.count("another proxy on the state store saw acme.atlassian.net reject") == 1
    store.deliver("pause-over", event)
    assert health.admit("acme", "acme.atlassian.net", time.monotonic()) is None


def test_a_pause_of_another_token_or_site_is_ignored():
    _, health, store, _ = shared()
    event = {"site": "acme", "host": "acme.atlassian.net", "scope": "site", "failures": 1, "ms": 30000}
    store.deliver("pause", {**event, "tag": "ffffffffffffffff"})
    store.deliver("pause", {**event, "site": "globex", "tag": TAGS["acme"]})
    assert not health.backing_off


def test_reconnecting_reads_the_others_pauses_and_leaves_this_processs():
    event = {"site": "acme", "host": "h.atlassian.net", "scope": "host", "tag": TAGS["acme"], "failures": 1}
    _pauses, health, store, remote = shared(FakeRemote(kept_events={"pause": [(event, 20.0)]}))
    health.judge("acme", "x.atlassian.net", 0, "HTTP 401", time.monotonic(), Scope.HOST)
    asyncio.run(store.connected())
    assert health.admit("acme", "h.atlassian.net", time.monotonic()) is not None
    assert {entry[2]["host"] for entry in remote.told if entry[0] == "keep"} == {"h.atlassian.net", "x.atlassian.net"}


def test_another_processs_pause_is_kept_within_the_longest_pause_whatever_it_says():
    _, health, store, _ = shared()
    event = {"site": "acme", "host": "acme.atlassian.net", "scope": "site", "tag": TAGS["acme"]}
    store.deliver("pause", {**event, "failures": 10**6, "ms": 10**15})
    hold = health.admit("acme", "acme.atlassian.net", time.monotonic())
    assert hold is not None
    assert hold.retry_after <= MAX_PAUSE
    assert health.pause("acme", "acme.atlassian.net") == MAX_PAUSE, "its count of rejections raises nothing"


def test_a_pause_naming_no_host_name_is_dropped(caplog):
    _, health, store, _ = shared()
    event = {"site": "acme", "scope": "host", "tag": TAGS["acme"], "failures": 1, "ms": 30000}
    with caplog.at_level(logging.WARNING):
        store.deliver("pause", {**event, "host": "acme.atlassian.net\n[00:00:00] forged log line"})
    assert not health.backing_off
    assert "forged" not in caplog.text
    assert "ignored a malformed pause event" in caplog.text

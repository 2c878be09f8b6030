"""The pool's decisions, on a clock the tests turn: which keys stay warm, how many connections, for how long."""

from __future__ import annotations

import pytest

from proxy_addon.policy.upstream_pool import AgeLimit, PoolLimits, Warmth, clamped_size, expired, replayable


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_safe_methods_are_sent_again(method):
    assert replayable(method)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "get", "CONNECT"])
def test_no_other_method_is_sent_again(method):
    assert not replayable(method)


@pytest.mark.parametrize(("size", "cap", "kept"), [(2, None, 2), (2, 16, 2), (4, 1, 1), (2, 0, 0)])
def test_the_in_flight_cap_clamps_the_connections_kept_per_key(size, cap, kept):
    assert clamped_size(size, cap) == kept


def test_a_sites_cap_applies_to_its_keys_only():
    limits = PoolLimits(size=3, caps={"acme": 1})
    assert (limits.size_for("acme"), limits.size_for("other"), limits.size_for(None)) == (1, 3, 3)


def test_a_key_used_by_a_credentialed_request_wants_its_size_less_what_it_has():
    warmth: Warmth[str] = Warmth(PoolLimits(size=2))
    assert warmth.missing("acme", 0, 0, now=0.0) == 0, "never used: nothing to keep warm"
    assert warmth.touch("acme", "default", now=1.0) is True
    assert warmth.touch("acme", "default", now=2.0) is False
    pairs = ((0, 0), (1, 0), (1, 1), (3, 0))
    assert [warmth.missing("acme", waiting, opening, now=2.0) for waiting, opening in pairs] == [2, 1, 0, 0]
    assert warmth.site_of("acme") == "default"


def test_a_key_cools_after_the_idle_window_without_use_and_forgets_its_site():
    warmth: Warmth[str] = Warmth(PoolLimits(idle=60.0))
    warmth.touch("acme", "default", now=0.0)
    warmth.touch("beta", "beta", now=30.0)
    assert warmth.cooled(now=60.0) == []
    assert warmth.cooled(now=60.5) == [("acme", "default")]
    assert "acme" not in warmth
    assert "beta" in warmth
    assert warmth.hot() == ["beta"]
    assert warmth.site_of("acme") is None
    warmth.touch("beta", "beta", now=80.0)
    assert warmth.cooled(now=139.0) == []


def test_after_a_failed_dial_a_key_waits_before_the_next():
    warmth: Warmth[str] = Warmth(PoolLimits(size=2))
    warmth.touch("acme", None, now=0.0)
    warmth.failed("acme", now=10.0)
    assert warmth.missing("acme", 0, 0, now=10.0 + Warmth.RETRY - 0.1) == 0
    assert warmth.missing("acme", 0, 0, now=10.0 + Warmth.RETRY) == 2


def test_a_connection_expires_at_the_age_limit():
    assert not expired(created=5.0, now=14.9, age_limit=10.0)
    assert expired(created=5.0, now=15.0, age_limit=10.0)


def test_the_age_limit_is_the_setting_until_the_site_closes_waiting_connections_sooner():
    age = AgeLimit(10.0)
    assert age.current(now=0.0) == 10.0
    age.closed_waiting(6.0, now=100.0)
    age.closed_waiting(8.0, now=101.0)
    assert age.current(now=102.0) == pytest.approx(4.8), "a margin below the shortest seen"
    age.closed_waiting(30.0, now=103.0)
    assert age.current(now=104.0) == pytest.approx(4.8), "never above the shortest, nor the setting"


def test_the_age_limit_has_a_floor_and_forgets_old_closes():
    age = AgeLimit(10.0)
    age.closed_waiting(0.2, now=0.0)
    assert age.current(now=1.0) == AgeLimit.FLOOR
    assert age.current(now=AgeLimit.WINDOW + 1.0) == 10.0, "a close long ago no longer counts"


def test_the_age_limit_keeps_only_the_last_closes():
    age = AgeLimit(10.0)
    age.closed_waiting(2.0, now=0.0)
    for n in range(AgeLimit.KEEP):
        age.closed_waiting(9.0, now=1.0 + n)
    assert age.current(now=20.0) == pytest.approx(7.2)


def test_no_more_than_max_keys_stay_warm_the_least_recently_used_cools_first():
    """Clients choose the keys (every name under a wildcard host, every ALPN list): the pool bounds them."""
    warmth: Warmth[str] = Warmth(PoolLimits(idle=600.0))
    for n in range(Warmth.MAX_KEYS):
        warmth.touch(f"h{n}", "default", now=float(n))
    warmth.touch("h0", "default", now=100.0)
    assert warmth.cooled(now=100.0) == []
    warmth.touch("new", "default", now=101.0)
    assert warmth.cooled(now=101.0) == [("h1", "default")], "the least recently used, not the oldest key"
    assert len(warmth.hot()) == Warmth.MAX_KEYS
    assert "h0" in warmth
    assert "new" in warmth


def test_a_sites_cap_bounds_the_warm_connections_of_all_its_keys():
    warmth: Warmth[str] = Warmth(PoolLimits(size=2, caps={"acme": 3}))
    warmth.touch("acme-h1", "acme", now=0.0)
    warmth.touch("acme-h2", "acme", now=0.0)
    warmth.touch("other", "other", now=0.0)
    assert warmth.missing("acme-h1", 0, 0, now=1.0, site_held=0) == 2
    assert warmth.missing("acme-h2", 0, 0, now=1.0, site_held=2) == 1, "the cap is the site's, not each key's"
    assert warmth.missing("acme-h2", 1, 0, now=1.0, site_held=3) == 0
    assert warmth.missing("other", 0, 0, now=1.0, site_held=5) == 2, "no cap: only the size per key"
    assert sorted(warmth.keys_of("acme")) == ["acme-h1", "acme-h2"]

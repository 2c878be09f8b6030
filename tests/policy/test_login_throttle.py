"""Failed proxy logins per peer: a few are free, then lockouts that grow; state and log lines stay bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.login_throttle import (
    FIRST_LOCKOUT,
    FORGET_SECONDS,
    LOG_SECONDS,
    MAX_FAILURES,
    MAX_LOCKOUT,
    LoginThrottle,
    peer_key,
)


def fail(throttle: LoginThrottle, address: str, times: int, now: float = 0.0):
    return [throttle.failed(address, now) for _ in range(times)]


def test_a_few_failures_are_free_then_the_peer_is_locked_out_and_others_are_not():
    throttle = LoginThrottle()
    failures = fail(throttle, "10.0.0.1", MAX_FAILURES)
    assert [f.locked_for for f in failures[:-1]] == [None] * (MAX_FAILURES - 1)
    assert failures[-1].locked_for == FIRST_LOCKOUT
    assert throttle.locked("10.0.0.1", 1.0) == FIRST_LOCKOUT - 1.0
    assert throttle.locked("10.0.0.2", 1.0) is None, "another peer is not affected"
    assert throttle.locked("10.0.0.1", FIRST_LOCKOUT) is None, "the lockout ends"


def test_each_lockout_is_twice_the_one_before_up_to_the_cap():
    throttle = LoginThrottle()
    now, lockouts = 0.0, []
    fail(throttle, "10.0.0.1", MAX_FAILURES - 1)
    for _ in range(8):
        failure = throttle.failed("10.0.0.1", now)
        assert failure.locked_for is not None, "after a lockout, the next failure locks again"
        lockouts.append(failure.locked_for)
        now += failure.locked_for
    assert lockouts == [min(MAX_LOCKOUT, FIRST_LOCKOUT * 2**n) for n in range(8)]


def test_a_peer_is_forgotten_only_after_staying_quiet_past_its_lockout():
    throttle = LoginThrottle()
    fail(throttle, "10.0.0.1", MAX_FAILURES)
    assert throttle.failed("10.0.0.1", FIRST_LOCKOUT + FORGET_SECONDS - 1).locked_for == 2 * FIRST_LOCKOUT
    quiet = FIRST_LOCKOUT + FORGET_SECONDS - 1 + 2 * FIRST_LOCKOUT + FORGET_SECONDS
    assert throttle.failed("10.0.0.1", quiet).locked_for is None, "a fresh start"


def test_state_is_bounded_and_many_addresses_only_evict_the_oldest():
    throttle = LoginThrottle(max_peers=100)
    fail(throttle, "10.9.9.9", MAX_FAILURES)
    for n in range(1000):
        throttle.failed(f"10.1.{n // 256}.{n % 256}", 1.0)
        assert len(throttle) <= 100
    assert throttle.locked("10.9.9.9", 2.0) is None, "the least recently failed peer went first"


def test_one_log_line_per_peer_per_window_counts_the_failures_since_the_last():
    throttle = LoginThrottle()
    reports = [throttle.failed("10.0.0.1", t).report for t in (0.0, 1.0, 2.0)]
    assert reports == [1, 0, 0]
    assert throttle.failed("10.0.0.1", LOG_SECONDS).report == 3, "the two quiet ones and this one"
    assert throttle.failed("10.0.0.2", LOG_SECONDS).report == 1, "every peer has its own window"


def test_the_failure_that_locks_is_always_reported():
    throttle = LoginThrottle()
    failures = fail(throttle, "10.0.0.1", MAX_FAILURES)
    assert failures[-1].locked_for is not None
    assert failures[-1].report == MAX_FAILURES - 1


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("fe80::1%eth0", "fe80::/64"),
        ("", ""),
    ],
)
def test_peers_are_addresses_and_ipv6_peers_their_64(address, key):
    assert peer_key(address) == key


@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 10_000)), max_size=200))
def test_a_locked_peer_stays_locked_until_its_time_whatever_the_order(events):
    throttle = LoginThrottle()
    now = 0.0
    for peer, step in events:
        now += step
        address = f"10.0.0.{peer}"
        if throttle.locked(address, now) is None:
            failure = throttle.failed(address, now)
            if failure.locked_for is not None:
                assert FIRST_LOCKOUT <= failure.locked_for <= MAX_LOCKOUT
                assert throttle.locked(address, now) == failure.locked_for

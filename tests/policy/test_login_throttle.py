"""Failed proxy logins per (peer, user) and per user: a few are free, then lockouts that grow, never of another user;
state and log lines stay bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.login_throttle import (
    FIRST_LOCKOUT,
    FORGET_SECONDS,
    LOG_SECONDS,
    LOOPBACK,
    MAX_FAILURES,
    MAX_FAILURES_EVERYWHERE,
    MAX_LOCKOUT,
    LoginThrottle,
    peer_key,
)

USER = "ci"


def fail(throttle: LoginThrottle, address: str, times: int, now: float = 0.0, user: str | None = USER):
    return [throttle.failed(address, user, now) for _ in range(times)]


def test_a_few_failures_are_free_then_the_peer_is_locked_out_and_others_are_not():
    throttle = LoginThrottle()
    failures = fail(throttle, "10.0.0.1", MAX_FAILURES)
    assert [f.locked_for for f in failures[:-1]] == [None] * (MAX_FAILURES - 1)
    assert failures[-1].locked_for == FIRST_LOCKOUT
    assert throttle.locked("10.0.0.1", USER, 1.0) == FIRST_LOCKOUT - 1.0
    assert throttle.locked("10.0.0.2", USER, 1.0) is None, "another peer is not affected"
    assert throttle.locked("10.0.0.1", USER, FIRST_LOCKOUT) is None, "the lockout ends"


def test_each_lockout_is_twice_the_one_before_up_to_the_cap():
    throttle = LoginThrottle()
    now, lockouts = 0.0, []
    fail(throttle, "10.0.0.1", MAX_FAILURES - 1)
    for _ in range(8):
        failure = throttle.failed("10.0.0.1", USER, now)
        assert failure.locked_for is not None, "after a lockout, the next failure locks again"
        lockouts.append(failure.locked_for)
        now += failure.locked_for
    assert lockouts == [min(MAX_LOCKOUT, FIRST_LOCKOUT * 2**n) for n in range(8)]


def test_a_peer_is_forgotten_only_after_staying_quiet_past_its_lockout():
    throttle = LoginThrottle()
    fail(throttle, "10.0.0.1", MAX_FAILURES)
    assert throttle.failed("10.0.0.1", USER, FIRST_LOCKOUT + FORGET_SECONDS - 1).locked_for == 2 * FIRST_LOCKOUT
    quiet = FIRST_LOCKOUT + FORGET_SECONDS - 1 + 2 * FIRST_LOCKOUT + FORGET_SECONDS
    assert throttle.failed("10.0.0.1", USER, quiet).locked_for is None, "a fresh start"


def test_state_is_bounded_and_many_addresses_only_evict_the_oldest():
    throttle = LoginThrottle(max_peers=100)
    fail(throttle, "10.9.9.9", MAX_FAILURES)
    for n in range(1000):
        throttle.failed(f"10.1.{n // 256}.{n % 256}", None, 1.0)
        assert len(throttle) <= 100
    assert throttle.locked("10.9.9.9", USER, 2.0) is None, "the least recently failed peer went first"


def test_one_log_line_per_peer_per_window_counts_the_failures_since_the_last():
    throttle = LoginThrottle()
    reports = [throttle.failed("10.0.0.1", USER, t).report for t in (0.0, 1.0, 2.0)]
    assert reports == [1, 0, 0]
    assert throttle.failed("10.0.0.1", USER, LOG_SECONDS).report == 3, "the two quiet ones and this one"
    assert throttle.failed("10.0.0.2", USER, LOG_SECONDS).report == 1, "every peer has its own window"


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
        ("127.0.0.1", LOOPBACK),
        ("127.4.5.6", LOOPBACK),
        ("::1", LOOPBACK),
        ("::ffff:127.0.0.2", LOOPBACK),
        ("128.0.0.1", "128.0.0.1"),
        ("::2", "::/64"),
    ],
)
def test_peers_are_addresses_ipv6_peers_their_64_and_all_of_loopback_one(address, key):
    assert peer_key(address) == key


@given(
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from([USER, "other", None]), st.floats(0, 10_000)), max_size=200)
)
def test_a_locked_peer_stays_locked_until_its_time_whatever_the_order(events):
    throttle = LoginThrottle()
    now = 0.0
    for peer, user, step in events:
        now += step
        address = f"10.0.0.{peer}"
        if throttle.locked(address, user, now) is None:
            failure = throttle.failed(address, user, now)
            started = [t for t in (failure.locked_for, failure.locked_everywhere_for) if t is not None]
            assert all(FIRST_LOCKOUT <= t <= MAX_LOCKOUT for t in started)
            if started:
                assert throttle.locked(address, user, now) == max(started), "in force at once, for its whole length"


def test_a_peer_locked_out_as_one_user_keeps_every_other_user_and_unknown_names_share_one_count():
    throttle = LoginThrottle()
    fail(throttle, "127.0.0.1", MAX_FAILURES, user=None)
    assert throttle.locked("127.0.0.9", None, 1.0) == FIRST_LOCKOUT - 1.0, "all made-up names, all of loopback"
    assert throttle.locked("127.0.0.1", USER, 1.0) is None
    fail(throttle, "127.0.0.1", MAX_FAILURES)
    assert throttle.locked("::1", USER, 1.0) == FIRST_LOCKOUT - 1.0
    assert throttle.locked("127.0.0.1", "other", 1.0) is None
    assert throttle.locked("192.0.2.1", USER, 1.0) is None, "another peer may still try"


def test_failures_of_a_user_from_many_peers_lock_it_out_everywhere_but_where_it_logged_in():
    throttle = LoginThrottle()
    throttle.succeeded("192.0.2.1", USER)
    failures = [throttle.failed(f"10.0.{n // 250}.{n % 250}", USER, 0.0) for n in range(MAX_FAILURES_EVERYWHERE)]
    assert all(f.locked_for is None for f in failures), "no peer failed more than once"
    assert [f.locked_everywhere_for for f in failures] == [None] * (MAX_FAILURES_EVERYWHERE - 1) + [FIRST_LOCKOUT]
    assert throttle.locked("10.9.9.9", USER, 1.0) == FIRST_LOCKOUT - 1.0, "a peer never seen before"
    assert throttle.locked("192.0.2.1", USER, 1.0) is None, "the peer it logged in from"
    assert throttle.locked("10.9.9.9", "other", 1.0) is None, "another user"
    assert throttle.locked("10.9.9.9", USER, FIRST_LOCKOUT) is None, "the lockout ends"
    assert throttle.failed("10.9.9.9", USER, FIRST_LOCKOUT).locked_everywhere_for == 2 * FIRST_LOCKOUT


def test_made_up_names_never_count_everywhere():
    throttle = LoginThrottle()
    for n in range(2 * MAX_FAILURES_EVERYWHERE):
        assert throttle.failed(f"10.0.{n // 250}.{n % 250}", None, 0.0).locked_everywhere_for is None


def test_a_failure_from_a_known_peer_during_a_lockout_everywhere_does_not_lengthen_it():
    throttle = LoginThrottle()
    throttle.succeeded("192.0.2.1", USER)
    for n in range(MAX_FAILURES_EVERYWHERE):
        throttle.failed(f"10.0.{n // 250}.{n % 250}", USER, 0.0)
    assert throttle.failed("192.0.2.1", USER, 1.0).locked_everywhere_for is None
    assert throttle.locked("10.9.9.9", USER, 2.0) == FIRST_LOCKOUT - 2.0


def test_the_peers_that_logged_in_are_bounded_too():
    throttle = LoginThrottle(max_peers=10)
    for n in range(100):
        throttle.succeeded(f"10.0.0.{n}", USER)
    assert len(throttle._known) == 10

"""The per-client rate limit as a pure function of the clock: never more than the limit in any minute."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.rate import ClientRates


def test_past_the_limit_the_wait_is_until_the_oldest_request_is_a_minute_old():
    rates = ClientRates()
    assert [rates.admit("a", 3, t) for t in (0.0, 10.0, 20.0)] == [None, None, None]
    assert rates.admit("a", 3, 30.0) == 30
    assert rates.admit("a", 3, 59.5) == 1, "a wait under a second is still at least 1"
    assert rates.admit("a", 3, 60.0) is None, "the first request left the window"
    assert rates.admit("a", 3, 60.0) == 10


def test_refused_requests_are_not_counted_and_clients_do_not_share_a_window():
    rates = ClientRates()
    assert rates.admit("a", 1, 0.0) is None
    for t in range(1, 60):
        assert rates.admit("a", 1, float(t)) is not None
        assert rates.admit("b", 100, float(t)) is None
    assert rates.admit("a", 1, 60.0) is None


@given(
    limit=st.integers(1, 5),
    gaps=st.lists(st.floats(0, 40, allow_nan=False), min_size=1, max_size=60),
)
def test_no_window_of_a_minute_ever_holds_more_than_the_limit(limit, gaps):
    rates = ClientRates()
    now, admitted = 0.0, []
    for gap in gaps:
        now += gap
        wait = rates.admit("a", limit, now)
        if wait is None:
            admitted.append(now)
        else:
            assert wait >= 1
            assert sum(1 for t in admitted if t + 60 - now > 0) == limit, "refused only when the window is full"
    for i, start in enumerate(admitted):
        assert sum(1 for t in admitted[i:] if start + 60 - t > 0) <= limit


def test_several_at_once_need_room_for_all_and_are_all_counted():
    rates = ClientRates()
    assert rates.admit("a", 3, 0.0) is None
    assert rates.admit("a", 3, 10.0, 3) == 50, "room for all three only once the first left the window"
    assert rates.admit("a", 3, 10.0, 2) is None
    assert rates.admit("a", 3, 20.0) == 40
    assert rates.admit("a", 3, 70.0, 4) == 60, "more than the limit at once never fits"
    assert rates.admit("a", 3, 70.0, 1) is None, "and is not counted"


@given(
    limit=st.integers(1, 5),
    steps=st.lists(st.tuples(st.floats(0, 40, allow_nan=False), st.integers(1, 6)), min_size=1, max_size=60),
)
def test_no_window_of_a_minute_ever_holds_more_than_the_limit_counting_several_at_once(limit, steps):
    rates = ClientRates()
    now, admitted = 0.0, []
    for gap, count in steps:
        now += gap
        wait = rates.admit("a", limit, now, count)
        if wait is None:
            admitted += [now] * count
        else:
            assert wait >= 1
            assert count > limit or sum(1 for t in admitted if t + 60 - now > 0) + count > limit, (
                "refused only when full"
            )
    for i, start in enumerate(admitted):
        assert sum(1 for t in admitted[i:] if start + 60 - t > 0) <= limit

"""Recorded token expiry dates: counted from midnight UTC, warned about two weeks ahead."""

from __future__ import annotations

import datetime as dt

from proxy_addon.policy.expiry import days_left, due_soon, expired, expiry_timestamp


def test_expiry_dates_count_from_midnight_utc():
    day = dt.date(2027, 3, 15)
    midnight = dt.datetime(2027, 3, 15, tzinfo=dt.UTC).timestamp()
    assert expiry_timestamp(day) == midnight
    assert not expired(day, midnight - 1)
    assert expired(day, midnight)
    assert days_left(day, midnight - 14 * 86400) == 14
    assert due_soon(day, midnight - 14 * 86400)
    assert not due_soon(day, midnight - 15 * 86400)
    assert days_left(day, midnight + 2 * 86400) == -2

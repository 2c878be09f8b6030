"""The back-off state machine and the rejection detector, as pure functions of time and headers."""

from __future__ import annotations

import pytest

from proxy_addon.backoff import FIRST_PAUSE, MAX_PAUSE, Backoff, rejection_reason


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (401, {}, "HTTP 401"),
        (200, {"x-seraph-loginreason": "AUTHENTICATED_FAILED"}, "X-Seraph-LoginReason AUTHENTICATED_FAILED"),
        (200, {"x-seraph-loginreason": "AUTHENTICATION_DENIED"}, "X-Seraph-LoginReason AUTHENTICATION_DENIED"),
        (403, {"x-seraph-loginreason": "OK, AUTHENTICATION_DENIED"}, "X-Seraph-LoginReason AUTHENTICATION_DENIED"),
        (200, {"x-seraph-loginreason": "OK"}, None),
        (200, {}, None),
        (403, {}, None),
        (429, {}, None),
    ],
)
def test_rejection_reason(status, headers, expected):
    assert rejection_reason(status, headers) == expected


def test_pause_grows_and_is_capped():
    backoff = Backoff()
    pauses = []
    for _ in range(8):
        backoff.rejected(0.0)
        pauses.append(backoff.pause())
    assert pauses[0] == FIRST_PAUSE
    assert pauses == sorted(pauses)
    assert pauses[-1] == MAX_PAUSE


def test_one_probe_after_the_pause_then_verdicts():
    backoff = Backoff()
    assert backoff.admit(0.0)
    backoff.rejected(100.0)
    assert not backoff.admit(100.0 + FIRST_PAUSE - 1)
    assert backoff.retry_after(100.0) == FIRST_PAUSE
    assert backoff.admit(100.0 + FIRST_PAUSE)
    assert not backoff.admit(100.0 + FIRST_PAUSE), "only one probe at a time"
    backoff.probe_ended()
    assert backoff.admit(100.0 + FIRST_PAUSE), "a probe that failed on the network makes room for the next"
    backoff.rejected(200.0)
    assert backoff.pause() == 2 * FIRST_PAUSE
    backoff.accepted()
    assert backoff.admit(200.0)
    assert not backoff.active

"""The back-off state machine and the rejection detector, as pure functions of time and headers."""

from __future__ import annotations

import pytest

from proxy_addon.policy.token_health import FIRST_PAUSE, MAX_PAUSE, Backoff, Change, TokenHealth, rejection_reason


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
    assert backoff.admit(100.0 + FIRST_PAUSE, ("client", "flow"))
    assert not backoff.admit(100.0 + FIRST_PAUSE), "only one probe at a time"
    backoff.release("client", "another flow")
    assert not backoff.admit(100.0 + FIRST_PAUSE), "only the probe's own flow frees its slot"
    backoff.release("client", "flow")
    assert backoff.admit(100.0 + FIRST_PAUSE), "a probe that ended without a verdict makes room for the next"
    backoff.rejected(200.0)
    assert backoff.pause() == 2 * FIRST_PAUSE


def test_a_probe_slot_is_freed_by_its_client_leaving_or_by_the_time_bound():
    backoff = Backoff()
    backoff.rejected(0.0)
    assert backoff.admit(FIRST_PAUSE, ("client", "flow"), probe_seconds=10.0)
    backoff.release("client")
    assert backoff.admit(FIRST_PAUSE, ("other", "flow"), probe_seconds=10.0), "its client disconnected"
    assert not backoff.admit(FIRST_PAUSE + 9.9, ("third", "flow"), probe_seconds=10.0)
    assert backoff.admit(FIRST_PAUSE + 10.0, ("third", "flow"), probe_seconds=10.0), "no hook needed: time frees it"


def test_one_sites_rejection_never_makes_another_sites_answer_stale():
    """A request to site B in flight while site A's token is rejected: B's 401 still counts."""
    health = TokenHealth()
    health.token_changed("a")
    health.token_changed("b")
    sent_to_b = health.stamp()
    sent_to_a = health.stamp()
    assert health.judge("a", "a.atlassian.net", sent_to_a, "HTTP 401", 0.0) is Change.REJECTED
    assert health.judge("b", "b.atlassian.net", sent_to_b, "HTTP 401", 0.0) is Change.REJECTED
    assert health.admit("b", "b.atlassian.net", 1.0) is not None


def test_answers_to_requests_sent_before_a_verdict_count_once():
    health = TokenHealth()
    sent = health.stamp()
    assert health.judge("a", "a.atlassian.net", sent, "HTTP 401", 0.0) is Change.REJECTED
    assert health.judge("a", "a.atlassian.net", sent, "HTTP 401", 0.0) is None
    assert health.pause("a", "a.atlassian.net") == FIRST_PAUSE


def test_a_new_token_ends_only_its_own_sites_pause():
    health = TokenHealth()
    stamp = health.stamp()
    health.judge("a", "a.atlassian.net", stamp, "HTTP 401", 0.0)
    health.judge("b", "b.atlassian.net", stamp, "HTTP 401", 0.0)
    health.token_changed("a")
    assert health.admit("a", "a.atlassian.net", 1.0) is None
    assert health.admit("b", "b.atlassian.net", 1.0) is not None


def test_an_accepted_probe_ends_the_pause_and_a_network_error_frees_the_probe():
    health = TokenHealth()
    health.judge("a", "h", health.stamp(), "HTTP 401", 0.0)
    assert health.admit("a", "h", FIRST_PAUSE, ("c", "f1")) is None, "the probe goes"
    probe = health.stamp()
    assert health.admit("a", "h", FIRST_PAUSE) is not None, "one probe at a time"
    health.ended("c", "f1")
    assert health.admit("a", "h", FIRST_PAUSE, ("c", "f2")) is None, "the next probe"
    assert health.judge("a", "h", probe, None, FIRST_PAUSE) is Change.ACCEPTED
    assert not health.backing_off

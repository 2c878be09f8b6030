"""The back-off state machine and the rejection detector, as pure functions of time and headers."""

from __future__ import annotations

import pytest

from proxy_addon.policy.token_health import (
    FIRST_PAUSE,
    MAX_PAUSE,
    RECHECK_SECONDS,
    Backoff,
    Change,
    Hold,
    TokenHealth,
    rejection_reason,
)


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


def test_during_the_pause_the_rest_of_it_then_the_check_is_due():
    health = TokenHealth()
    assert health.admit("a", "h", 0.0) is None
    health.judge("a", "h", health.stamp(), "HTTP 401", 100.0)
    assert health.admit("a", "h", 100.0) == Hold(FIRST_PAUSE)
    assert health.admit("a", "h", 100.0 + FIRST_PAUSE - 0.2) == Hold(1), "at least a second"
    due = Hold(1, check_due=True)
    assert health.admit("a", "h", 100.0 + FIRST_PAUSE) == due, "no request goes: the proxy's own check decides"
    assert health.admit("a", "h", 100.0 + 10 * MAX_PAUSE) == due, "however long nobody asked"
    assert health.admit("a", "other", 100.0) is None, "another host of the site is not paused"


def test_a_rejected_check_doubles_the_pause_and_an_accepted_one_ends_it():
    health = TokenHealth()
    health.judge("a", "h", health.stamp(), "HTTP 401", 0.0)
    check = health.stamp()
    assert health.judge("a", "h", check, "HTTP 401 from /rest/api/3/myself", FIRST_PAUSE) is Change.REJECTED
    assert health.admit("a", "h", FIRST_PAUSE) == Hold(2 * round(FIRST_PAUSE))
    assert health.admit("a", "h", 3 * FIRST_PAUSE).check_due
    check = health.stamp()
    assert health.judge("a", "h", check, None, 3 * FIRST_PAUSE) is Change.ACCEPTED
    assert health.admit("a", "h", 3 * FIRST_PAUSE) is None
    assert not health.backing_off
    health.judge("a", "h", health.stamp(), "HTTP 401", 200.0)
    assert health.pause("a", "h") == FIRST_PAUSE, "an accepted token starts over"


def test_an_unanswered_check_keeps_the_pause_without_doubling_it():
    health = TokenHealth()
    health.judge("a", "h", health.stamp(), "HTTP 401", 0.0)
    check = health.stamp()
    health.keep("a", "h", check, FIRST_PAUSE)
    assert health.admit("a", "h", FIRST_PAUSE) == Hold(round(RECHECK_SECONDS))
    assert health.admit("a", "h", FIRST_PAUSE + RECHECK_SECONDS).check_due, "checked again soon"
    assert health.pause("a", "h") == FIRST_PAUSE, "not doubled"
    health.keep("a", "h", health.stamp(), FIRST_PAUSE + RECHECK_SECONDS, None)
    assert health.admit("a", "h", FIRST_PAUSE + RECHECK_SECONDS) == Hold(round(FIRST_PAUSE)), "a whole pause again"


def test_a_check_of_a_token_that_changed_meanwhile_counts_for_nothing():
    health = TokenHealth()
    health.judge("a", "h", health.stamp(), "HTTP 401", 0.0)
    check = health.stamp()
    health.token_changed("a")
    assert health.judge("a", "h", check, "HTTP 401 from /rest/api/3/myself", FIRST_PAUSE) is None
    health.keep("a", "h", check, FIRST_PAUSE)
    assert health.admit("a", "h", FIRST_PAUSE) is None


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

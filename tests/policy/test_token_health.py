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
    Scope,
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
    assert health.admit("a", "other", 100.0) == Hold(FIRST_PAUSE), "the token is the site's: all its hosts pause"
    assert health.admit("b", "h", 100.0) is None, "another site's token goes on"


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


def test_a_host_paused_alone_pauses_nothing_else_and_its_accepted_check_ends_only_it():
    health = TokenHealth()
    assert health.judge("a", "t1", health.stamp(), "HTTP 401", 0.0, Scope.HOST) is Change.REJECTED
    assert health.admit("a", "t1", 1.0) == Hold(FIRST_PAUSE - 1)
    assert health.admit("a", "home", 1.0) is None
    assert health.admit("a", "t2", 1.0) is None
    assert health.scope("a", "t1") is Scope.HOST
    assert health.judge("a", "home", health.stamp(), None, 2.0) is None, "the home's answers end no host's pause"
    assert health.judge("a", "t1", health.stamp(), None, FIRST_PAUSE) is Change.ACCEPTED
    assert not health.backing_off


def test_a_site_pause_covers_its_hosts_own_pauses_and_ends_them_all():
    health = TokenHealth()
    health.judge("a", "t1", health.stamp(), "HTTP 401", 0.0, Scope.HOST)
    health.judge("b", "t1", health.stamp(), "HTTP 401", 0.0, Scope.HOST)
    health.judge("a", "home", health.stamp(), "HTTP 401", 1.0)
    assert [(site, host, scope) for site, host, scope in health.paused()] == [
        ("a", "home", Scope.SITE),
        ("b", "t1", Scope.HOST),
    ]
    assert health.scope("a", "t1") is Scope.SITE
    health.judge("a", "t9", health.stamp(), None, FIRST_PAUSE + 1)
    assert health.admit("a", "t1", FIRST_PAUSE + 1) is None, "the site's check accepted: no host of it stays paused"
    assert health.admit("b", "t1", 2.0) is not None


def test_the_hosts_paused_alone_are_bounded_and_the_oldest_is_forgotten():
    health = TokenHealth(hosts_remembered=3)
    for n in range(5):
        health.judge("a", f"t{n}", health.stamp(), "HTTP 401", float(n), Scope.HOST)
    assert len(health.hosts) == 3
    assert [health.admit("a", f"t{n}", 5.0) is not None for n in range(5)] == [False, False, True, True, True]


def test_answers_sent_before_a_sites_verdict_count_for_none_of_its_hosts():
    health = TokenHealth()
    sent_to_t2 = health.stamp()
    assert health.judge("a", "t1", health.stamp(), "HTTP 401", 0.0) is Change.REJECTED
    assert health.judge("a", "t2", sent_to_t2, "HTTP 401", 0.0) is None
    assert health.pause("a", "t2") == FIRST_PAUSE, "one rejection, not two"

"""Rate-limit holds as pure functions of the answer and the clock: scope by reason, length by hint, doubling."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.holds import (
    LONGEST_HINTED,
    SITE,
    Holds,
    Place,
    Scope,
    digest,
    endpoint,
    hinted_seconds,
    issue_of,
    place_of,
    reason_of,
    unhinted_seconds,
)

WALL = 1_900_000_000.0
BURST = {"ratelimit-reason": "jira-burst-based", "retry-after": "2"}


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/rest/api/3/search/jql?jql=project%3DOPS", "GET /rest/api/3/search/jql"),
        ("GET", "/rest/api/3/issue/OPS-1", "GET /rest/api/3/issue/{id}"),
        ("GET", "/rest/api/3/issue/ops-2/comment/10042", "GET /rest/api/3/issue/{id}/comment/{id}"),
        ("PUT", "/rest/api/2/issue/20001", "PUT /rest/api/2/issue/{id}"),
        ("GET", "/wiki/api/v2/pages/30001", "GET /wiki/api/v2/pages/{id}"),
        (
            "GET",
            "/ex/jira/c0ffee00-1234-4abc-9def-00000000acme/rest/api/3/myself",
            "GET /ex/jira/c0ffee00-1234-4abc-9def-00000000acme/rest/api/3/myself",
        ),
        (
            "GET",
            "/ex/jira/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/rest/api/3/myself",
            "GET /ex/jira/{id}/rest/api/3/myself",
        ),
        ("GET", "/rest/agile/1.0/board/5", "GET /rest/agile/1.0/board/{id}"),
    ],
)
def test_an_endpoint_is_the_method_and_path_with_keys_ids_and_uuids_replaced(method, path, expected):
    assert endpoint(method, path) == expected


def test_issues_of_one_endpoint_share_it_and_the_api_version_is_no_id():
    assert endpoint("GET", "/rest/api/3/issue/OPS-1") == endpoint("GET", "/rest/api/3/issue/OPS-2")
    assert endpoint("GET", "/rest/api/3/issue/OPS-1") != endpoint("GET", "/rest/api/2/issue/OPS-1")


@pytest.mark.parametrize(
    "spelling",
    [
        "/rest/api/3/search/jql/",
        "//rest/api/3/search/jql",
        "/rest/./api/3/search/jql",
        "/rest/api/3/x/../search/jql",
        "/rest/api/3/search;x=1/jql",
        "/rest/api/3/search/%6Aql",
        "/rest/api/3/search/jql?jql=project%3DOPS",
    ],
)
def test_a_path_spelled_otherwise_is_the_same_endpoint(spelling):
    assert endpoint("GET", spelling) == "GET /rest/api/3/search/jql"


def test_an_escaped_separator_stays_escaped():
    assert endpoint("GET", "/rest/api/3/search%2fjql") == "GET /rest/api/3/search%2Fjql"
    assert issue_of("/rest/api/3/issue/OPS-1%2F..%2F..") is None


@pytest.mark.parametrize(
    ("path", "issue"),
    [
        ("/rest/api/3/issue/OPS-1", "OPS-1"),
        ("/rest/api/2/issue/ops-1/comment", "OPS-1"),
        ("/rest/api/latest/issue/20001/transitions?x=1", "20001"),
        ("/jira/rest/api/2/issue/OPS-7", "OPS-7"),
        ("/ex/jira/c0ffee00-1234-4abc-9def-00000000acme/rest/api/3/issue/SEC-1/assignee", "SEC-1"),
        ("/rest/api/3/issue/bulk", None),
        ("/rest/api/3/issue", None),
        ("/rest/api/3/search/jql", None),
        ("//rest/api/2/./issue/OPS-3;x=1/comment", "OPS-3"),
        ("/rest/api/3/issue/%4FPS-4", "OPS-4"),
    ],
)
def test_the_issue_a_path_names(path, issue):
    assert issue_of(path) == issue


@pytest.mark.parametrize(
    ("reason", "method", "path", "place"),
    [
        ("jira-burst-based", "GET", "/rest/api/3/search/jql", Place(Scope.ENDPOINT, "GET /rest/api/3/search/jql")),
        ("confluence-burst-based", "PUT", "/wiki/api/v2/pages/1", Place(Scope.ENDPOINT, "PUT /wiki/api/v2/pages/{id}")),
        ("jira-per-issue-on-write", "PUT", "/rest/api/3/issue/OPS-1", Place(Scope.ISSUE, "OPS-1")),
        ("jira-per-issue-on-write", "POST", "/rest/api/3/issue", Place(Scope.ENDPOINT, "POST /rest/api/3/issue")),
        ("jira-quota-global-based", "GET", "/rest/api/3/myself", SITE),
        ("something-new", "GET", "/rest/api/3/myself", SITE),
        (None, "GET", "/rest/api/3/myself", SITE),
    ],
)
def test_the_scope_follows_the_reason(reason, method, path, place):
    assert place_of(reason, method, path) == place


def test_the_labels_name_the_scope_as_the_local_429_does():
    assert Place(Scope.ENDPOINT, "GET /rest/api/3/search/jql").label == "endpoint GET /rest/api/3/search/jql"
    assert Place(Scope.ISSUE, "OPS-1").label == "issue OPS-1"
    assert SITE.label == "site"


def test_only_a_short_token_is_repeated_as_the_reason():
    assert reason_of({"ratelimit-reason": " jira-burst-based "}) == "jira-burst-based"
    assert reason_of({"ratelimit-reason": "a b"}) is None
    assert reason_of({"ratelimit-reason": "x" * 65}) is None
    assert reason_of({}) is None


def test_the_length_comes_from_retry_after_then_the_reset_time():
    assert hinted_seconds({"retry-after": "17", "x-ratelimit-reset": "2030-01-01T00:00:00Z"}, WALL) == 17
    date = format_datetime(datetime.fromtimestamp(WALL + 30, UTC), usegmt=True)
    assert hinted_seconds({"retry-after": date}, WALL) == pytest.approx(30)
    reset = datetime.fromtimestamp(WALL + 42, UTC).isoformat().replace("+00:00", "Z")
    assert hinted_seconds({"x-ratelimit-reset": reset}, WALL) == pytest.approx(42)
    assert hinted_seconds({"retry-after": "soon"}, WALL) is None
    assert hinted_seconds({"x-ratelimit-reset": "tomorrow"}, WALL) is None
    assert hinted_seconds({}, WALL) is None


@pytest.mark.parametrize(
    "value", ["\u00b2", "\u0661\u0662", "-5", "1.5", "1e9", "17, 17", "Mon, 01 Jan 99999 00:00:00 GMT"]
)
def test_a_retry_after_of_other_characters_is_no_hint_and_never_raises(value):
    assert hinted_seconds({"retry-after": value}, WALL) is None


@given(st.text(max_size=40), st.text(max_size=40))
def test_no_header_text_makes_the_length_raise(retry_after, reset):
    seconds = hinted_seconds({"retry-after": retry_after, "x-ratelimit-reset": reset}, WALL)
    assert seconds is None or isinstance(seconds, float)


def test_without_a_hint_5_s_doubling_to_60():
    assert [unhinted_seconds(n) for n in range(1, 8)] == [5, 10, 20, 40, 60, 60, 60]


def limited(holds, headers, now, method="GET", path="/rest/api/3/myself", sent=None, host="acme.atlassian.net"):
    return holds.limited("acme", host, method, path, headers, now if sent is None else sent, now, WALL + now)


def test_a_burst_hold_holds_that_method_and_endpoint_only():
    holds = Holds()
    started = limited(holds, BURST, 0.0, "GET", "/rest/api/3/issue/OPS-1")
    assert started is not None
    assert started.new
    assert started.seconds == 2
    assert started.place == Place(Scope.ENDPOINT, "GET /rest/api/3/issue/{id}")
    held = holds.check("acme", "acme.atlassian.net", "GET", "/rest/api/3/issue/OPS-2", 0.5)
    assert held is not None
    assert (held.retry_after, held.reason) == (2, "jira-burst-based")
    assert held.place.label == "endpoint GET /rest/api/3/issue/{id}"
    assert holds.check("acme", "acme.atlassian.net", "PUT", "/rest/api/3/issue/OPS-2", 0.5) is None
    assert holds.check("acme", "acme.atlassian.net", "GET", "/rest/api/3/myself", 0.5) is None
    assert holds.check("acme", "other.atlassian.net", "GET", "/rest/api/3/issue/OPS-2", 0.5) is None
    assert holds.check("acme", "acme.atlassian.net", "GET", "/rest/api/3/issue/OPS-2", 2.0) is None
    assert not holds.holds, "an ended hold is forgotten when it is looked up"


def test_a_per_issue_hold_holds_writes_to_that_issue_only():
    holds = Holds()
    limited(
        holds,
        {"ratelimit-reason": "jira-per-issue-on-write", "retry-after": "3"},
        0.0,
        "PUT",
        "/rest/api/3/issue/OPS-1",
    )
    for method, path in (("POST", "/rest/api/3/issue/ops-1/comment"), ("DELETE", "/rest/api/3/issue/OPS-1")):
        held = holds.check("acme", "acme.atlassian.net", method, path, 1.0)
        assert held is not None
        assert held.place.label == "issue OPS-1"
    assert holds.check("acme", "acme.atlassian.net", "GET", "/rest/api/3/issue/OPS-1", 1.0) is None
    assert holds.check("acme", "acme.atlassian.net", "PUT", "/rest/api/3/issue/OPS-2", 1.0) is None


def test_any_other_reason_holds_the_whole_site_and_retry_after_counts_down():
    holds = Holds()
    limited(holds, {"ratelimit-reason": "jira-quota-tenant-based", "retry-after": "10"}, 0.0)
    for method, path in (("GET", "/wiki/api/v2/pages"), ("POST", "/rest/api/3/issue")):
        held = holds.check("acme", "acme.atlassian.net", method, path, 2.5)
        assert held is not None
        assert held.place == SITE
        assert held.retry_after == 8, "whole seconds left, rounded up"
    assert holds.check("acme", "acme.atlassian.net", "GET", "/", 9.9).retry_after == 1
    assert holds.check("globex", "acme.atlassian.net", "GET", "/", 1.0) is None


def test_hint_less_429s_double_until_a_request_in_scope_succeeds():
    holds = Holds()
    lengths = []
    now = 0.0
    for _ in range(6):
        started = limited(holds, {}, now)
        lengths.append(started.seconds)
        now += started.seconds
    assert lengths == [5, 10, 20, 40, 60, 60]
    assert holds.passed("acme", "acme.atlassian.net", "GET", "/rest/api/3/myself") == [
        digest("acme", "acme.atlassian.net", SITE)
    ]
    assert limited(holds, {}, now).seconds == 5, "a success starts the doubling again"


def test_a_429_to_a_request_sent_before_its_hold_began_does_not_double_it():
    holds = Holds()
    assert limited(holds, {}, 1.0).seconds == 5
    assert limited(holds, {}, 1.2, sent=0.9) is None, "in flight when the hold began"
    assert holds.check("acme", "acme.atlassian.net", "GET", "/", 5.9) is not None
    assert holds.check("acme", "acme.atlassian.net", "GET", "/", 6.0) is None


def test_a_longer_hint_lengthens_a_hold_without_counting_a_new_one():
    holds = Holds()
    assert limited(holds, {"retry-after": "5"}, 0.0).new
    again = limited(holds, {"retry-after": "20"}, 1.0)
    assert again is not None
    assert not again.new
    assert limited(holds, {"retry-after": "3"}, 2.0) is None, "a shorter hint changes nothing"
    assert holds.check("acme", "acme.atlassian.net", "GET", "/", 20.5).retry_after == 1
    assert holds.started == {("acme", Scope.SITE): 1}


def test_a_hint_is_kept_within_one_second_and_an_hour():
    holds = Holds()
    assert limited(holds, {"retry-after": "0"}, 0.0).seconds == 1
    assert limited(holds, {"x-ratelimit-reset": "2099-01-01T00:00:00Z"}, 5.0).seconds == LONGEST_HINTED


def test_adopted_holds_count_nowhere_and_held_sites_name_only_lasting_ones():
    holds = Holds()
    name = digest("acme", "acme.atlassian.net", SITE)
    assert holds.adopt(name, "acme", Scope.SITE, 3.0, "jira-quota-global-based", 0.0)
    assert not holds.adopt(name, "acme", Scope.SITE, 1.0, None, 0.5)
    assert holds.check("acme", "acme.atlassian.net", "GET", "/", 1.0).reason == "jira-quota-global-based"
    assert holds.started == {}
    assert holds.held_sites(2.0) == {"acme"}
    assert holds.held_sites(3.0) == set()


def test_an_adopted_hold_keeps_only_a_reason_of_the_form_a_site_gives():
    """The local 429 repeats the reason as a header: a store's text with a line break must not become one."""
    holds = Holds()
    name = digest("acme", "acme.atlassian.net", SITE)
    holds.adopt(name, "acme", Scope.SITE, 30.0, "x\r\nSet-Cookie: session=planted", 0.0)
    assert holds.check("acme", "acme.atlassian.net", "GET", "/", 1.0).reason is None
    holds.adopt(name, "acme", Scope.SITE, 40.0, "jira-quota-global-based", 0.0)
    assert holds.check("acme", "acme.atlassian.net", "GET", "/", 1.0).reason == "jira-quota-global-based"


def test_the_table_is_bounded():
    holds = Holds(kept=3)
    for n in range(5):
        limited(holds, BURST, 0.0, "GET", f"/rest/api/3/thing{n}")
    assert len(holds.holds) == 3


def test_the_counts_of_hint_less_429s_are_bounded_too():
    holds = Holds(kept=3)
    unhinted = {"ratelimit-reason": "jira-burst-based"}
    for n in range(5):
        limited(holds, unhinted, 0.0, "GET", f"/rest/api/3/thing{n}")
        holds.adopt_strikes(f"other{n}", 2, 0.0)
    assert len(holds.strikes) == 3
    assert len(holds.holds) == 3


def test_the_digest_holds_neither_path_nor_issue():
    name = digest("acme", "acme.atlassian.net", Place(Scope.ISSUE, "OPS-1"))
    assert "OPS" not in name
    assert len(name) == 32
    assert name != digest("acme", "acme.atlassian.net", Place(Scope.ISSUE, "OPS-2"))


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=80), st.sampled_from(["GET", "PUT", "DELETE"]))
def test_any_path_has_one_endpoint_and_its_scopes_start_with_the_site(path, method):
    name = endpoint(method, "/" + path)
    assert name.startswith(method + " /")
    assert "?" not in name
    holds = Holds()
    assert holds.check("acme", "h", method, "/" + path, 0.0) is None

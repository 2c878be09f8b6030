"""What an answer to credentials says of the token: one reading from the status, fields, where it went, the page."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Site, SiteTable
from proxy_addon.policy.token_verdict import Reading, Sent, TokenVerdict, read_answer
from proxy_addon.policy.unauthorized import IdentityPage
from proxy_addon.policy.verdict import Policy

ACME = "acme.atlassian.net"
CLOUD = Site("cloud", (HostPattern.parse("*.atlassian.net"),), "me@example.test")
GIT = Site("git", (HostPattern.parse("bitbucket.org"),), "me@example.test")
POLICY = Policy(SiteTable.of([CLOUD, GIT]), Gateway())
MYSELF = IdentityPage(ACME, 443, "/rest/api/3/myself")
ISSUE = Sent("POST", ACME, 443, "/rest/api/3/issue?notifyUsers=false")


@pytest.mark.parametrize(
    ("status", "fields", "sent", "site", "expected"),
    [
        (200, {}, ISSUE, CLOUD, Reading(TokenVerdict.PASS)),
        (403, {}, ISSUE, CLOUD, Reading(TokenVerdict.PASS)),
        (401, {"x-failure-category": "FAILURE_CLIENT_SCOPE_CHECK"}, ISSUE, CLOUD, Reading(TokenVerdict.SCOPE_MISS)),
        (
            200,
            {"x-seraph-loginreason": "AUTHENTICATED_FAILED"},
            ISSUE,
            CLOUD,
            Reading(TokenVerdict.REJECTED, "X-Seraph-LoginReason AUTHENTICATED_FAILED"),
        ),
        (401, {}, ISSUE, CLOUD, Reading(TokenVerdict.CONFIRM, page=MYSELF)),
        (
            401,
            {},
            Sent("GET", ACME, 443, "/rest/api/3/myself?expand=groups"),
            CLOUD,
            Reading(TokenVerdict.REJECTED, "HTTP 401"),
        ),
        (401, {}, Sent("POST", ACME, 443, "/rest/api/3/myself"), CLOUD, Reading(TokenVerdict.CONFIRM, page=MYSELF)),
        (
            401,
            {},
            Sent("GET", "bitbucket.org", 443, "/repo.git/info/refs"),
            GIT,
            Reading(TokenVerdict.REJECTED, "HTTP 401, and site git has no identity page of its own to confirm it"),
        ),
    ],
    ids=["ok", "forbidden", "scope-miss", "seraph", "ambiguous", "identity-page", "identity-page-post", "no-page"],
)
def test_each_answer_reads_as_one_verdict(status, fields, sent, site, expected):
    assert read_answer(status, fields, sent, site, POLICY) == expected


@given(status=st.integers(100, 599), seraph=st.sampled_from(["", "OUT", "AUTHENTICATED_FAILED"]))
def test_only_a_401_or_a_failed_login_is_against_the_token(status, seraph):
    reading = read_answer(status, {"x-seraph-loginreason": seraph}, ISSUE, CLOUD, POLICY)
    against = status == 401 or seraph == "AUTHENTICATED_FAILED"
    assert (reading.verdict is not TokenVerdict.PASS) is against
    assert (reading.rejection is not None) is (reading.verdict is TokenVerdict.REJECTED)
    assert (reading.page is not None) is (reading.verdict is TokenVerdict.CONFIRM)

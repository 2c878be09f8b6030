"""What an answer to credentials says of the token: one reading from the status, fields, where it went, the page."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.layouts import Product, declared
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.token_verdict import Reading, Sent, TokenVerdict, read_answer, token_page
from proxy_addon.policy.unauthorized import IdentityPage
from proxy_addon.policy.verdict import Policy

ACME = "acme.atlassian.net"
CLOUD = Site("cloud", (HostPattern.parse("*.atlassian.net"),), "me@example.test")
GIT = Site("git", (HostPattern.parse("bitbucket.org"),), "me@example.test")
POLICY = Policy(SiteTable.of([CLOUD, GIT]), Gateway())
MYSELF = IdentityPage(ACME, 443, "/rest/api/3/myself")
ISSUE = Sent("POST", ACME, 443, "/rest/api/3/issue?notifyUsers=false")
SERAPH = {"x-seraph-loginreason": "AUTHENTICATED_FAILED"}


@pytest.mark.parametrize(
    ("status", "fields", "sent", "site", "expected"),
    [
        (200, {}, ISSUE, CLOUD, Reading(TokenVerdict.PASS)),
        (403, {}, ISSUE, CLOUD, Reading(TokenVerdict.PASS)),
        (401, {"x-failure-category": "FAILURE_CLIENT_SCOPE_CHECK"}, ISSUE, CLOUD, Reading(TokenVerdict.SCOPE_MISS)),
        (
            200,
            SERAPH,
            ISSUE,
            CLOUD,
            Reading(TokenVerdict.CONFIRM, "X-Seraph-LoginReason AUTHENTICATED_FAILED", MYSELF),
        ),
        (401, {}, ISSUE, CLOUD, Reading(TokenVerdict.CONFIRM, "HTTP 401", MYSELF)),
        (401, {}, Sent("GET", ACME, 443, "/rest/api/3/myself"), CLOUD, Reading(TokenVerdict.REJECTED, "HTTP 401")),
        (
            401,
            SERAPH,
            Sent("GET", ACME, 443, "/rest/api/3/myself"),
            CLOUD,
            Reading(TokenVerdict.REJECTED, "X-Seraph-LoginReason AUTHENTICATED_FAILED"),
        ),
        (
            401,
            SERAPH,
            Sent("GET", ACME, 443, "/rest/api/3/myself?os_username=nobody&os_password=x"),
            CLOUD,
            Reading(TokenVerdict.CONFIRM, "X-Seraph-LoginReason AUTHENTICATED_FAILED", MYSELF),
        ),
        (
            401,
            {},
            Sent("GET", ACME, 443, "/rest/api/3/myself?expand=groups"),
            CLOUD,
            Reading(TokenVerdict.CONFIRM, "HTTP 401", MYSELF),
        ),
        (
            401,
            {},
            Sent("POST", ACME, 443, "/rest/api/3/myself"),
            CLOUD,
            Reading(TokenVerdict.CONFIRM, "HTTP 401", MYSELF),
        ),
        (
            401,
            {},
            Sent("GET", "bitbucket.org", 443, "/repo.git/info/refs"),
            GIT,
            Reading(TokenVerdict.REJECTED, "HTTP 401, and site git has no identity page of its own to confirm it"),
        ),
    ],
    ids=[
        "ok",
        "forbidden",
        "scope-miss",
        "seraph",
        "ambiguous",
        "identity-page",
        "identity-page-seraph",
        "identity-page-with-a-login-in-the-query",
        "identity-page-with-a-query",
        "identity-page-post",
        "no-page",
    ],
)
def test_each_answer_reads_as_one_verdict(status, fields, sent, site, expected):
    assert read_answer(status, fields, sent, site, POLICY) == expected


@given(status=st.integers(100, 599), seraph=st.sampled_from(["", "OUT", "AUTHENTICATED_FAILED"]))
def test_only_a_401_or_a_failed_login_is_against_the_token(status, seraph):
    reading = read_answer(status, {"x-seraph-loginreason": seraph}, ISSUE, CLOUD, POLICY)
    against = status == 401 or seraph == "AUTHENTICATED_FAILED"
    assert (reading.verdict is not TokenVerdict.PASS) is against
    assert reading.verdict is not TokenVerdict.REJECTED, "no answer to a client's request pauses by itself"
    assert (reading.page is not None) is (reading.verdict is TokenVerdict.CONFIRM)


HOMED = Site("acme", (HostPattern.parse(ACME), HostPattern.parse("*.atlassian.net")), "me@example.test")
HOMED_POLICY = Policy(SiteTable.of([HOMED]), Gateway())
DC = Site(
    "dc",
    (HostPattern.parse("tracker.corp.example"),),
    "",
    scheme=Scheme.BEARER,
    layout=declared(Product.JIRA, "/jira"),
)


@pytest.mark.parametrize(
    ("site", "policy", "host", "expected"),
    [
        (CLOUD, POLICY, "t7.atlassian.net", IdentityPage("t7.atlassian.net", 443, "/rest/api/3/myself")),
        (
            CLOUD,
            Policy(SiteTable.of([CLOUD]), Gateway(), named_site=ACME),
            "t7.atlassian.net",
            MYSELF,
        ),
        (HOMED, HOMED_POLICY, "t7.atlassian.net", MYSELF),
        (HOMED, HOMED_POLICY, ACME, MYSELF),
        (
            DC,
            Policy(SiteTable.of([DC]), Gateway()),
            "tracker.corp.example",
            IdentityPage("tracker.corp.example", 443, "/jira/rest/api/2/myself"),
        ),
        (GIT, POLICY, "bitbucket.org", None),
    ],
    ids=["pure-wildcard", "atlassian-proxy-site", "exact-host", "the-home-itself", "data-center", "no-page"],
)
def test_the_token_is_judged_at_the_sites_home_or_without_one_at_the_host_itself(site, policy, host, expected):
    assert token_page(site, host, 443, policy) == expected


def test_a_401_on_a_host_the_home_does_not_speak_for_is_confirmed_at_the_home():
    sent = Sent("GET", "t7.atlassian.net", 443, "/rest/api/3/myself")
    assert read_answer(401, {}, sent, HOMED, HOMED_POLICY) == Reading(
        TokenVerdict.CONFIRM, "HTTP 401", MYSELF, own=False
    ), "even another tenant's own identity page is only confirmed: the home decides"
    at_home = Sent("GET", ACME, 443, "/rest/api/3/issue/OPS-1")
    assert read_answer(401, {}, at_home, HOMED, HOMED_POLICY) == Reading(TokenVerdict.CONFIRM, "HTTP 401", MYSELF)


MINTED = Site("bot", (HostPattern.parse("acme.atlassian.net"),), "", Scheme.CLIENT_CREDENTIALS)
MCP = Site("mcp", (HostPattern.parse("mcp.atlassian.com"),), "me@example.test")
ON_GATEWAY = Sent("POST", "api.atlassian.com", 443, "/ex/jira/c1/rest/api/3/issue")


@pytest.mark.parametrize(
    ("status", "fields", "sent", "site", "expected"),
    [
        (401, {}, ON_GATEWAY, MINTED, TokenVerdict.RENEW),
        (401, {"x-failure-category": "FAILURE_CLIENT_SCOPE_CHECK"}, ON_GATEWAY, MINTED, TokenVerdict.SCOPE_MISS),
        (200, SERAPH, ON_GATEWAY, MINTED, TokenVerdict.UNJUDGED),
        (200, {}, ON_GATEWAY, MINTED, TokenVerdict.PASS),
        (401, {}, Sent("POST", "mcp.atlassian.com", 443, "/v1/mcp"), MCP, TokenVerdict.UNJUDGED),
        (401, {}, Sent("GET", "mcp.atlassian.com", 443, "/rest/api/3/myself"), MCP, TokenVerdict.UNJUDGED),
        (200, {}, Sent("POST", "mcp.atlassian.com", 443, "/v1/mcp"), MCP, TokenVerdict.PASS),
    ],
)
def test_a_minted_token_is_renewed_and_the_mcp_server_is_never_confirmed(status, fields, sent, site, expected):
    policy = Policy(SiteTable.of([MINTED, MCP]), Gateway())
    reading = read_answer(status, fields, sent, site, policy)
    assert reading.verdict is expected
    assert reading.page is None, "no identity page is asked"

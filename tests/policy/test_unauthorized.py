"""Which answers are against the token, where to confirm them, what confirms them, query logins, renamed sites,
and expiry dates."""

from __future__ import annotations

from typing import Any

import pytest

from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.layouts import Product, declared
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.token_health import Scope
from proxy_addon.policy.unauthorized import (
    AnswerKind,
    IdentityPage,
    OncePer,
    PageAnswer,
    check_page,
    classify,
    confirmed,
    identity_page,
    own_identity_page,
    query_login,
    read_identity_page,
    renamed_to,
)

SCOPE = {"x-failure-category": "FAILURE_CLIENT_SCOPE_CHECK"}


SERAPH_FAILED = {"x-seraph-loginreason": "AUTHENTICATED_FAILED"}


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (401, SCOPE, AnswerKind.SCOPE_MISS),
        (401, {}, AnswerKind.AGAINST),
        (401, SERAPH_FAILED, AnswerKind.AGAINST),
        (200, {"x-seraph-loginreason": "AUTHENTICATION_DENIED"}, AnswerKind.AGAINST),
        (403, {}, None),
        (200, {}, None),
    ],
)
def test_no_answer_to_a_request_is_a_verdict_on_the_token_only_against_it(status, headers, expected):
    """A failed login (Seraph's header) is against the token like a 401, no more: a client may have logged in itself."""
    assert classify(status, headers) is expected


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, {}, PageAnswer.ACCEPTED),
        (204, {}, PageAnswer.ACCEPTED),
        (401, SCOPE, PageAnswer.ACCEPTED),
        (401, {}, PageAnswer.REJECTED),
        (200, SERAPH_FAILED, PageAnswer.REJECTED),
        (403, {"x-seraph-loginreason": "AUTHENTICATION_DENIED"}, PageAnswer.REJECTED),
        (404, {}, PageAnswer.UNKNOWN),
        (302, {}, PageAnswer.UNKNOWN),
        (403, {}, PageAnswer.UNKNOWN),
        (500, {}, PageAnswer.UNKNOWN),
        (503, {}, PageAnswer.UNKNOWN),
    ],
)
def test_only_a_2xx_from_the_identity_page_accepts_the_token(status, headers, expected):
    assert read_identity_page(status, headers)[0] is expected


@pytest.mark.parametrize(
    ("answer", "own", "expected"),
    [
        (PageAnswer.REJECTED, True, Scope.SITE),
        (PageAnswer.REJECTED, False, Scope.SITE),
        (PageAnswer.UNKNOWN, True, Scope.SITE),
        (PageAnswer.UNKNOWN, False, Scope.SITE),
        (PageAnswer.ACCEPTED, True, None),
        (PageAnswer.ACCEPTED, False, Scope.HOST),
    ],
)
def test_a_confirmed_rejection_pauses_the_site_and_a_host_the_home_contradicts_pauses_alone(answer, own, expected):
    assert confirmed(answer, own) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/rest/api/2/myself?os_username=nobody&os_password=x", "os_username"),
        ("/rest/api/2/myself?expand=groups&OS_PASSWORD=x", "os_password"),
        ("/rest/api/2/myself?os_authType=basic", "os_authtype"),
        ("/rest/api/2/myself?Os_Cookie=1", "os_cookie"),
        ("/rest/api/2/myself?%6Fs_username=nobody", "os_username"),
        ("/rest/api/2/myself?os%5Fpassword=x", "os_password"),
        ("/rest/api/2/myself?os_username", "os_username"),
        ("/rest/api/2/search?jql=os_username%3Dx", None),
        ("/rest/api/2/myself?os_usernames=x", None),
        ("/rest/api/2/myself", None),
        ("/os_username/rest?x=1", None),
    ],
)
def test_a_login_in_the_query_is_found_in_any_case_and_encoding(path, expected):
    assert query_login(path) == expected


def site(name: str, *hosts: str, **options: Any) -> Site:
    return Site(name, tuple(HostPattern.parse(h) for h in hosts), "me@example.test", **options)


CLOUD = site("cloud", "*.atlassian.net")
SCOPED = site("scoped", "scoped.atlassian.net", scoped=True)
GIT = site("git", "bitbucket.org")
BITBUCKET = site("bitbucket", "api.bitbucket.org")
BOTH = site("both", "bitbucket.org", "api.bitbucket.org")
DATA_CENTER = site("dc", "jira.corp.example:8443", scheme=Scheme.BEARER)
JIRA_AT_JIRA = site("jira", "tracker.corp.example", scheme=Scheme.BEARER, layout=declared(Product.JIRA, "/jira"))
JIRA_AT_ROOT = site("jira-root", "jira.corp.example", scheme=Scheme.BEARER, layout=declared(Product.JIRA, "/"))
WIKI = site("wiki", "wiki.corp.example", scheme=Scheme.BEARER, layout=declared(Product.CONFLUENCE, "/confluence"))
WIKI_BASIC = site("wiki-basic", "docs.corp.example", layout=declared(Product.CONFLUENCE, "/"))


@pytest.mark.parametrize(
    ("entry", "host", "port", "cloud_id", "expected"),
    [
        (CLOUD, "acme.atlassian.net", 443, None, IdentityPage("acme.atlassian.net", 443, "/rest/api/3/myself")),
        (
            CLOUD,
            "api.atlassian.com",
            443,
            "c1",
            IdentityPage("api.atlassian.com", 443, "/ex/jira/c1/rest/api/3/myself"),
        ),
        (CLOUD, "bitbucket.org", 443, None, IdentityPage("api.bitbucket.org", 443, "/2.0/user")),
        (CLOUD, "api.bitbucket.org", 443, None, IdentityPage("api.bitbucket.org", 443, "/2.0/user")),
        (DATA_CENTER, "jira.corp.example", 8443, None, IdentityPage("jira.corp.example", 8443, "/rest/api/2/myself")),
        (
            JIRA_AT_JIRA,
            "tracker.corp.example",
            443,
            None,
            IdentityPage("tracker.corp.example", 443, "/jira/rest/api/2/myself"),
        ),
        (JIRA_AT_ROOT, "jira.corp.example", 443, None, IdentityPage("jira.corp.example", 443, "/rest/api/2/myself")),
        (
            WIKI,
            "wiki.corp.example",
            443,
            None,
            IdentityPage("wiki.corp.example", 443, "/confluence/rest/api/user/current"),
        ),
        (WIKI_BASIC, "docs.corp.example", 443, None, IdentityPage("docs.corp.example", 443, "/rest/api/user/current")),
    ],
    ids=["cloud", "gateway", "git", "bitbucket", "dc-undeclared", "jira-at-jira", "jira-at-root", "wiki", "wiki-basic"],
)
def test_the_identity_page_follows_the_sites_declared_layout(entry, host, port, cloud_id, expected):
    assert identity_page(entry, host, port, cloud_id) == expected


@pytest.mark.parametrize(
    ("entry", "others", "host", "port", "expected"),
    [
        (CLOUD, (), "acme.atlassian.net", 443, IdentityPage("acme.atlassian.net", 443, "/rest/api/3/myself")),
        (
            SCOPED,
            (),
            "scoped.atlassian.net",
            443,
            IdentityPage("api.atlassian.com", 443, "/ex/jira/c1/rest/api/3/myself"),
        ),
        (SCOPED, (), "api.atlassian.com", 443, IdentityPage("api.atlassian.com", 443, "/ex/jira/c1/rest/api/3/myself")),
        (BOTH, (), "bitbucket.org", 443, IdentityPage("api.bitbucket.org", 443, "/2.0/user")),
        (GIT, (BITBUCKET,), "bitbucket.org", 443, None),
        (GIT, (), "bitbucket.org", 443, None),
        (DATA_CENTER, (), "jira.corp.example", 8443, IdentityPage("jira.corp.example", 8443, "/rest/api/2/myself")),
    ],
    ids=["cloud", "scoped", "gateway", "bitbucket-one-site", "git-host-beside-api-site", "git-host-alone", "dc"],
)
def test_the_check_after_a_pause_goes_only_to_the_sites_own_identity_page(entry, others, host, port, expected):
    gateway = Gateway()
    gateway.add(SCOPED, "c1")
    table = SiteTable.of([entry, *others])
    assert check_page(entry, host, port, table, gateway) == expected


def test_a_401_from_the_gateway_is_confirmed_there_and_one_from_another_sites_page_never():
    gateway = Gateway()
    gateway.add(SCOPED, "c1")
    table = SiteTable.of([SCOPED, GIT, BITBUCKET])
    page = own_identity_page(SCOPED, "api.atlassian.com", 443, table, gateway)
    assert page == IdentityPage("api.atlassian.com", 443, "/ex/jira/c1/rest/api/3/myself")
    assert own_identity_page(GIT, "bitbucket.org", 443, table, gateway) is None
    assert own_identity_page(BITBUCKET, "api.bitbucket.org", 443, table, gateway) == IdentityPage(
        "api.bitbucket.org", 443, "/2.0/user"
    )


def test_once_per_key_and_bounded():
    once = OncePer(limit=2)
    assert once.first("scope", "acme", "/a")
    assert not once.first("scope", "acme", "/a")
    assert once.first("scope", "acme", "/b")
    assert not once.first("scope", "acme", "/c"), "past the bound nothing more is logged"


@pytest.mark.parametrize(
    ("status", "location", "expected"),
    [
        (301, "https://new-acme.atlassian.net/browse/X-1", "new-acme.atlassian.net"),
        (308, "https://NEW-ACME.atlassian.net./x", "new-acme.atlassian.net"),
        (302, "https://acme.atlassian.net/login", None),
        (302, "/relative/path", None),
        (302, "https://id.atlassian.com/login", None),
        (302, "https://evilatlassian.net/", None),
        (200, "https://new-acme.atlassian.net/", None),
        (301, None, None),
        (301, "https://[broken/", None),
    ],
)
def test_renamed_to(status, location, expected):
    assert renamed_to(status, location, "acme.atlassian.net") == expected

"""Which 401s say the token is bad, where to confirm the others, renamed sites, and expiry dates."""

from __future__ import annotations

from typing import Any

import pytest

from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.unauthorized import (
    AnswerKind,
    IdentityPage,
    OncePer,
    check_page,
    classify,
    identity_page,
    own_identity_page,
    renamed_to,
)

SCOPE = {"x-failure-category": "FAILURE_CLIENT_SCOPE_CHECK"}


@pytest.mark.parametrize(
    ("status", "headers", "from_page", "expected"),
    [
        (401, SCOPE, False, AnswerKind.SCOPE_MISS),
        (401, SCOPE, True, AnswerKind.SCOPE_MISS),
        (401, {}, False, AnswerKind.AMBIGUOUS),
        (401, {}, True, AnswerKind.REJECTED),
        (401, {"x-seraph-loginreason": "AUTHENTICATED_FAILED"}, False, AnswerKind.REJECTED),
        (200, {"x-seraph-loginreason": "AUTHENTICATION_DENIED"}, False, AnswerKind.REJECTED),
        (403, {}, False, None),
        (200, {}, True, None),
    ],
)
def test_classify(status, headers, from_page, expected):
    assert classify(status, headers, from_page) is expected


@pytest.mark.parametrize(
    ("host", "port", "bearer", "cloud_id", "expected"),
    [
        ("acme.atlassian.net", 443, False, None, IdentityPage("acme.atlassian.net", 443, "/rest/api/3/myself")),
        (
            "api.atlassian.com",
            443,
            False,
            "c1",
            IdentityPage("api.atlassian.com", 443, "/ex/jira/c1/rest/api/3/myself"),
        ),
        ("bitbucket.org", 443, False, None, IdentityPage("api.bitbucket.org", 443, "/2.0/user")),
        ("api.bitbucket.org", 443, False, None, IdentityPage("api.bitbucket.org", 443, "/2.0/user")),
        ("jira.corp.example", 8443, True, None, IdentityPage("jira.corp.example", 8443, "/rest/api/2/myself")),
    ],
)
def test_identity_page(host, port, bearer, cloud_id, expected):
    assert identity_page(host, port, bearer, cloud_id) == expected


def site(name: str, *hosts: str, **options: Any) -> Site:
    return Site(name, tuple(HostPattern.parse(h) for h in hosts), "me@example.test", **options)


CLOUD = site("cloud", "*.atlassian.net")
SCOPED = site("scoped", "scoped.atlassian.net", scoped=True)
GIT = site("git", "bitbucket.org")
BITBUCKET = site("bitbucket", "api.bitbucket.org")
BOTH = site("both", "bitbucket.org", "api.bitbucket.org")
DATA_CENTER = site("dc", "jira.corp.example:8443", scheme=Scheme.BEARER)


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

"""Which 401s say the token is bad, where to confirm the others, renamed sites, and expiry dates."""

from __future__ import annotations

import datetime as dt

import pytest

from proxy_addon.policy.expiry import days_left, due_soon, expired, expiry_timestamp
from proxy_addon.policy.unauthorized import (
    Confirmations,
    IdentityPage,
    Kind,
    OncePer,
    classify,
    identity_page,
    renamed_to,
)

SCOPE = {"x-failure-category": "FAILURE_CLIENT_SCOPE_CHECK"}


@pytest.mark.parametrize(
    ("status", "headers", "from_page", "expected"),
    [
        (401, SCOPE, False, Kind.SCOPE_MISS),
        (401, SCOPE, True, Kind.SCOPE_MISS),
        (401, {}, False, Kind.AMBIGUOUS),
        (401, {}, True, Kind.REJECTED),
        (401, {"x-seraph-loginreason": "AUTHENTICATED_FAILED"}, False, Kind.REJECTED),
        (200, {"x-seraph-loginreason": "AUTHENTICATION_DENIED"}, False, Kind.REJECTED),
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


def test_one_confirmation_per_site_and_host():
    confirmations = Confirmations()
    assert confirmations.start("acme", "acme.atlassian.net")
    assert not confirmations.start("acme", "acme.atlassian.net")
    assert confirmations.start("globex", "acme.atlassian.net"), "another site's confirmation is its own"
    confirmations.finish("acme", "acme.atlassian.net")
    assert confirmations.start("acme", "acme.atlassian.net")


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

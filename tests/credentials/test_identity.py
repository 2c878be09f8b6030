"""Asking a site whose credentials these are, and a Cloud site's cloudId, through the proxy's own client."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from proxy_addon.credentials import identity
from proxy_addon.credentials.http_client import Reach, Unreachable
from proxy_addon.credentials.identity import CheckTarget, ask_myself, check_target, cloud_id, identity_path
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.layouts import Layout, Product, declared
from proxy_addon.policy.sites import Scheme, Site
from proxy_addon.settings.names import SettingsError


def site(*patterns: str, scheme: Scheme = Scheme.BASIC, layout: Layout | None = None) -> Site:
    return Site("s", tuple(HostPattern.parse(p) for p in patterns), "me@example.test", scheme=scheme, layout=layout)


def test_each_host_has_its_identity_page_in_its_sites_layout():
    assert identity_path(site("*.atlassian.net"), "acme.atlassian.net", 443) == "/rest/api/3/myself"
    assert identity_path(site("jira.corp.example", scheme=Scheme.BEARER), "jira.corp.example", 443) == (
        "/rest/api/2/myself"
    )
    tracker = site("tracker.corp.example", scheme=Scheme.BEARER, layout=declared(Product.JIRA, "/jira"))
    assert identity_path(tracker, "tracker.corp.example", 443) == "/jira/rest/api/2/myself"
    assert identity_path(site("api.bitbucket.org"), "api.bitbucket.org", 443) == "/2.0/user"
    assert identity_path(site("bitbucket.org"), "bitbucket.org", 443) is None, "its page is on api.bitbucket.org"


def test_the_check_goes_to_the_chosen_site_or_the_only_exact_host():
    assert check_target(site("*.atlassian.net"), "acme.atlassian.net") == CheckTarget(
        "acme.atlassian.net", 443, "/rest/api/3/myself"
    )
    assert check_target(site("jira.corp.example:8443", scheme=Scheme.BEARER), None) == CheckTarget(
        "jira.corp.example", 8443, "/rest/api/2/myself"
    )
    with pytest.raises(SettingsError, match="ATLASSIAN_PROXY_SITE is not set"):
        check_target(site("*.atlassian.net"), "elsewhere.example.test")


def answering(monkeypatch, status: int, headers: dict[str, str], document: object) -> list[tuple]:
    asked: list[tuple] = []

    def fake(host, port, path, *rest):
        asked.append((host, port, path))
        return status, headers, json.dumps(document).encode()

    monkeypatch.setattr(identity, "get", fake)
    monkeypatch.setattr(identity, "fetch", fake)
    return asked


def test_the_cloud_id_comes_from_tenant_info(monkeypatch):
    asked = answering(monkeypatch, 200, {}, {"cloudId": "c0ffee00-1234"})
    assert cloud_id("acme.atlassian.net", Reach()) == "c0ffee00-1234"
    assert asked == [("acme.atlassian.net", 443, "/_edge/tenant_info")]
    answering(monkeypatch, 200, {}, {"cloudId": "../x"})
    with pytest.raises(Unreachable, match="cannot look up the cloudId of acme"):
        cloud_id("acme.atlassian.net", Reach())


def test_the_answer_says_whose_credentials_or_why_they_were_rejected(monkeypatch):
    credentials = Credentials.of("me@example.test", SecretStr("t0ken"), "test")
    answering(monkeypatch, 200, {}, {"displayName": "Me", "accountId": "a-1"})
    answer = ask_myself("acme.atlassian.net", credentials, Reach())
    assert (answer.status, answer.rejection, answer.display_name, answer.account_id) == (200, None, "Me", "a-1")
    answering(monkeypatch, 401, {}, {"displayName": "Not read"})
    answer = ask_myself("acme.atlassian.net", credentials, Reach())
    assert (answer.status, answer.rejection, answer.display_name) == (401, "HTTP 401", None)

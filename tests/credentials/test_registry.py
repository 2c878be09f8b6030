"""Each site's current credentials, and a new token making token health forget the previous one's verdicts."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import TokenHealth

SITE = Site("acme", (HostPattern.parse("acme.atlassian.net"),), "me@example.test")


def credentials(token: str) -> Credentials:
    return Credentials.of(SITE.user, SecretStr(token), "test")


def test_a_site_and_its_credentials_are_found_by_name():
    registry = CredentialRegistry(TokenHealth())
    assert not registry
    registry.adopt(SITE, credentials("first-t0ken"))
    assert registry
    assert registry.site("acme") is SITE
    assert registry["acme"] == credentials("first-t0ken")


def test_a_new_token_ends_the_pause_of_the_previous_one():
    health = TokenHealth()
    registry = CredentialRegistry(health)
    registry.adopt(SITE, credentials("first-t0ken"))
    health.judge("acme", "acme.atlassian.net", health.stamp(), "HTTP 401", time.monotonic())
    assert health.admit("acme", "acme.atlassian.net", time.monotonic()) is not None
    registry.adopt(SITE, credentials("second-t0ken"))
    assert health.admit("acme", "acme.atlassian.net", time.monotonic()) is None


def test_a_client_credentials_site_counts_before_its_first_token_and_loses_it_when_forgotten():
    registry = CredentialRegistry(TokenHealth())
    registry.register(SITE)
    assert registry
    assert registry.site("acme") is SITE
    registry.adopt(SITE, credentials("minted-t0ken"))
    registry.forget("acme")
    assert registry
    with pytest.raises(KeyError):
        registry["acme"]

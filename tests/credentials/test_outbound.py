"""The proxy's own credentialed requests: nothing sent during a pause, one check after it, answers act on health.

addons/test_boundaries.py and addons/test_injector.py drive the same object through the hooks that use it.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pydantic import SecretStr

from proxy_addon.credentials import outbound as outbound_module
from proxy_addon.credentials.outbound import Outbound, Withheld
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import FIRST_PAUSE, TokenHealth

from support.prepared import prepared

ACME = "acme.atlassian.net"
SITE = Site("acme", (HostPattern.parse(ACME),), "me@example.test")
LOOKUP = "/rest/api/3/issue/20001?fields=project"


class FakeSite:
    """Stands in for `http_client.fetch`: every path answers `answers[path]`, and what was asked is kept."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.answers: dict[str, int] = {}

    def __call__(self, host, port, path, credentials, reach):
        self.asked.append(path)
        status = self.answers.get(path, 200)
        return status, {}, json.dumps({"fields": {"project": {"key": "OPS"}}} if status == 200 else {}).encode()


@pytest.fixture
def site(monkeypatch) -> FakeSite:
    fake = FakeSite()
    monkeypatch.setattr(outbound_module, "fetch", fake)
    return fake


def outbound() -> Outbound:
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    credentials.adopt(SITE, Credentials.of(SITE.user, SecretStr("tok3n-for-outbound"), "test"))
    sent = Outbound(health, credentials)
    configured = prepared([SITE])
    sent.use(configured.policy, configured.reach, 1.0)
    return sent


def test_an_answer_is_read_as_a_json_object(site):
    status, document = asyncio.run(outbound().get("acme", ACME, (ACME, 443), LOOKUP))
    assert (status, document) == (200, {"fields": {"project": {"key": "OPS"}}})
    assert site.asked == [LOOKUP]


def test_during_a_pause_nothing_is_sent(site):
    sent = outbound()
    sent.health.judge("acme", ACME, sent.health.stamp(), "HTTP 401", time.monotonic())
    with pytest.raises(Withheld) as withheld:
        asyncio.run(sent.get("acme", ACME, (ACME, 443), LOOKUP))
    assert withheld.value.retry_after == round(FIRST_PAUSE)
    assert site.asked == []


def test_a_rejection_confirmed_by_the_identity_page_pauses_and_withholds_this_answer(site):
    site.answers = {LOOKUP: 401, "/rest/api/3/myself": 401}
    sent = outbound()
    with pytest.raises(Withheld):
        asyncio.run(sent.get("acme", ACME, (ACME, 443), LOOKUP))
    assert site.asked == [LOOKUP, "/rest/api/3/myself"], "the ambiguous 401 was confirmed once"
    assert sent.health.admit("acme", ACME, time.monotonic()) is not None


def test_after_a_pause_the_one_check_decides_before_anything_else_goes(site):
    sent = outbound()
    sent.health.judge("acme", ACME, sent.health.stamp(), "HTTP 401", time.monotonic() - FIRST_PAUSE - 0.1)

    async def together() -> list[int | None]:
        return await asyncio.gather(*(sent.ready("acme", ACME, 443) for _ in range(3)))

    assert asyncio.run(together()) == [None, None, None]
    assert site.asked == ["/rest/api/3/myself"]

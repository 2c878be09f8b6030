"""The proxy's own credentialed requests: nothing sent during a pause, one check after it, answers act on health.

addons/test_boundaries.py and addons/test_injector.py drive the same object through the hooks that use it.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from pydantic import SecretStr

from proxy_addon.credentials import minted as minted_module
from proxy_addon.credentials import outbound as outbound_module
from proxy_addon.credentials.http_client import Exchanged
from proxy_addon.credentials.minted import Minted
from proxy_addon.credentials.outbound import Outbound, Withheld
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import CLIENT_SECRET, ClientSecret, Credentials, NamedEnvToken, Resolved
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.scoped import GATEWAY
from proxy_addon.policy.sites import Scheme, Site
from proxy_addon.policy.token_health import FIRST_PAUSE, TokenHealth
from proxy_addon.policy.token_verdict import Reading, Sent, TokenVerdict

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


BOT = Site("bot", (HostPattern.parse("bot.atlassian.net"),), "", Scheme.CLIENT_CREDENTIALS)


def minted_outbound(monkeypatch) -> tuple[Outbound, list[int]]:
    """An Outbound with the client-credentials site `bot`, whose endpoint (a fake) mints `Bearer minted-<n>`."""
    calls: list[int] = []

    def mint(client, reach):
        calls.append(1)
        return Minted(SecretStr(f"Bearer minted-{len(calls)}"), 3600)

    monkeypatch.setattr(minted_module, "mint", mint)
    health = TokenHealth()
    sent = Outbound(health, CredentialRegistry(health))
    configured = prepared([BOT])
    client = ClientSecret("sa-client", SecretStr("the-Client-secret"))
    sent.use(configured.policy, configured.reach, 1.0)
    sent.mints.use([Resolved(BOT, NamedEnvToken("BOT_SECRET", CLIENT_SECRET), None, client)], configured.reach, 1.0)
    return sent, calls


def test_a_lookup_for_a_client_credentials_site_waits_for_its_first_token(site, monkeypatch):
    sent, calls = minted_outbound(monkeypatch)
    assert asyncio.run(sent.get("bot", GATEWAY, (GATEWAY, 443), LOOKUP))[0] == 200
    assert calls == [1]
    assert sent.credentials["bot"].authorization.get_secret_value() == "Bearer minted-1"


def test_a_minted_tokens_401_mints_again_and_never_pauses_nor_confirms(site, monkeypatch):
    sent, calls = minted_outbound(monkeypatch)

    async def scenario() -> None:
        await sent.mints.fresh("bot")
        stamp = sent.health.stamp()
        reading = Reading(TokenVerdict.RENEW)
        sent.act("bot", "bot.atlassian.net", stamp, reading, Sent("POST", GATEWAY, 443, "/ex/jira/c1/rest/api/3/issue"))
        assert await sent.mints.renewed("bot", stamp)
        sent.act("bot", GATEWAY, sent.health.stamp(), Reading(TokenVerdict.UNJUDGED), Sent("GET", GATEWAY, 443, "/x"))

    asyncio.run(scenario())
    assert calls == [1, 1]
    assert not sent.health.backing_off
    assert site.asked == [], "no identity page asked"


def test_a_request_sent_again_carries_the_current_token_and_a_too_large_answer_is_none(monkeypatch):
    sent, _ = minted_outbound(monkeypatch)
    seen: list[tuple] = []

    def exchange(host, port, method, path, headers, body, reach, limit):
        seen.append((host, method, path, headers, body, limit))
        return Exchanged(200, "OK", [("Content-Type", "application/json")], b"{}", complete=path != "/big")

    monkeypatch.setattr(outbound_module, "exchange", exchange)
    asyncio.run(sent.mints.fresh("bot"))
    answer = asyncio.run(
        sent.replay("bot", "bot.atlassian.net", "GET", (GATEWAY, 443), "/small", [("Accept", "application/json")], None)
    )
    assert answer is not None
    assert answer.status == 200
    assert seen[0][3] == [("Accept", "application/json"), ("Authorization", "Bearer minted-1")]
    assert asyncio.run(sent.replay("bot", "bot.atlassian.net", "GET", (GATEWAY, 443), "/big", [], None)) is None


def test_a_request_sent_again_obeys_rate_limit_holds_and_its_429_starts_one(monkeypatch):
    sent, _ = minted_outbound(monkeypatch)
    seen: list[str] = []

    def exchange(host, port, method, path, headers, body, reach, limit):
        seen.append(path)
        return Exchanged(429, "Too Many Requests", [("Retry-After", "60")], b"", complete=True)

    monkeypatch.setattr(outbound_module, "exchange", exchange)
    asyncio.run(sent.mints.fresh("bot"))
    path = "/ex/jira/c1/rest/api/3/issue/OPS-1"
    answer = asyncio.run(sent.replay("bot", "bot.atlassian.net", "GET", (GATEWAY, 443), path, [], None))
    assert answer is not None
    assert answer.status == 429, "the site's 429 goes to the client"
    held = sent.holds.check("bot", "bot.atlassian.net", "GET", path)
    assert held is not None
    assert held.retry_after >= 59
    assert asyncio.run(sent.replay("bot", "bot.atlassian.net", "GET", (GATEWAY, 443), path, [], None)) is None
    assert seen == [path], "a held request is not sent again"

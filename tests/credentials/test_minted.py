"""Service accounts' access tokens: what the token endpoint's answer becomes, and when the proxy mints.

The endpoint itself is a fake here (`minted.mint` replaced); tests/e2e/test_service_accounts.py
runs the same code against a TLS stand-in that behaves like Atlassian's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from urllib.parse import parse_qs

import pytest
from pydantic import SecretStr

from proxy_addon.credentials import minted as minted_module
from proxy_addon.credentials.minted import (
    DEFAULT_LIFETIME,
    RENEW_AFTER_401_SECONDS,
    TOKEN_HOST,
    TOKEN_PATH,
    Minted,
    MintFailed,
    MintLimited,
    MintRejected,
    Mints,
    read_token_answer,
    renew_margin,
    send_margin,
    token_request_body,
)
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import CLIENT_SECRET, ClientSecret, NamedEnvToken, Resolved
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.sites import Scheme, Site
from proxy_addon.policy.token_health import TokenHealth

SITE = Site("bot", (HostPattern.parse("acme.atlassian.net"),), "", Scheme.CLIENT_CREDENTIALS)
CLIENT = ClientSecret("sa-client", SecretStr("the-Client-secret-0123"))
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib3QifQ.c2lnbmF0dXJl"


def answer(status: int, **document: object) -> tuple[int, bytes]:
    return status, json.dumps(document).encode()


def test_the_answer_becomes_a_bearer_value_and_its_lifetime_at_once():
    got = read_token_answer(*answer(200, access_token=TOKEN, expires_in=3599, token_type="Bearer"))
    assert got.authorization.get_secret_value() == f"Bearer {TOKEN}"
    assert got.lifetime == 3599
    assert TOKEN not in repr(got)
    assert TOKEN not in str(got)


@pytest.mark.parametrize(
    ("document", "lifetime"),
    [({}, DEFAULT_LIFETIME), ({"expires_in": "3600"}, DEFAULT_LIFETIME), ({"expires_in": True}, DEFAULT_LIFETIME)],
)
def test_an_answer_without_a_usable_lifetime_is_taken_for_an_hour(document, lifetime):
    assert read_token_answer(*answer(200, access_token=TOKEN, **document)).lifetime == lifetime


@pytest.mark.parametrize("expires_in", [0, -5, 0.01, 9.9])
def test_a_token_too_short_to_send_is_a_failure_not_a_mint_per_request(expires_in):
    """Renewed as soon as it is minted, such a token made every request mint another (at most one per 5 s now)."""
    with pytest.raises(MintFailed) as raised:
        read_token_answer(*answer(200, access_token=TOKEN, expires_in=expires_in))
    assert raised.value.why == f"the access token it answered lasts {expires_in:g} s, less than the 10 s it needs"
    assert not isinstance(raised.value, MintRejected)
    assert read_token_answer(*answer(200, access_token=TOKEN, expires_in=10)).lifetime == 10


@pytest.mark.parametrize(
    ("status", "document", "rejected", "why"),
    [
        (401, {"error": "invalid_client", "error_description": "Unauthorized"}, True, "HTTP 401 invalid_client"),
        (401, {}, True, "HTTP 401"),
        (400, {"error": "invalid_client"}, True, "HTTP 400 invalid_client"),
        (403, {"error": "unauthorized_client"}, True, "HTTP 403 unauthorized_client"),
        (400, {"error": "unsupported_grant_type"}, False, "HTTP 400 unsupported_grant_type"),
        (400, {"error": "Something <b>odd</b> the endpoint said"}, False, "HTTP 400"),
        (503, {}, False, "HTTP 503"),
        (200, {"token_type": "Bearer"}, False, "the answer holds no Bearer access token"),
        (200, {"access_token": TOKEN, "token_type": "mac"}, False, "the answer holds no Bearer access token"),
        (200, {"access_token": "has space"}, False, "the access token it answered has characters no token has"),
    ],
)
def test_a_refused_or_odd_answer_is_a_rejection_or_a_failure_saying_why(status, document, rejected, why):
    with pytest.raises(MintFailed) as raised:
        read_token_answer(*answer(status, **document))
    assert isinstance(raised.value, MintRejected) is rejected
    assert raised.value.why == why


def test_the_secret_is_only_in_the_form_body():
    form = parse_qs(token_request_body(CLIENT).decode())
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["sa-client"],
        "client_secret": ["the-Client-secret-0123"],
    }
    assert "the-Client-secret-0123" not in repr(CLIENT)


def test_renewal_is_due_a_fifth_before_the_end_and_at_most_five_minutes_before():
    assert renew_margin(3600) == 300
    assert renew_margin(10) == 2
    assert send_margin(3600) == 30
    assert send_margin(10) == 1


class Endpoint:
    """Stands in for `minted.mint`: counts the calls, answers what it is told, may hold each answer."""

    def __init__(self) -> None:
        self.calls = 0
        self.secrets: list[str] = []
        self.outcome: Minted | Exception = Minted(SecretStr(f"Bearer {TOKEN}"), 3600)
        self.release = threading.Event()
        self.release.set()

    def __call__(self, client, reach):
        self.calls += 1
        self.secrets.append(client.secret.get_secret_value())
        self.release.wait(5)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.fixture
def endpoint(monkeypatch) -> Endpoint:
    fake = Endpoint()
    monkeypatch.setattr(minted_module, "mint", fake)
    return fake


def mints(client: ClientSecret = CLIENT) -> Mints:
    health = TokenHealth()
    made = Mints(health, CredentialRegistry(health))
    made.use([Resolved(SITE, NamedEnvToken("BOT_SECRET", CLIENT_SECRET), None, client)], made.reach, 5.0)
    return made


def test_the_first_request_mints_and_the_token_goes_to_the_registry(endpoint):
    made = mints()
    assert made.due("bot", time.monotonic())
    assert not made.due("another-site", time.monotonic())
    assert made.credentials, "the site counts as configured before its first token"
    asyncio.run(made.fresh("bot"))
    assert made.credentials["bot"].authorization.get_secret_value() == f"Bearer {TOKEN}"
    assert not made.due("bot", time.monotonic())
    asyncio.run(made.fresh("bot"))
    assert endpoint.calls == 1


def test_sixteen_requests_at_once_wait_for_one_mint(endpoint):
    made = mints()
    endpoint.release.clear()

    async def sixteen() -> None:
        waiting = [asyncio.ensure_future(made.fresh("bot")) for _ in range(16)]
        await asyncio.sleep(0.05)
        endpoint.release.set()
        await asyncio.gather(*waiting)

    asyncio.run(sixteen())
    assert endpoint.calls == 1


def test_a_token_is_minted_again_once_its_renewal_is_due_and_never_sent_near_its_end(endpoint):
    made = mints()
    endpoint.outcome = Minted(SecretStr("Bearer first"), 10)
    before = time.monotonic()
    asyncio.run(made.fresh("bot"))
    state = made._mints["bot"]
    assert before + 10 - 2 <= state.renew_at + 0.5
    assert state.renew_at < state.usable_until < before + 10
    state.renew_at = 0.0
    endpoint.outcome = Minted(SecretStr("Bearer second"), 10)
    asyncio.run(renewed_in_background(made))
    assert made.credentials["bot"].authorization.get_secret_value() == "Bearer second"
    assert endpoint.calls == 2


async def renewed_in_background(made: Mints) -> None:
    """A request while the renewal is due and the token still good: it goes on, the mint runs behind it."""
    await made.fresh("bot")
    task = made._mints["bot"].task
    assert task is not None
    await task


def test_a_request_with_a_token_still_good_does_not_wait_for_its_renewal(endpoint):
    made = mints()
    asyncio.run(made.fresh("bot"))
    made._mints["bot"].renew_at = 0.0
    endpoint.release.clear()
    endpoint.outcome = Minted(SecretStr("Bearer second"), 3600)

    async def scenario() -> str:
        began = time.monotonic()
        await made.fresh("bot")
        assert time.monotonic() - began < 1, "no wait for a token endpoint that has not answered"
        sent = made.credentials["bot"].authorization.get_secret_value()
        endpoint.release.set()
        task = made._mints["bot"].task
        assert task is not None
        await task
        return sent

    assert asyncio.run(scenario()) == f"Bearer {TOKEN}"
    assert made.credentials["bot"].authorization.get_secret_value() == "Bearer second"
    assert endpoint.calls == 2


def test_a_failed_mint_keeps_a_token_that_is_still_good_and_refuses_without_one(endpoint, caplog):
    made = mints()
    asyncio.run(made.fresh("bot"))
    made._mints["bot"].renew_at = 0.0
    endpoint.outcome = MintFailed("cannot reach auth.atlassian.com: connection refused")
    asyncio.run(renewed_in_background(made))
    assert made.credentials["bot"].authorization.get_secret_value() == f"Bearer {TOKEN}"
    made._mints["bot"].usable_until = 0.0
    with caplog.at_level(logging.WARNING), pytest.raises(MintFailed) as raised:
        asyncio.run(made.fresh("bot"))
    assert raised.value.why == "cannot reach auth.atlassian.com: connection refused"
    assert endpoint.calls == 2, "asked again only after FAILED_RETRY_SECONDS"


def test_a_rejected_secret_is_logged_once_and_asked_again_only_after_30_s_or_a_new_secret(endpoint, caplog):
    made = mints()
    endpoint.outcome = MintRejected("HTTP 401 invalid_client", 30)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            with pytest.raises(MintRejected) as raised:
                asyncio.run(made.fresh("bot"))
    assert raised.value.why == "HTTP 401 invalid_client"
    assert 29 <= raised.value.retry_after <= 30
    assert endpoint.calls == 1
    lines = [r.getMessage() for r in caplog.records if "rejected the client credentials" in r.getMessage()]
    assert len(lines) == 1
    assert "client_id sa-client" in lines[0]
    assert "the-Client-secret-0123" not in caplog.text
    assert made.rejected() == ["bot"]
    assert not made.new_secret("bot", SecretStr("the-Client-secret-0123")), "the same secret changes nothing"
    assert made.new_secret("bot", SecretStr("a-New-secret-4567"))
    endpoint.outcome = Minted(SecretStr(f"Bearer {TOKEN}"), 3600)
    with caplog.at_level(logging.INFO):
        asyncio.run(made.fresh("bot"))
    assert endpoint.secrets[-1] == "a-New-secret-4567"
    assert made.rejected() == []
    assert "minted an access token again" in caplog.text


def test_a_401_to_the_current_token_mints_once_and_a_stale_one_changes_nothing(endpoint):
    made = mints()
    health = made.health

    async def scenario() -> tuple[bool, bool]:
        await made.fresh("bot")
        sent_at = health.stamp()
        endpoint.outcome = Minted(SecretStr("Bearer renewed"), 3600)
        made.renew("bot", sent_at)
        renewed = await made.renewed("bot", sent_at)
        made.renew("bot", sent_at)  # a 401 to the token it replaced
        await asyncio.sleep(0)
        return renewed, made.due("bot", time.monotonic())

    renewed, due = asyncio.run(scenario())
    assert renewed
    assert not due
    assert endpoint.calls == 2
    assert made.credentials["bot"].authorization.get_secret_value() == "Bearer renewed"


def test_after_a_401_mint_another_401_within_30_s_mints_nothing(endpoint):
    made = mints()

    async def scenario() -> bool:
        await made.fresh("bot")
        made.renew("bot", made.health.stamp())
        await made.renewed("bot", 0)
        made.renew("bot", made.health.stamp())
        return await made.renewed("bot", made.health.stamp())

    assert not asyncio.run(scenario()), "the new token was refused too: the account, not the token"
    assert endpoint.calls == 2
    assert RENEW_AFTER_401_SECONDS == 30


def test_a_configuration_keeps_the_token_of_an_unchanged_client_only(endpoint):
    made = mints()
    asyncio.run(made.fresh("bot"))
    made.use([Resolved(SITE, NamedEnvToken("BOT_SECRET", CLIENT_SECRET), None, CLIENT)], made.reach, 5.0)
    assert made.credentials["bot"].authorization.get_secret_value() == f"Bearer {TOKEN}"
    other = ClientSecret("sa-client", SecretStr("another-Secret-89"))
    made.use([Resolved(SITE, NamedEnvToken("BOT_SECRET", CLIENT_SECRET), None, other)], made.reach, 5.0)
    with pytest.raises(KeyError):
        made.credentials["bot"]
    assert made.due("bot", time.monotonic())


def test_a_429_from_the_token_endpoint_holds_the_sites_mints_for_its_retry_after(endpoint, caplog):
    made = mints()
    asyncio.run(made.fresh("bot"))
    made._mints["bot"].renew_at = 0.0
    endpoint.outcome = MintLimited("HTTP 429", {"retry-after": "120"})
    with caplog.at_level(logging.WARNING):
        asyncio.run(renewed_in_background(made))
        for _ in range(2):
            asyncio.run(made.fresh("bot"))
    assert made.credentials["bot"].authorization.get_secret_value() == f"Bearer {TOKEN}", "the good token goes on"
    assert endpoint.calls == 2, "no mint before the 429's Retry-After is over"
    assert made.holds.check("bot", TOKEN_HOST, "POST", TOKEN_PATH) is not None, "a hold like a site's 429"
    made._mints["bot"].usable_until = 0.0
    with pytest.raises(MintFailed) as raised:
        asyncio.run(made.fresh("bot"))
    assert 115 <= raised.value.retry_after <= 120
    assert "HTTP 429" in raised.value.why
    assert endpoint.calls == 2
    assert sum("answered 429 Too Many Requests" in r.getMessage() for r in caplog.records) == 1


def test_a_hold_on_the_token_endpoint_from_another_proxy_stops_the_mint_before_it_is_sent(endpoint):
    made = mints()
    made.holds.answered("bot", TOKEN_HOST, "POST", TOKEN_PATH, 429, {"retry-after": "30"}, time.time())
    with pytest.raises(MintFailed) as raised:
        asyncio.run(made.fresh("bot"))
    assert endpoint.calls == 0
    assert 25 <= raised.value.retry_after <= 30


def test_the_token_endpoints_429_is_read_with_its_fields():
    with pytest.raises(MintLimited) as raised:
        read_token_answer(429, b"{}", {"retry-after": "7"})
    assert raised.value.headers == {"retry-after": "7"}

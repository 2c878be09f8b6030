"""Credentials kept current without a restart: a changed token file is adopted, a broken one keeps the last token."""

from __future__ import annotations

import asyncio
import logging
import time

from pydantic import SecretStr

from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.token_watcher import CredentialWatcher, FileStamp
from proxy_addon.credentials.minted import Mints
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials, FileToken, Resolved
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import TokenHealth

from support.proxy import TOKEN_24, TOKEN_192

SITE = Site("acme", (HostPattern.parse("acme.atlassian.net"),), "me@example.test")


def watching(tmp_path) -> tuple[CredentialWatcher, CredentialRegistry, FileToken]:
    path = tmp_path / "token"
    path.write_text(TOKEN_24)
    source = FileToken(path)
    health = TokenHealth()
    registry = CredentialRegistry(health)
    first = Credentials.of(SITE.user, SecretStr(TOKEN_24), source.description)
    registry.adopt(SITE, first)
    watcher = CredentialWatcher(registry, health, Mints(health, registry))
    watcher.use(Prepared(resolved=(Resolved(SITE, source, first),)))
    return watcher, registry, source


def test_a_file_stamp_changes_when_the_file_is_replaced_and_is_none_when_it_is_gone(tmp_path):
    path = tmp_path / "token"
    path.write_text("one")
    before = FileStamp.of(path)
    path.write_text("two, longer")
    assert FileStamp.of(path) != before
    path.unlink()
    assert FileStamp.of(path) is None


def test_a_changed_token_is_adopted_and_ends_the_pause_of_the_old_one(tmp_path, caplog):
    caplog.set_level(logging.INFO, "proxy_addon")
    watcher, registry, source = watching(tmp_path)
    registry.health.judge("acme", "acme.atlassian.net", registry.health.stamp(), "HTTP 401", time.monotonic())
    source.path.write_text(TOKEN_192)
    asyncio.run(watcher.reload())
    assert registry["acme"].authorization == Credentials.of(SITE.user, SecretStr(TOKEN_192), "x").authorization
    assert registry.health.admit("acme", "acme.atlassian.net", time.monotonic()) is None
    assert f"site acme: token reloaded from file {source.path}" in caplog.text


def test_a_token_file_that_breaks_keeps_the_previous_token_and_says_why(tmp_path, caplog):
    watcher, registry, source = watching(tmp_path)
    source.path.write_text("not a token, secret-part")
    asyncio.run(watcher.reload())
    assert registry["acme"] == Credentials.of(SITE.user, SecretStr(TOKEN_24), source.description)
    assert "site acme: keeping the previous token" in caplog.text
    assert "secret-part" not in caplog.text


def test_a_changed_client_secret_goes_to_the_mints_and_the_site_may_mint_at_once(tmp_path, caplog):
    from proxy_addon.credentials.sources import CLIENT_SECRET, ClientSecret
    from proxy_addon.policy.sites import Scheme

    caplog.set_level(logging.INFO, "proxy_addon")
    bot = Site("bot", (HostPattern.parse("bot.atlassian.net"),), "", Scheme.CLIENT_CREDENTIALS)
    path = tmp_path / "client-secret"
    path.write_text("first-Client-secret")
    source = FileToken(path, "client_secret_file", CLIENT_SECRET)
    health = TokenHealth()
    registry = CredentialRegistry(health)
    mints = Mints(health, registry)
    entry = Resolved(bot, source, None, ClientSecret("sa-client", SecretStr("first-Client-secret")))
    mints.use([entry], mints.reach, 1.0)
    watcher = CredentialWatcher(registry, health, mints)
    watcher.use(Prepared(resolved=(entry,)))
    state = mints._mints["bot"]
    state.rejected, state.next_try = "HTTP 401 invalid_client", time.monotonic() + 30
    path.write_text("second-Client-secret")
    asyncio.run(watcher.reload())
    assert state.client.secret.get_secret_value() == "second-Client-secret"
    assert state.next_try == 0.0, "the next request mints with it at once"
    assert "site bot: client secret reloaded from file" in caplog.text
    assert "second-Client-secret" not in caplog.text

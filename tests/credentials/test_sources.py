"""Where each site's token comes from (environment, a variable, a file, the keyring), read and checked at once."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from proxy_addon.credentials.sources import (
    Credentials,
    EnvToken,
    FileToken,
    KeyringToken,
    NamedEnvToken,
    resolve_sites,
    single_site_source,
    sites_with_sources,
)
from proxy_addon.policy.sites import Scheme
from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import SettingsError

from support.proxy import EMAIL, TOKEN_24, basic


def test_credentials_hold_the_authorization_value_built_once():
    assert Credentials.of(EMAIL, SecretStr(TOKEN_24), "test").authorization.get_secret_value() == basic(EMAIL, TOKEN_24)
    bearer = Credentials.of(EMAIL, SecretStr(TOKEN_24), "test", Scheme.BEARER)
    assert bearer.authorization.get_secret_value() == f"Bearer {TOKEN_24}"
    assert TOKEN_24 not in repr(bearer)


def test_the_single_site_token_comes_from_the_environment_then_a_file_then_the_keyring(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN_24)
    assert isinstance(single_site_source(Settings(email=EMAIL, api_token=SecretStr(TOKEN_24))), EnvToken)
    assert isinstance(single_site_source(Settings(email=EMAIL, api_token_file=token_file)), FileToken)
    assert single_site_source(Settings(email=EMAIL)) == KeyringToken(EMAIL, False)


def test_a_token_file_is_read_again_each_time_and_a_bad_one_is_named_not_shown(tmp_path):
    path = tmp_path / "token"
    source = FileToken(path)
    path.write_text(f"{TOKEN_24}\n")
    assert source.read().get_secret_value() == TOKEN_24
    path.write_text("not a token, secret-part")
    with pytest.raises(SettingsError, match=f"ATLASSIAN_PROXY_API_TOKEN_FILE: the token in {path}") as raised:
        source.read()
    assert "secret-part" not in str(raised.value)
    path.unlink()
    with pytest.raises(SettingsError, match="cannot read"):
        source.read()


def test_a_sites_token_env_is_read_again_on_reload(monkeypatch):
    source = NamedEnvToken("ACME_TOKEN")
    with pytest.raises(SettingsError, match="ACME_TOKEN is not set"):
        source.read()
    monkeypatch.setenv("ACME_TOKEN", TOKEN_24)
    assert source.read().get_secret_value() == TOKEN_24
    assert source.description == "environment variable ACME_TOKEN"


def test_without_an_email_the_single_site_does_not_start():
    with pytest.raises(SettingsError, match="ATLASSIAN_PROXY_EMAIL is not set"):
        sites_with_sources(Settings(api_token=SecretStr(TOKEN_24)))


def test_every_site_is_resolved_with_its_credentials():
    table, [resolved] = resolve_sites(Settings(email=EMAIL, api_token=SecretStr(TOKEN_24)))
    assert table.lookup("acme.atlassian.net", 443) == resolved.site
    assert resolved.credentials.authorization.get_secret_value() == basic(EMAIL, TOKEN_24)
    assert resolved.credentials.source == "environment"


def test_a_client_credentials_site_resolves_its_secret_not_credentials(monkeypatch, tmp_path):
    from proxy_addon.credentials.sources import CLIENT_SECRET, ClientSecret, KeyringSecret, resolve
    from proxy_addon.policy.hosts import HostPattern
    from proxy_addon.policy.sites import Scheme, Site

    site = Site("bot", (HostPattern.parse("acme.atlassian.net"),), "", Scheme.CLIENT_CREDENTIALS)
    monkeypatch.setenv("BOT_SECRET", "  the-Client-secret!\n")
    entry = resolve(site, NamedEnvToken("BOT_SECRET", CLIENT_SECRET), "sa-client")
    assert entry.credentials is None, "its access tokens are minted, never built from the secret"
    assert entry.client == ClientSecret("sa-client", SecretStr("the-Client-secret!"))
    assert "the-Client-secret!" not in repr(entry)
    with pytest.raises(SettingsError, match="needs client_id"):
        resolve(site, NamedEnvToken("BOT_SECRET", CLIENT_SECRET))
    monkeypatch.delenv("BOT_SECRET")
    with pytest.raises(SettingsError, match="BOT_SECRET is not set: it should hold the client secret"):
        NamedEnvToken("BOT_SECRET", CLIENT_SECRET).read()
    secret_file = tmp_path / "secret"
    secret_file.write_text("has a space")
    with pytest.raises(SettingsError, match="client_secret_file: the client secret in") as raised:
        FileToken(secret_file, "client_secret_file", CLIENT_SECRET).read()
    assert "has a space" not in str(raised.value)
    assert (
        KeyringSecret("client:sa-client", False).description == "keyring ('atlassian-auth-proxy', 'client:sa-client')"
    )

"""`login`, `logout` and `check` without a keyring or a site: what each asks, stores, records and prints.

tests/e2e/test_credentials.py runs them against a real Secret Service and the TLS stand-in.
"""

from __future__ import annotations

import datetime as dt
import io

import pytest
import tomlkit
from pydantic import SecretStr

from proxy_addon.commands import account
from proxy_addon.commands.account import (
    Rejected,
    check,
    expiry_note,
    login,
    login_client,
    logout,
    logout_client,
    record_account,
)
from proxy_addon.credentials.identity import Answer
from proxy_addon.credentials.minted import Minted, MintRejected
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import SettingsError

from support.proxy import EMAIL, TOKEN_24, basic


class Keyring:
    """Stands in for `keyring_store`: what was stored and removed."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    def store_token(self, user: str, token: SecretStr, *, allow_insecure: bool) -> str:
        self.tokens[user] = token.get_secret_value()
        return "a test keyring"

    def delete_token(self, user: str, *, allow_insecure: bool) -> bool:
        return self.tokens.pop(user, None) is not None


@pytest.fixture
def keyring(monkeypatch) -> Keyring:
    fake = Keyring()
    monkeypatch.setattr(account, "keyring_store", fake)
    return fake


@pytest.fixture
def site(monkeypatch) -> list[tuple]:
    """The identity page: answers 200 for TOKEN_24 and 401 for anything else; who was asked is kept."""
    asked: list[tuple] = []

    def ask_myself(host, credentials, reach, port, path):
        asked.append((host, port, path))
        if credentials.authorization.get_secret_value() == basic(EMAIL, TOKEN_24):
            return Answer(200, None, "Me", "a-1")
        return Answer(401, "HTTP 401", None, None)

    monkeypatch.setattr(account, "ask_myself", ask_myself)
    return asked


def test_login_verifies_at_the_pinned_site_stores_the_token_and_records_the_site(clean_env, keyring, site):
    out = io.StringIO()
    expires = dt.date(2030, 1, 31)
    login(Settings(email=EMAIL), None, "acme.atlassian.net", True, io.StringIO(TOKEN_24), out, expires)
    assert site == [("acme.atlassian.net", 443, "/rest/api/3/myself")]
    assert keyring.tokens == {EMAIL: TOKEN_24}
    recorded = tomlkit.parse((clean_env / "xdg-config" / "atlassian-auth-proxy" / "config.toml").read_text())
    assert (recorded["email"], recorded["site"], recorded["hosts"]) == (
        EMAIL,
        "acme.atlassian.net",
        ["acme.atlassian.net"],
    )
    assert recorded["token_expires"] == expires
    assert TOKEN_24 not in out.getvalue()


def test_login_sends_no_token_to_a_name_that_is_not_a_site(clean_env, keyring, site):
    with pytest.raises(SettingsError, match="is not an Atlassian Cloud site"):
        login(
            Settings(email=EMAIL), None, "acme.atlassian.net.evil.example", True, io.StringIO(TOKEN_24), io.StringIO()
        )
    assert site == []
    assert keyring.tokens == {}


def test_a_rejected_token_is_not_stored(clean_env, keyring, site):
    with pytest.raises(Rejected, match="rejected the token for me@acme"):
        login(Settings(email=EMAIL), None, "acme.atlassian.net", True, io.StringIO("Wr0ngT0ken"), io.StringIO())
    assert keyring.tokens == {}


def test_logout_says_whether_there_was_a_token(keyring):
    keyring.tokens[EMAIL] = TOKEN_24
    out = io.StringIO()
    logout(Settings(email=EMAIL), None, None, out)
    logout(Settings(email=EMAIL), None, None, out)
    assert out.getvalue().splitlines() == [
        f"removed the token for {EMAIL} from the keyring",
        f"the keyring held no token for {EMAIL}",
    ]


def test_check_asks_the_site_with_the_token_run_would_use(clean_env, site):
    out = io.StringIO()
    settings = Settings(email=EMAIL, api_token=SecretStr(TOKEN_24), site="acme.atlassian.net")
    check(settings, out)
    assert out.getvalue() == "acme.atlassian.net: signed in as Me (accountId a-1) with the token from environment\n"


def test_record_account_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('# mine\nlisten_port = 8081\nemail = "old@example.test"\n')
    record_account(path, EMAIL, None)
    text = path.read_text()
    assert "# mine" in text
    assert "listen_port = 8081" in text
    assert f'email = "{EMAIL}"' in text
    assert "hosts" not in text


def test_the_expiry_note_counts_days_either_way():
    day = dt.date(2030, 1, 31)
    midnight = dt.datetime(2030, 1, 31, tzinfo=dt.UTC).timestamp()
    assert expiry_note(day, midnight - 3 * 86400) == "the token expires on 2030-01-31 (3 days left)"
    assert expiry_note(day, midnight + 86400).startswith("the token expired on 2030-01-31 (1 day ago)")


SECRET = "the-Client-secret-0123"


@pytest.fixture
def token_endpoint(monkeypatch) -> list[str]:
    """Stands in for `minted.mint`: mints for SECRET, rejects anything else; the secrets it got are kept."""
    got: list[str] = []

    def mint(client, reach):
        got.append(client.secret.get_secret_value())
        if client.secret.get_secret_value() != SECRET:
            raise MintRejected("HTTP 401 invalid_client", 30)
        return Minted(SecretStr("Bearer minted-for-check"), 3600)

    monkeypatch.setattr(account, "mint", mint)
    return got


def test_login_with_a_client_id_verifies_by_minting_then_stores_the_secret_under_client_and_the_id(
    clean_env, keyring, token_endpoint
):
    out = io.StringIO()
    login_client(Settings(), "sa-client", True, io.StringIO(SECRET + "\n"), out)
    assert token_endpoint == [SECRET]
    assert keyring.tokens == {"client:sa-client": SECRET}
    assert out.getvalue().splitlines() == [
        "auth.atlassian.com: the client credentials work (minted an access token for 3600 s)",
        "stored the client secret of sa-client in the keyring (a test keyring, user client:sa-client)",
    ]
    with pytest.raises(Rejected, match="rejected the client credentials of client_id sa-client"):
        login_client(Settings(), "sa-client", True, io.StringIO("a-Wrong-secret"), io.StringIO())
    assert keyring.tokens == {"client:sa-client": SECRET}, "a rejected secret is not stored"
    with pytest.raises(SettingsError, match="--client-id: 'no way' is not an OAuth client id"):
        login_client(Settings(), "no way", True, io.StringIO(SECRET), io.StringIO())
    out = io.StringIO()
    logout_client(Settings(), "sa-client", out)
    logout_client(Settings(), "sa-client", out)
    assert out.getvalue().splitlines() == [
        "removed the client secret of sa-client from the keyring",
        "the keyring held no client secret of sa-client",
    ]


def test_check_of_a_service_account_mints_and_asks_the_gateway_who_it_is(clean_env, monkeypatch, token_endpoint):
    asked: list[tuple[str, str, str]] = []

    def fetch(host, port, path, credentials, reach):
        asked.append((host, path, credentials.authorization.get_secret_value()))
        return 200, {}, b'{"displayName": "Acme Bot", "accountId": "712020:bot"}'

    monkeypatch.setattr(account, "fetch", fetch)
    monkeypatch.setenv("BOT_SECRET", SECRET)
    config = clean_env / "bot.toml"
    config.write_text(
        '[[sites]]\nname = "bot"\nhosts = ["acme.atlassian.net"]\nscheme = "client_credentials"\n'
        'client_id = "sa-client"\nclient_secret_env = "BOT_SECRET"\ncloud_id = "c0de"\n'
    )
    out = io.StringIO()
    check(load_settings(config), out)
    assert asked == [("api.atlassian.com", "/ex/jira/c0de/rest/api/3/myself", "Bearer minted-for-check")]
    assert out.getvalue() == (
        "acme.atlassian.net: signed in through the API gateway as Acme Bot (accountId 712020:bot), client_id "
        "sa-client, with an access token minted with the secret from environment variable BOT_SECRET (for 3600 s)\n"
    )
    monkeypatch.setenv("BOT_SECRET", "a-Wrong-secret")
    with pytest.raises(Rejected, match="rejected the client credentials of client_id sa-client"):
        check(load_settings(config), io.StringIO())
    assert SECRET not in out.getvalue()

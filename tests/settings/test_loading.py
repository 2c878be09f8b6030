"""Settings: one model, five sources in a fixed order, and one clear line for every bad value."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy_addon.credentials.sources import resolve_sites
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.names import SettingsError

from support.proxy import EMAIL, TOKEN_24, TOKEN_192


def test_sources_in_order_flags_env_dotenv_toml_defaults(clean_env, monkeypatch):
    toml = clean_env / "config.toml"
    toml.write_text('listen_port = 1001\nconfdir = "/from/toml"\nhosts = ["toml.example.test"]\nemail = "t@x.test"\n')
    (clean_env / ".env").write_text("ATLASSIAN_PROXY_LISTEN_PORT=1002\nATLASSIAN_PROXY_CONFDIR=/from/dotenv\n")
    monkeypatch.setenv("ATLASSIAN_PROXY_LISTEN_PORT", "1003")
    settings = load_settings(toml, listen_port=1004)
    assert settings.listen_port == 1004
    monkeypatch.setenv("ATLASSIAN_PROXY_CONFIG", str(toml))
    settings = load_settings()
    assert settings.listen_port == 1003
    assert str(settings.confdir) == "/from/dotenv"
    assert ",".join(map(str, settings.hosts)) == "toml.example.test"
    assert settings.email == "t@x.test"
    assert settings.listen_host == "127.0.0.1"


def test_defaults(clean_env):
    settings = load_settings()
    assert ",".join(map(str, settings.hosts)) == "*.atlassian.net"
    assert (settings.listen_host, settings.listen_port) == ("127.0.0.1", 8080)
    assert settings.confdir.name == ".mitmproxy"
    pool = (settings.upstream_pool, settings.upstream_pool_size, settings.upstream_pool_idle_seconds)
    assert pool == (True, 2, 60.0)


def test_the_token_never_shows_in_repr_or_str(clean_env, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_EMAIL", EMAIL)
    monkeypatch.setenv("ATLASSIAN_PROXY_API_TOKEN", TOKEN_192)
    settings = load_settings()
    _, [resolved] = resolve_sites(settings)
    credentials = resolved.credentials
    for text in (repr(settings), str(settings), repr(credentials), str(credentials), repr(settings.api_token)):
        assert TOKEN_192 not in text
        assert TOKEN_192[:24] not in text


def test_a_malformed_token_is_reported_without_echoing_it(clean_env, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_API_TOKEN", "ATATT3x secret-part")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "ATLASSIAN_PROXY_API_TOKEN" in str(raised.value)
    assert "secret-part" not in str(raised.value)


def test_token_file_surrounding_whitespace_is_ignored(clean_env, monkeypatch):
    token_file = clean_env / "token"
    token_file.write_text(f"\n  {TOKEN_24}\r\n")
    monkeypatch.setenv("ATLASSIAN_PROXY_EMAIL", EMAIL)
    monkeypatch.setenv("ATLASSIAN_PROXY_API_TOKEN_FILE", str(token_file))
    _, [resolved] = resolve_sites(load_settings())
    assert resolved.credentials.source == f"file {token_file}"


SETTING_VALUES = st.text(max_size=40)
FLAGS = [
    "hosts",
    "connect_to",
    "email",
    "listen_port",
    "upstream_timeout",
    "client_timeout",
    "allow_browsers",
    "upstream_pool",
    "upstream_pool_size",
    "upstream_pool_idle_seconds",
    "upstream_pool_max_age_seconds",
]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(flag=st.sampled_from(FLAGS), value=SETTING_VALUES)
def test_any_setting_value_loads_or_fails_with_one_line_naming_it(clean_env, flag, value):
    try:
        load_settings(**{flag: value})
    except SettingsError as e:
        message = str(e)
        assert message.startswith("--" + flag.replace("_", "-") + ":")
        assert "\n" not in message


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(value=st.text(max_size=40))
def test_any_proxy_auth_loads_or_fails_without_echoing_the_password(clean_env, value):
    try:
        loaded = load_settings(proxy_auth=value)
    except SettingsError as e:
        message = str(e)
        assert message.startswith("--proxy-auth:")
        _, _, password = value.strip().partition(":")
        if len(password) > 3:
            assert password not in message
        return
    assert loaded.proxy_login is not None
    assert loaded.proxy_login.check(None) is None

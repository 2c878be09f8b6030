"""The state URL: the three forms, a password that shows nowhere, one line for anything else, and the settings
it comes with (`max_in_flight`, `queue_timeout_seconds`)."""

from __future__ import annotations

import importlib.util

import pytest

from proxy_addon.settings import state_url
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.names import SettingsError
from proxy_addon.settings.state_url import StateUrl

PASSWORD = "s3cret-store-pa55"


@pytest.mark.parametrize(
    ("text", "where", "db"),
    [
        ("redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2", 2),
        ("redis://valkey", "redis://valkey:6379/0", 0),
        (f"rediss://:{PASSWORD}@store.internal:6380/1", "rediss://store.internal:6380/1", 1),
        (f"redis://proxy:{PASSWORD}@store:6379", "redis://store:6379/0", 0),
        ("unix:///run/redis/redis.sock?db=3", "unix:///run/redis/redis.sock?db=3", 3),
        (f"unix://:{PASSWORD}@/run/redis.sock", "unix:///run/redis.sock?db=0", 0),
    ],
)
def test_each_form_names_its_server_without_the_password(text, where, db):
    url = StateUrl.parse(text)
    assert (url.where, str(url), repr(url), url.db) == (where, where, where, db)
    if PASSWORD in text:
        assert url.password is not None
        assert url.password.get_secret_value() == PASSWORD
        assert PASSWORD not in f"{url} {url!r} {url.password!r}"


@pytest.mark.parametrize(
    "text",
    [
        f"http://:{PASSWORD}@store:6379",
        "redis://:@",
        f"redis://:{PASSWORD}@store/zero",
        f"redis://:{PASSWORD}@store:0/1",
        f"redis://:{PASSWORD}@store:99999/1",
        f"redis://:{PASSWORD}@store/1?ssl=no",
        "unix://host/tmp/sock",
        "unix:///tmp/sock?db=x",
        "unix:///tmp/sock?timeout=1",
    ],
)
def test_anything_else_is_one_line_that_never_quotes_it(text):
    with pytest.raises(ValueError, match="redis://HOST:PORT/DB") as raised:
        StateUrl.parse(text)
    assert PASSWORD not in str(raised.value)
    assert text not in str(raised.value)


def test_without_the_client_library_it_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(state_url.importlib.util, "find_spec", lambda name: None if name == "redis" else real(name))
    with pytest.raises(ValueError, match=r"pip install 'atlassian-auth-proxy\[redis\]'"):
        StateUrl.parse("redis://127.0.0.1:6379/0")


def test_the_setting_is_a_secret_exec_keeps_from_its_command(clean_env, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_STATE_URL", "redis://127.0.0.1:6379/0")
    assert "ATLASSIAN_PROXY_STATE_URL" not in load_settings().secret_variables(), "no password, no secret"
    monkeypatch.setenv("ATLASSIAN_PROXY_STATE_URL", f"redis://:{PASSWORD}@127.0.0.1:6379/0")
    settings = load_settings()
    assert "ATLASSIAN_PROXY_STATE_URL" in settings.secret_variables()
    assert PASSWORD not in repr(settings)


def test_a_bad_url_in_the_environment_is_one_line_naming_the_variable(clean_env, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_STATE_URL", f"redis://:{PASSWORD}@store:port/0")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith("ATLASSIAN_PROXY_STATE_URL: is not a Redis URL")
    assert PASSWORD not in str(raised.value)


def test_the_cap_and_the_wait_come_from_each_site_else_from_the_top_level(clean_env, monkeypatch):
    assert load_settings().in_flight() == {"default": (16, 30.0)}
    monkeypatch.setenv("ATLASSIAN_PROXY_MAX_IN_FLIGHT", "4")
    monkeypatch.setenv("ATLASSIAN_PROXY_QUEUE_TIMEOUT_SECONDS", "2.5")
    assert load_settings().in_flight() == {"default": (4, 2.5)}
    monkeypatch.setenv("ACME", "Ab3dE6gH9jK2mN5pQ8sT1vWx")
    config = clean_env / "sites.toml"
    config.write_text(
        'max_in_flight = 8\nstate_url = "redis://127.0.0.1:6379/1"\n'
        '[[sites]]\nname = "acme"\nhosts = ["acme.atlassian.net"]\nemail = "a@x.test"\ntoken_env = "ACME"\n'
        "max_in_flight = 2\nqueue_timeout_seconds = 5\n"
        '[[sites]]\nname = "globex"\nhosts = ["globex.atlassian.net"]\nemail = "a@x.test"\ntoken_env = "ACME"\n'
    )
    monkeypatch.delenv("ATLASSIAN_PROXY_MAX_IN_FLIGHT")
    settings = load_settings(config)
    assert settings.in_flight() == {"acme": (2, 5.0), "globex": (8, 2.5)}
    assert settings.state_url == StateUrl.parse("redis://127.0.0.1:6379/1")


@pytest.mark.parametrize(
    ("variable", "text"),
    [("ATLASSIAN_PROXY_MAX_IN_FLIGHT", "0"), ("ATLASSIAN_PROXY_QUEUE_TIMEOUT_SECONDS", "0")],
)
def test_a_cap_or_wait_of_nothing_is_refused_in_one_line(clean_env, monkeypatch, variable, text):
    monkeypatch.setenv(variable, text)
    with pytest.raises(SettingsError, match=f"^{variable}: "):
        load_settings()

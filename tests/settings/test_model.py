"""The settings model as a whole: settings that cannot go together, and which environment variables hold its secrets."""

from __future__ import annotations

import pytest

from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.names import SettingsError

from support.configs import ACME_SITE, CLIENT_PASSWORD, client_config


@pytest.mark.parametrize("setting", ["proxy_auth", "proxy_auth_file"])
def test_clients_and_the_one_proxy_login_cannot_be_combined(clean_env, monkeypatch, setting):
    login_file = clean_env / "login"
    login_file.write_text(f"ci:{CLIENT_PASSWORD}")
    value = f"ci:{CLIENT_PASSWORD}" if setting == "proxy_auth" else str(login_file)
    monkeypatch.setenv(f"ATLASSIAN_PROXY_{setting.upper()}", value)
    config = client_config(clean_env, '[[clients]]\nname = "a"\npassword_env = "PW"\n', monkeypatch)
    with pytest.raises(SettingsError, match=rf"\[\[clients\]\] and ATLASSIAN_PROXY_{setting.upper()} are both set"):
        load_settings(config)


OTLP = {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_LOGS_HEADERS"}
"""The audit export's header variables: a collector's API key may sit in them, whatever else is set."""


def test_secret_variables_are_the_settings_that_hold_a_secret_and_every_env_key(clean_env, monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_API_TOKEN", "Ab3dE6gH9jK2mN5pQ8sT1vWx")
    monkeypatch.setenv("ATLASSIAN_PROXY_EMAIL", "me@acme.example")
    monkeypatch.setenv("ATLASSIAN_PROXY_UPSTREAM_PROXY", "http://corp:3128")
    assert load_settings().secret_variables() == {"ATLASSIAN_PROXY_API_TOKEN", *OTLP}, (
        "a corporate proxy without password"
    )
    monkeypatch.setenv("ATLASSIAN_PROXY_UPSTREAM_PROXY", "http://user:pw@corp:3128")
    monkeypatch.setenv("ATLASSIAN_PROXY_PROXY_AUTH", f"ci:{CLIENT_PASSWORD}")
    assert load_settings().secret_variables() == {
        "ATLASSIAN_PROXY_API_TOKEN",
        "ATLASSIAN_PROXY_UPSTREAM_PROXY",
        "ATLASSIAN_PROXY_PROXY_AUTH",
        *OTLP,
    }
    for name in ("ATLASSIAN_PROXY_API_TOKEN", "ATLASSIAN_PROXY_EMAIL", "ATLASSIAN_PROXY_PROXY_AUTH"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("T", "Ab3dE6gH9jK2mN5pQ8sT1vWx")
    config = client_config(clean_env, ACME_SITE + '[[clients]]\nname = "a"\npassword_env = "PW"\n', monkeypatch)
    assert load_settings(config).secret_variables() == {"T", "PW", "ATLASSIAN_PROXY_UPSTREAM_PROXY", *OTLP}

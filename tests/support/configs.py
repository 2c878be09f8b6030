"""TOML settings for the settings tests: a site, clients and their password."""

from __future__ import annotations

CLIENT_PASSWORD = "cl1ent-Pa55word-x"
ACME_SITE = '[[sites]]\nname = "acme"\nhosts = ["acme.atlassian.net"]\nemail = "a@x.test"\ntoken_env = "T"\n'


def client_config(clean_env, text: str, monkeypatch) -> object:
    monkeypatch.setenv("PW", CLIENT_PASSWORD)
    config = clean_env / "clients.toml"
    config.write_text(text)
    return config

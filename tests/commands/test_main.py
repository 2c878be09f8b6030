"""The `atlassian-auth-proxy` command: each subcommand found where it is named, and errors as one line with exit 2."""

from __future__ import annotations

import importlib

import pytest

from proxy_addon.commands import main as main_module
from proxy_addon.commands.main import COMMANDS, build_parser, main
from proxy_addon.settings.names import SettingsError


def test_every_subcommand_has_its_function():
    for name, (module, function) in COMMANDS.items():
        assert build_parser().parse_args([name]).command == name
        assert callable(getattr(importlib.import_module(f"proxy_addon.commands.{module}"), function))


def test_a_setting_error_is_one_line_and_exit_2(monkeypatch, capsys):
    def broken(args):
        raise SettingsError("ATLASSIAN_PROXY_HOSTS: '*' is not a host pattern")

    monkeypatch.setitem(COMMANDS, "check", ("fake", "broken"))
    monkeypatch.setattr(main_module.importlib, "import_module", lambda name: type("M", (), {"broken": broken}))
    assert main(["check"]) == 2
    assert capsys.readouterr().err == "atlassian-auth-proxy: error: ATLASSIAN_PROXY_HOSTS: '*' is not a host pattern\n"


def test_a_malformed_expiry_date_is_refused_by_the_parser_naming_the_flag(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["login", "--expires", "31.01.2030"])
    assert exited.value.code == 2
    assert "--expires" in capsys.readouterr().err


def test_a_client_id_is_for_a_client_secret_alone(capsys):
    assert main(["login", "--client-id", "sa-client", "--email", "me@acme.example"]) == 2
    assert "--client-id is a service account's client secret: --email are for API tokens" in capsys.readouterr().err
    parsed = build_parser().parse_args(["logout", "--client-id", "sa-client"])
    assert parsed.client_id == "sa-client"

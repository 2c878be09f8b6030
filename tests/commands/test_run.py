"""`run`: the flags go to the settings, every token is read before serving, and a bad mitmproxy option is a
setting error (exit 2). tests/e2e/ runs the real thing."""

from __future__ import annotations

import argparse

import pytest
from mitmproxy.exceptions import OptionsError

from proxy_addon.commands import run
from proxy_addon.settings.names import SettingsError


def test_flags_reach_the_settings_and_a_bad_option_is_a_setting_error(monkeypatch):
    loaded: dict = {}

    def load_settings(config, **flags):
        loaded.update(config=config, **flags)
        return "settings"

    async def serve(settings, given):
        raise OptionsError("stream_large_bodies=16k would send a request before its verdict")

    monkeypatch.setattr(run, "load_settings", load_settings)
    monkeypatch.setattr(run, "resolve_sites", lambda settings: ("table", []))
    monkeypatch.setattr(run, "serve", serve)
    args = argparse.Namespace(config=None, listen_host="::1", listen_port=0, reverse=None)
    with pytest.raises(SettingsError, match="stream_large_bodies=16k"):
        run.run_command(args)
    assert loaded == {"config": None, "listen_host": "::1", "listen_port": 0, "reverse": None}

"""`health`: which admin port it asks, and its exit status from the answer, without mitmproxy or a proxy."""

from __future__ import annotations

import argparse
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from proxy_addon.commands.health import admin_port, health_command
from proxy_addon.settings.names import SettingsError


class Admin(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.path == "/livez"
        body = b"ok\n" if ok else b"unhealthy: acme.atlassian.net rejected the token\n"
        self.send_response(200 if ok else 503)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def admin() -> Iterator[int]:
    """A stand-in for the admin endpoint on loopback: /livez is 200, /healthz 503."""
    server = HTTPServer(("127.0.0.1", 0), Admin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def args(live: bool = False) -> argparse.Namespace:
    return argparse.Namespace(config=None, live=live)


def test_the_port_in_the_environment_is_the_answer_without_loading_settings(monkeypatch):
    monkeypatch.setenv("ATLASSIAN_PROXY_ADMIN_PORT", "9901")
    assert admin_port(args()) == 9901


def test_without_a_port_it_is_a_setting_error(clean_env):
    with pytest.raises(SettingsError, match="ATLASSIAN_PROXY_ADMIN_PORT is not set"):
        health_command(args())


def test_the_exit_status_follows_the_answer(monkeypatch, admin, capsys):
    monkeypatch.setenv("ATLASSIAN_PROXY_ADMIN_PORT", str(admin))
    assert health_command(args()) == 1
    assert capsys.readouterr().out == "unhealthy: acme.atlassian.net rejected the token\n"
    assert health_command(args(live=True)) == 0
    assert capsys.readouterr().out == "ok\n"


def test_nothing_listening_is_unhealthy(monkeypatch, capsys):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("ATLASSIAN_PROXY_ADMIN_PORT", str(port))
    assert health_command(args()) == 1
    assert capsys.readouterr().out.startswith(f"unhealthy: no admin endpoint on 127.0.0.1:{port}")

"""`atlassian-auth-proxy health`: exit 0 when the running proxy's /healthz says ok (HEALTHCHECK, probes).

Probes run every few seconds, so this imports only the settings and `http.client`, never
mitmproxy or the rest of the proxy.
"""

from __future__ import annotations

import argparse
from http.client import HTTPConnection

from proxy_addon.settings.model import ADMIN_HOST, load_settings
from proxy_addon.settings.names import SettingsError, env_name


def probe(port: int, timeout: float = 5.0) -> tuple[int, str]:
    """GET /healthz on loopback directly (never through an HTTP_PROXY from the environment)."""
    connection = HTTPConnection(ADMIN_HOST, port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        connection.close()


def health_command(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if not settings.admin_port:
        raise SettingsError(f"{env_name('admin_port')} is not set: set it to the admin port the proxy runs with")
    try:
        status, body = probe(settings.admin_port)
    except OSError as e:
        print(f"unhealthy: no admin endpoint on {ADMIN_HOST}:{settings.admin_port} ({e})")
        return 1
    print(body)
    return 0 if status == 200 else 1

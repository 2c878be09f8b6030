"""`atlassian-auth-proxy health`: exit 0 when the running proxy's /healthz says ok (readiness probes).

`health --live` asks /livez: it fails only when the proxy does not serve at all, so it is the
one for probes that restart the proxy (Kubernetes liveness and startup, the image's
HEALTHCHECK); a rejected token makes /healthz fail, and a restart would not fix that.

Probes run every few seconds, so this imports only `http.client`, never mitmproxy; and where
`ATLASSIAN_PROXY_ADMIN_PORT` is set (the image sets it), not even the settings model: the
environment outranks the config file, so that variable is the answer.
"""

from __future__ import annotations

import argparse
import os
from http.client import HTTPConnection

from proxy_addon.settings.names import ADMIN_HOST, SettingsError, env_name


def probe(port: int, path: str = "/healthz", timeout: float = 5.0) -> tuple[int, str]:
    """GET `path` on loopback directly (never through an HTTP_PROXY from the environment)."""
    connection = HTTPConnection(ADMIN_HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace").strip()
    finally:
        connection.close()


def admin_port(args: argparse.Namespace) -> int | None:
    """The admin port from the environment when it is a plain port number, else from every settings source."""
    text = os.environ.get(env_name("admin_port"), "")
    if args.config is None and text.isascii() and text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    from proxy_addon.settings.loading import load_settings

    return load_settings(args.config).admin_port


def health_command(args: argparse.Namespace) -> int:
    port = admin_port(args)
    if not port:
        raise SettingsError(f"{env_name('admin_port')} is not set: set it to the admin port the proxy runs with")
    try:
        status, body = probe(port, "/livez" if args.live else "/healthz")
    except OSError as e:
        print(f"unhealthy: no admin endpoint on {ADMIN_HOST}:{port} ({e})")
        return 1
    print(body)
    return 0 if status == 200 else 1

"""The admin endpoint on loopback: `/healthz` (ready), `/livez` (alive), `/metrics` for Prometheus.

`/healthz` is readiness: it asks `Readiness` why credentials cannot be served right now and
whether the proxy still listens. Only a paused host the settings name makes it unready; a
paused host a client chose under a wildcard is only reported in its body (`Readiness.paused`):
any client can make such a host answer 401, and that must not make the whole proxy unready. `/livez` is liveness,
for probes that restart the proxy: 503 only when it does not listen, which a restart can cure
and a rejected token cannot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from datetime import date
from http.client import responses
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from proxy_addon.addons.mitmproxy_internals import listen_addresses
from proxy_addon.addons.prepared import Prepared
from proxy_addon.credentials.minted import TOKEN_HOST, Mints
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.policy.expiry import expiry_dates, expiry_problem
from proxy_addon.policy.homes import named_hosts
from proxy_addon.policy.token_health import Scope, TokenHealth
from proxy_addon.settings.names import ADMIN_HOST, SettingsError, env_name

logger = logging.getLogger(__name__)


REQUEST_LIMIT = 8192
READ_SECONDS = 5.0

MAX_PAUSED_NAMES = 20

NOT_LISTENING = {"status": "unavailable", "reason": "the proxy is not listening"}


def health(listening: bool, credential_problem: str | None, paused: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    """The `/healthz` status code and JSON body."""
    if not listening:
        return 503, NOT_LISTENING
    body: dict[str, Any] = {"status": "ok"}
    if credential_problem:
        body = {"status": "unavailable", "reason": credential_problem}
    if paused:
        body["paused"] = list(paused[:MAX_PAUSED_NAMES])
    return (503 if credential_problem else 200), body


def liveness(listening: bool) -> tuple[int, dict[str, Any]]:
    """The `/livez` status code and JSON body."""
    return (200, {"status": "ok"}) if listening else (503, NOT_LISTENING)


class Readiness:
    """Whether credentials can be served now, from the credentials and token health it is handed."""

    def __init__(self, credentials: CredentialRegistry, health: TokenHealth, mints: Mints) -> None:
        self.credentials = credentials
        self.health = health
        self.mints = mints
        self.named: frozenset[tuple[str, str]] = frozenset()
        """(site, host) pairs the settings name exactly (a site's exact hosts, ATLASSIAN_PROXY_SITE)."""
        self.expires: dict[str, date] = {}

    def use(self, prepared: Prepared) -> None:
        self.named = named_hosts(prepared.table, prepared.policy.named_site)
        self.expires = expiry_dates(entry.site for entry in prepared.resolved)

    def problem(self) -> str | None:
        """What makes /healthz 503: why credentials cannot be served right now (short, secret-free), or None.

        Only a paused token of a host the settings name counts: a host under a wildcard is any
        client's choice, and its 401 must not make the proxy unready for everyone.
        """
        if not self.credentials:
            return "no credentials loaded"
        if paused := sorted(self._paused_named()):
            return f"{', '.join(paused)} rejected the API token; requests are answered locally until it is replaced"
        if rejected := self.mints.rejected():
            return (
                f"{TOKEN_HOST} rejected the client credentials of site {', '.join(rejected)}; requests are answered "
                "locally until they are replaced"
            )
        return expiry_problem(self.expires, time.time())

    def paused(self) -> tuple[str, ...]:
        """Paused hosts that a client chose under a wildcard (where a site's pause was seen, or a host's own
        pause): /healthz names them but stays ready."""
        return tuple(sorted({host for site, host, _ in self.health.paused() if (site, host) not in self.named}))

    def _paused_named(self) -> set[str]:
        """Named hosts the token may not go to now: every named host of a paused site, and named hosts paused alone."""
        sites = {site for site, _, scope in self.health.paused() if scope is Scope.SITE}
        hosts = {(site, host) for site, host, scope in self.health.paused() if scope is Scope.HOST}
        return {host for site, host in self.named if site in sites or (site, host) in hosts}


class AdminEndpoint:
    """Serves `/healthz` and `/metrics` on 127.0.0.1, in the proxy's own event loop.

    The port is bound when the settings are applied (so a taken port is a start-up error) and
    served once the proxy runs. Sharing the event loop means a wedged proxy fails its probe.
    """

    def __init__(self, readiness: Readiness, registry: CollectorRegistry) -> None:
        self.readiness = readiness
        self.registry = registry
        self._socket: socket.socket | None = None
        self._server: asyncio.Server | None = None

    def use(self, prepared: Prepared) -> None:
        self.bind(prepared.settings.admin_port)
        self.readiness.use(prepared)

    def bind(self, port: int | None) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if port is None:
            return
        try:
            self._socket = socket.create_server((ADMIN_HOST, port))
        except OSError as e:
            reason = os.strerror(e.errno) if e.errno else "cannot bind"
            raise SettingsError(
                f"{env_name('admin_port')}: cannot listen on {ADMIN_HOST}:{port} ({reason}); choose a free port"
            ) from None

    async def running(self) -> None:
        if self._socket is None:
            return
        self._server = await asyncio.start_server(self._serve, sock=self._socket, limit=REQUEST_LIMIT)
        host, port = self._socket.getsockname()[:2]
        logger.info("admin endpoint on http://%s:%s (/healthz, /livez, /metrics)", host, port)

    def done(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.bind(None)

    def _listening(self) -> bool:
        return bool(listen_addresses())

    def reply(self, method: str, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body for one admin request."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n"
        route = path.partition("?")[0]
        if route in ("/healthz", "/livez"):
            listening = self._listening()
            if route == "/livez":
                status, body = liveness(listening)
            else:
                status, body = health(listening, self.readiness.problem(), self.readiness.paused())
            return status, "application/json", json.dumps(body).encode() + b"\n"
        if route == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        return 404, "text/plain", b"not found: try /healthz, /livez or /metrics\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_SECONDS)
            method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status, content_type, body = self.reply(method, path)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            status, content_type, body, method = 400, "text/plain", b"bad request\n", "GET"
        reason = responses.get(status, "")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        )
        if method != "HEAD":
            writer.write(body)
        try:
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

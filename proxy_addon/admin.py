"""The admin endpoint on loopback: `/healthz` for probes, `/metrics` for Prometheus.

Metrics are counted in the request hooks from values the flow already holds; label values are
a fixed vocabulary (decision, status class) or a host that matched the credential patterns,
never a path, a query, a header or a client-chosen name. `/healthz` asks the root addon why
credentials cannot be served right now (a `CredentialHealth` callable) and whether the proxy
still listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable
from http.client import HTTPConnection, responses

from mitmproxy import ctx, http, tls
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from proxy_addon.backoff import rejection_reason
from proxy_addon.inject import DECISION_KEY, SITE_KEY, Decision
from proxy_addon.requestlog import elapsed_seconds
from proxy_addon.settings import ENV_PREFIX, SettingsError, load_settings

logger = logging.getLogger(__name__)

ADMIN_HOST = "127.0.0.1"
ADMIN_PORT_ENV = ENV_PREFIX + "ADMIN_PORT"
OTHER_SITE = "other"
TUNNELLED = "tunnelled"
NO_STATUS = "none"
REQUEST_LIMIT = 8192
READ_SECONDS = 5.0

CredentialHealth = Callable[[], str | None]
"""Why the proxy cannot serve credentials right now (a short, secret-free reason), or None."""


def decision_label(decision: str) -> str:
    """`refused-cleartext` and `refused-misdirected` are both `refused`; other decisions as they are."""
    return "refused" if decision.startswith("refused-") else decision


def site_label(flow: http.HTTPFlow) -> str:
    """The configured site's name (a bounded set); every request without one is `other`."""
    return flow.metadata.get(SITE_KEY) or OTHER_SITE


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "error"


def health(listening: bool, credential_problem: str | None) -> tuple[int, dict[str, str]]:
    """The `/healthz` status code and JSON body."""
    if not listening:
        return 503, {"status": "unavailable", "reason": "the proxy is not listening"}
    if credential_problem:
        return 503, {"status": "unavailable", "reason": credential_problem}
    return 200, {"status": "ok"}


class Metrics:
    """Prometheus metrics in a registry of their own (so several proxies can share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "atlassian_proxy_requests",
            "Requests by site, decision and status class (tunnelled: connections, which are not decrypted)",
            ["site", "decision", "status_class"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "atlassian_proxy_upstream_auth_failures",
            "Responses in which the site rejected the injected credentials",
            ["site"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "atlassian_proxy_request_duration_seconds",
            "Time from the request's first byte to the response's last byte",
            ["decision"],
            registry=self.registry,
        )

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        if data.ignore_connection:
            self.requests.labels(OTHER_SITE, TUNNELLED, NO_STATUS).inc()

    def response(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def _count(self, flow: http.HTTPFlow) -> None:
        decision = flow.metadata.get(DECISION_KEY, Decision.PASS)
        site = site_label(flow)
        status = flow.response.status_code if flow.response else None
        label = decision_label(decision)
        self.requests.labels(site, label, status_class(status)).inc()
        self.duration.labels(label).observe(elapsed_seconds(flow))
        if (
            decision == Decision.INJECT
            and flow.response is not None
            and rejection_reason(flow.response.status_code, flow.response.headers) is not None
        ):
            self.auth_failures.labels(site).inc()


class AdminEndpoint:
    """Serves `/healthz` and `/metrics` on 127.0.0.1, in the proxy's own event loop.

    The port is bound when the settings are applied (so a taken port is a start-up error) and
    served once the proxy runs. Sharing the event loop means a wedged proxy fails its probe.
    """

    def __init__(self, credential_problem: CredentialHealth, registry: CollectorRegistry) -> None:
        self.credential_problem = credential_problem
        self.registry = registry
        self._socket: socket.socket | None = None
        self._server: asyncio.Server | None = None

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
                f"{ADMIN_PORT_ENV}: cannot listen on {ADMIN_HOST}:{port} ({reason}); choose a free port"
            ) from None

    async def running(self) -> None:
        if self._socket is None:
            return
        self._server = await asyncio.start_server(self._serve, sock=self._socket, limit=REQUEST_LIMIT)
        host, port = self._socket.getsockname()[:2]
        logger.info("admin endpoint on http://%s:%s (/healthz, /metrics)", host, port)

    def done(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.bind(None)

    def _listening(self) -> bool:
        return bool(ctx.master.addons.get("proxyserver").listen_addrs())

    def reply(self, method: str, path: str) -> tuple[int, str, bytes]:
        """Status, content type and body for one admin request."""
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n"
        route = path.partition("?")[0]
        if route == "/healthz":
            status, body = health(self._listening(), self.credential_problem())
            return status, "application/json", json.dumps(body).encode() + b"\n"
        if route == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)
        return 404, "text/plain", b"not found: try /healthz or /metrics\n"

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
    """`atlassian-auth-proxy health`: exit 0 when /healthz says ok, 1 otherwise (for HEALTHCHECK, probes)."""
    settings = load_settings(args.config)
    if not settings.admin_port:
        raise SettingsError(f"{ADMIN_PORT_ENV} is not set: set it to the admin port the proxy runs with")
    try:
        status, body = probe(settings.admin_port)
    except OSError as e:
        print(f"unhealthy: no admin endpoint on {ADMIN_HOST}:{settings.admin_port} ({e})")
        return 1
    print(body)
    return 0 if status == 200 else 1

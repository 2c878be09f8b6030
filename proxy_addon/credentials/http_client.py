"""The proxy's own outbound HTTP client: a verified HTTPS `GET` that goes where proxied requests go.

Uses the same CONNECT_TO redirect, upstream trust and upstream proxy as the proxy (`Reach`), so
`check` and `login` test exactly the path `run` uses, and the proxy's own requests (a scoped
site's cloudId; and through `credentials.outbound`, the confirmation of a 401, the
check after a pause and the boundaries' lookups) go where proxied ones go.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
from pydantic import SecretStr

from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.connect_rules import ConnectToRule, find_rule
from proxy_addon.policy.failures import failure_kind
from proxy_addon.policy.tokens import authorization_value
from proxy_addon.settings.model import Settings
from proxy_addon.settings.modes import UpstreamProxy

TIMEOUT = 15.0


class Unreachable(Exception):
    """The site could not be asked; the message names the host and the kind of failure."""


@dataclass(frozen=True)
class Reach:
    """How the proxy's own requests reach a site: CONNECT_TO, the extra upstream CA, UPSTREAM_PROXY."""

    connect_to: tuple[ConnectToRule, ...] = ()
    extra_ca: Path | None = None
    via: UpstreamProxy | None = None

    @classmethod
    def of(cls, settings: Settings) -> Reach:
        return cls(settings.connect_to, settings.upstream_ca_bundle, settings.upstream_proxy)

    def connection(self, host: str, port: int) -> http.client.HTTPSConnection:
        """HTTPS to `host:port` (SNI, Host, certificate name), verified, the way proxied requests go.

        Through UPSTREAM_PROXY it is a CONNECT tunnel, as mitmproxy's upstream mode makes: the
        corporate proxy resolves the site, and CONNECT_TO applies to the proxy's own name.
        """
        context = trust(self.extra_ca)
        if self.via is None:
            rule = find_rule(self.connect_to, host)
            return _RedirectedHTTPS(host, port, (rule.host, rule.port) if rule else (host, port), context)
        rule = find_rule(self.connect_to, self.via.host)
        proxy_host, proxy_port = (rule.host, rule.port) if rule else (self.via.host, self.via.port)
        connection = http.client.HTTPSConnection(proxy_host, proxy_port, context=context, timeout=TIMEOUT)
        via = self.via
        if via.user is not None:
            login = authorization_value(via.user, via.password or SecretStr(""))
            connection.set_tunnel(host, port, {"Proxy-Authorization": login.get_secret_value()})
        else:
            connection.set_tunnel(host, port)
        return connection


class _RedirectedHTTPS(http.client.HTTPSConnection):
    """HTTPS to `host` (SNI, Host, certificate name) over a TCP connection to `target`."""

    def __init__(self, host: str, port: int, target: tuple[str, int], context: ssl.SSLContext) -> None:
        super().__init__(host, port, context=context, timeout=TIMEOUT)
        self.target = target
        self.tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection(self.target, self.timeout)
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)


def trust(extra_ca: Path | None) -> ssl.SSLContext:
    """What the proxy's own requests trust upstream: the public CAs, and `UPSTREAM_CA_BUNDLE` if set."""
    context = ssl.create_default_context(cafile=certifi.where())
    if extra_ca is not None:
        context.load_verify_locations(cafile=str(extra_ca))
    return context


@dataclass(frozen=True)
class Exchanged:
    """A site's answer to one of the proxy's own requests: status, reason, header fields as sent, body."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool
    """The whole body is here: it was no larger than the limit the request was sent with."""


def exchange(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]],
    body: bytes | None,
    reach: Reach,
    limit: int = 1 << 20,
    deadline: float | None = None,
) -> Exchanged:
    """`method path` on `host:port` with `headers` (Host is added) and `body`; at most `limit` bytes of the answer.

    `TIMEOUT` bounds each wait for a byte; `deadline` (seconds) bounds the whole exchange, which a site
    sending its answer a byte at a time would otherwise stretch without end: the connection is cut then.
    Blocking: run it off the event loop.
    """
    connection = reach.connection(host, port)
    cut = threading.Event()
    watchdog = threading.Timer(deadline, _cut, (connection, cut)) if deadline is not None else None
    if watchdog is not None:
        watchdog.daemon = True
        watchdog.start()
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        data = response.read(limit + 1)
    except ssl.SSLCertVerificationError:
        raise Unreachable(f"cannot reach {host}: its TLS certificate is not trusted") from None
    except (OSError, http.client.HTTPException) as e:
        if cut.is_set():
            raise Unreachable(f"cannot reach {host}: no whole answer within {deadline:g} s") from None
        raise Unreachable(f"cannot reach {host}: {failure_kind(str(e))}") from None
    finally:
        if watchdog is not None:
            watchdog.cancel()
        connection.close()
    if cut.is_set():  # an answer without a length ends at the cut as if it were whole
        raise Unreachable(f"cannot reach {host}: no whole answer within {deadline:g} s")
    return Exchanged(response.status, response.reason, response.getheaders(), data[:limit], len(data) <= limit)


def _cut(connection: http.client.HTTPConnection, cut: threading.Event) -> None:
    """End an exchange past its deadline: the blocked read returns, and the exchange fails."""
    cut.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def get(host: str, port: int, path: str, headers: dict[str, str], reach: Reach) -> tuple[int, dict[str, str], bytes]:
    """`GET path` on `host:port` with `headers`: the status, headers (lowercased) and at most 1 MiB of body."""
    answer = exchange(host, port, "GET", path, [("Accept", "application/json"), *headers.items()], None, reach)
    return answer.status, {k.lower(): v for k, v in answer.headers}, answer.body


def fetch(host: str, port: int, path: str, credentials: Credentials, reach: Reach) -> tuple[int, dict[str, str], bytes]:
    """`GET path` on `host:port` as the site's own identity: the status, headers (lowercased) and body.

    The low-level HTTP of the proxy's own credentialed requests: only `credentials.outbound` calls
    it while the proxy runs, so token health and the clients' rates apply. Blocking: run it off
    the event loop.
    """
    return get(host, port, path, {"Authorization": credentials.authorization.get_secret_value()}, reach)


def json_object(body: bytes) -> dict[str, Any]:
    """The JSON object `body` holds, or an empty one for anything else."""
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}

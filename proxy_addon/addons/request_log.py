"""One log line per request: what happened, never a header value or a query value.

Text by default; with ATLASSIAN_PROXY_LOG_FORMAT=json each request is one JSON object (an
audit trail of who did what through the shared identity), and `JsonLines` turns every other
log line into a JSON object too. Both read the flow's record, as the metrics do, so the log's
`credentials=`/`decision` and the metrics' `decision` label always agree.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from mitmproxy import http, tls
from mitmproxy.log import LegacyLogEvents
from mitmproxy.utils.human import format_address

from proxy_addon.addons.prepared import Prepared
from proxy_addon.policy.failures import client_tls_failure, failure_kind
from proxy_addon.policy.record import FlowRecord
from proxy_addon.policy.text import escape_controls

logger = logging.getLogger("atlassian_auth_proxy.requests")
connections = logging.getLogger("atlassian_auth_proxy.connections")
"""Lines about a client connection rather than a request; through the root logger like any other line."""


def path_without_query_values(path: str) -> str:
    """`/search?jql=project%3DX&max=5` -> `/search?jql=…&max=…`: keys help, values may be private."""
    base, sep, query = path.partition("?")
    if not sep:
        return base
    keys = (part.partition("=")[0] for part in query.split("&") if part)
    return base + "?" + "&".join(f"{key}=…" for key in keys)


def elapsed_seconds(flow: http.HTTPFlow) -> float:
    end = flow.response.timestamp_end if flow.response and flow.response.timestamp_end else time.time()
    return end - flow.request.timestamp_start


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def target(request: http.Request) -> str:
    """Where a request went, for the text log: `https://host:443/path?key=…`, or `host:443` for a CONNECT,
    whose authority-form target has no scheme and no path."""
    if request.method == "CONNECT":
        return f"{request.host}:{request.port}"
    return f"{request.scheme}://{request.host}:{request.port}{path_without_query_values(request.path)}"


def describe(flow: http.HTTPFlow) -> str:
    request = flow.request
    if flow.error:
        outcome = f"error ({flow.error.msg})"
    elif flow.response:
        outcome = str(flow.response.status_code)
    else:
        outcome = "error (unknown)"
    facts = FlowRecord.of(flow.metadata)
    user = f"user={facts.user} " if facts.user is not None else ""
    upstream = f" upstream={facts.upstream}" if facts.upstream is not None else ""
    return (
        f"{request.method} {target(request)} {outcome} {elapsed_seconds(flow) * 1000:.0f}ms "
        f"{user}credentials={facts.decision}{upstream}"
    )


def record(flow: http.HTTPFlow) -> dict[str, Any]:
    """The JSON log object for one request; a CONNECT has no scheme and no path (null)."""
    request = flow.request
    peer = flow.client_conn.peername
    facts = FlowRecord.of(flow.metadata)
    connect = request.method == "CONNECT"
    return {
        "time": iso_time(request.timestamp_start),
        "client": format_address(peer) if peer else None,
        "user": facts.user,
        "method": request.method,
        "scheme": None if connect else request.scheme,
        "host": request.host,
        "port": request.port,
        "path": None if connect else path_without_query_values(request.path),
        "status": flow.response.status_code if flow.response else None,
        "error": failure_kind(flow.error.msg) if flow.error and not flow.response else None,
        "duration_ms": round(elapsed_seconds(flow) * 1000, 1),
        "decision": str(facts.decision),
        "upstream": facts.upstream,
    }


class JsonLines(logging.Formatter):
    """Every log line one JSON object: request lines as `record()` made them, others wrapped."""

    def format(self, log_record: logging.LogRecord) -> str:
        if log_record.name == logger.name:
            return log_record.getMessage()
        line = {
            "time": iso_time(log_record.created),
            "level": log_record.levelname.lower(),
            "logger": log_record.name,
            "message": log_record.getMessage(),
        }
        if log_record.exc_info:
            line["exception"] = self.formatException(log_record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def escaped(log_record: logging.LogRecord) -> bool:
    """A handler filter: the final message with its control characters escaped (see policy.text)."""
    log_record.msg = escape_controls(log_record.getMessage())
    log_record.args = None
    return True


def printing_handlers() -> list[logging.Handler]:
    """The root logger's handlers without mitmproxy's `LegacyLogEvents`: for loggers that write
    straight to the handlers that print (see `RequestLog`)."""
    return [h for h in logging.getLogger().handlers if not isinstance(h, LegacyLogEvents)]


class RequestLog:
    """Logs each request when it ends, and each CONNECT that failed or was refused (it has no other end).

    Request lines go straight to the handlers that print them, not through the root logger:
    there, mitmproxy's `LegacyLogEvents` turns every record into an `add_log` hook dispatched
    to every addon, which cost more than the rest of our per-request work together.
    """

    def __init__(self) -> None:
        self.json = False

    def use(self, prepared: Prepared) -> None:
        self.json = prepared.settings.log_format == "json"

    def running(self) -> None:
        """Every handler on the root logger (mitmproxy's, ours) escapes control characters a client
        chose; request lines reach those handlers directly (see the class docstring)."""
        for handler in logging.getLogger().handlers:
            if escaped not in handler.filters:
                handler.addFilter(escaped)
        logger.handlers = printing_handlers()
        logger.propagate = False

    def done(self) -> None:
        logger.handlers = []
        logger.propagate = True

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        self._log(flow)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        """A client that gave up on its TLS handshake with the proxy sends no request, so no request line
        would ever show it: one line for the connection, with its address and why (a fixed phrase). The
        most common cause is a client that does not trust the proxy's CA; some (Mono, .NET) just close."""
        peer = data.conn.peername
        server = data.context.server.address
        name = data.conn.sni or (server[0] if server else "an unknown host")
        why, untrusted = client_tls_failure(data.conn.error)
        hint = "; make it trust the proxy's CA (`atlassian-auth-proxy env` names the file)" if untrusted else ""
        connections.warning(
            "client %s: TLS handshake for %s failed: %s%s", format_address(peer) if peer else "?", name, why, hint
        )

    def response(self, flow: http.HTTPFlow) -> None:
        self._log(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._log(flow)

    def _log(self, flow: http.HTTPFlow) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        if self.json:
            logger.info("%s", json.dumps(record(flow), ensure_ascii=False))
        else:
            logger.info("%s", describe(flow))

"""Each request's audit record, the one the JSON log writes, also sent as an OTLP log record.

On when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` is set
(`settings/otlp.py`); then the OpenTelemetry SDK is imported (`otlp_sink.py`) and batches and
sends the records from a thread of its own. It runs in the same hooks as the request log, after
it, and reads the same flow record, so there is one OTLP record for each request the log records
and the two agree on the decision; a tunnel, never decrypted, has neither.

A record holds what the proxy decided and where the request really went, never what a client
chose to send along: no header value (User-Agent included), no query, no body, no peer address.
The counter of records never delivered is registered whether the export is on or not, so a
dashboard can always query it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mitmproxy import http
from prometheus_client import CollectorRegistry, Counter

from proxy_addon.addons.metrics import OTHER_SITE
from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.request_log import printing_handlers
from proxy_addon.policy.failures import failure_kind
from proxy_addon.policy.record import FlowRecord
from proxy_addon.settings.names import SettingsError
from proxy_addon.settings.otlp import OtlpSettings

if TYPE_CHECKING:
    from proxy_addon.addons.otlp_sink import OtlpSink

logger = logging.getLogger(__name__)

CLOSE_SECONDS = 0.5
"""How long stopping waits for the last records: after a drain of up to 8 s, the proxy must still
be gone inside the 10 s docker and podman wait before SIGKILL (a full drain, a hung collector and
this measured 8.8 s in the image)."""
INSTALL = "pip install 'atlassian-auth-proxy[otlp]'"


def text(value: str) -> str:
    """`value` as valid UTF-8 text: mitmproxy keeps undecodable bytes as lone surrogates, which
    protobuf cannot encode, and one such path would make the whole batch fail."""
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def audit_record(flow: http.HTTPFlow) -> tuple[str, dict[str, str | int]]:
    """The record's body (one line for people) and its attributes."""
    request = flow.request
    facts = FlowRecord.of(flow.metadata)
    decision = str(facts.decision)
    method, host, path = text(request.method), text(request.host), text(request.path.partition("?")[0])
    attributes: dict[str, str | int] = {
        "http.request.method": method,
        "server.address": host,
        "atlassian_proxy.decision": decision,
        "atlassian_proxy.site": facts.site or OTHER_SITE,
    }
    if path:
        attributes["url.path"] = path
    if flow.response is not None:
        outcome = str(flow.response.status_code)
        attributes["http.response.status_code"] = flow.response.status_code
    else:
        outcome = attributes["error.type"] = failure_kind(flow.error.msg) if flow.error else "unknown"
    if facts.user is not None:
        attributes["atlassian_proxy.client"] = attributes["user.name"] = facts.user
    if facts.upstream is not None:
        attributes["atlassian_proxy.upstream"] = facts.upstream
    return f"{method} {host}{path} {outcome} {decision}", attributes


class AuditExport:
    """Sends the audit records to an OTLP collector when one is configured; counts what it could not."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.dropped = Counter(
            "atlassian_proxy_audit_export_dropped",
            "Audit records never delivered to the OTLP collector (queue full, or export failed after retries)",
            registry=CollectorRegistry() if registry is None else registry,
        )
        self.settings: OtlpSettings | None = None
        self.sink: OtlpSink | None = None

    def use(self, prepared: Prepared) -> None:
        if prepared.otlp == self.settings:
            return
        self.done()
        if prepared.otlp is not None:
            self.sink = self._open(prepared.otlp, self.dropped)
        self.settings = prepared.otlp

    @staticmethod
    def _open(settings: OtlpSettings, dropped: Counter) -> OtlpSink:
        try:
            from proxy_addon.addons.otlp_sink import OtlpSink
        except ImportError:
            raise SettingsError(
                f"{settings.variable} is set, but the OpenTelemetry packages are not installed: {INSTALL}"
            ) from None
        return OtlpSink(settings, dropped)

    def running(self) -> None:
        """The SDK logs from its worker thread: its lines go straight to the handlers that print, as
        request lines do, not through mitmproxy's per-record event (see `RequestLog`)."""
        if self.sink is None:
            return
        otel = logging.getLogger("opentelemetry")
        otel.handlers = printing_handlers()
        otel.propagate = False
        logger.info("audit records also go to the OTLP collector at %s", self.sink.settings.shown_endpoint)

    def done(self) -> None:
        if self.sink is None:
            return
        sink, self.sink, self.settings = self.sink, None, None
        if not sink.close(CLOSE_SECONDS):
            logger.warning("OTLP: stopped without the audit records still being sent (collector slow or down)")

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        self._send(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._send(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._send(flow)

    def _send(self, flow: http.HTTPFlow) -> None:
        if self.sink is not None:
            body, attributes = audit_record(flow)
            self.sink.emit(flow.request.timestamp_start, body, attributes)

"""The OpenTelemetry SDK's pipeline for the audit records, and the count of what never reached the collector.

Imported only when an OTLP endpoint is set (`AuditExport.use`): without the `[otlp]` extra the
import fails and the start stops naming it. The pipeline is the SDK's own: a `LoggerProvider`, a
`BatchLogRecordProcessor` whose worker thread batches, encodes and sends, and the OTLP/HTTP
`OTLPLogExporter`, which retries transient failures with backoff within its timeout. It is given
the endpoint checked at start (the one the proxy logs) and reads the other `OTEL_EXPORTER_OTLP_*`
variables (headers, timeout, compression, certificates) itself. On the request path a record is only built and
appended to the processor's queue.

Nothing in the SDK counts what it loses, so this module does:
- an export that failed after the exporter's retries: `Counted` wraps the exporter and counts
  the batch;
- a full queue: the processor's queue is a bounded deque that drops its oldest record silently,
  so the proxy never lets it fill. It counts records emitted and records handed to the exporter
  (the worker takes records off the queue just before it hands them over, so the difference is
  never less than what the queue holds) and drops, counting, a record that would not fit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import requests
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from prometheus_client import Counter

from proxy_addon.settings.otlp import OtlpSettings

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "atlassian-auth-proxy"
SCOPE = "atlassian_auth_proxy.audit"
EVENT_NAME = "atlassian_proxy.audit"
WARN_EVERY_SECONDS = 60.0
NO_CONTEXT = Context()
"""No trace context: the proxy makes no spans, and looking up the current one costs per record."""


def resource() -> Resource:
    """The SDK's resource from OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, with our service
    name unless one of them names the service (`Resource.create` alone would put our default
    over theirs, or its own `unknown_service` in place of ours)."""
    named = OTELResourceDetector().detect().attributes.get(SERVICE_NAME)
    return Resource.create({SERVICE_NAME: named or DEFAULT_SERVICE_NAME})


def direct_session() -> requests.Session:
    """Straight to the collector, as the proxy's own requests go: not through HTTPS_PROXY or
    HTTP_PROXY, which in a shell set up for clients point at this proxy, and each export would
    then be a request it records, and exports again."""
    session = requests.Session()
    session.trust_env = False
    return session


class Counted(LogRecordExporter):
    """The SDK's OTLP exporter, counting every record of a batch it did not deliver."""

    def __init__(self, exporter: LogRecordExporter, dropped: Counter) -> None:
        self.exporter = exporter
        self.dropped = dropped
        self.handed = 0
        """Records the processor has taken off its queue (written by its worker thread only)."""
        self._shut = threading.Lock()
        self._is_shut = False

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.handed += len(batch)
        result = LogRecordExportResult.FAILURE
        try:
            result = self.exporter.export(batch)
        finally:
            if result is not LogRecordExportResult.SUCCESS:
                self.dropped.inc(len(batch))
        return result

    def shutdown(self) -> None:
        """Once: the processor calls it too, after the proxy may already have cut a hung export short."""
        with self._shut:
            if self._is_shut:
                return
            self._is_shut = True
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class OtlpSink:
    """One `LoggerProvider` sending audit records to the configured collector."""

    def __init__(self, settings: OtlpSettings, dropped: Counter) -> None:
        self.settings = settings
        self.dropped = dropped
        self.exporter = Counted(OTLPLogExporter(endpoint=settings.endpoint, session=direct_session()), dropped)
        self.provider = LoggerProvider(resource=resource(), shutdown_on_exit=False)
        self.provider.add_log_record_processor(
            BatchLogRecordProcessor(
                self.exporter,
                schedule_delay_millis=settings.schedule_delay_ms,
                max_export_batch_size=settings.max_export_batch_size,
                max_queue_size=settings.max_queue_size,
            )
        )
        self.logger = self.provider.get_logger(SCOPE)
        self.emitted = 0
        self._warned = -WARN_EVERY_SECONDS

    def emit(self, timestamp: float, body: str, attributes: dict[str, str | int]) -> None:
        """Queue one record; a full queue drops it, counted (warned about once a minute)."""
        if self.emitted - self.exporter.handed >= self.settings.max_queue_size:
            self.dropped.inc()
            self._warn_full()
            return
        self.emitted += 1
        self.logger.emit(
            LogRecord(
                timestamp=int(timestamp * 1e9),
                observed_timestamp=time.time_ns(),
                context=NO_CONTEXT,
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body=body,
                attributes=attributes,
                event_name=EVENT_NAME,
            )
        )

    def _warn_full(self) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_SECONDS:
            self._warned = now
            logger.warning(
                "OTLP: %d audit records wait for the collector at %s; dropping new ones "
                "(counted in atlassian_proxy_audit_export_dropped_total)",
                self.settings.max_queue_size,
                self.settings.shown_endpoint,
            )

    def close(self, seconds: float) -> bool:
        """Send what is queued, waiting at most `seconds`; then stop an export still running.

        The SDK's shutdown waits up to 30 s for its worker, which a hung collector can hold for
        the exporter's whole timeout: it runs in a thread of its own here, and past `seconds`
        the exporter is shut down, which ends its retries and closes its connections.
        """
        closing = threading.Thread(target=self.provider.shutdown, name="otlp-shutdown", daemon=True)
        closing.start()
        closing.join(seconds)
        if not closing.is_alive():
            return True
        self.exporter.shutdown()
        return False

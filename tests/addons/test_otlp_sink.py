"""The OpenTelemetry SDK's pipeline for the audit records: its resource, its bounded queue and the count of
what never reached the collector, called directly against the stand-in collector (addons/test_audit_export.py
drives it through the hooks, e2e/test_otlp.py through the real proxy)."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from prometheus_client import CollectorRegistry, generate_latest

from proxy_addon.addons.audit_export import AuditExport
from proxy_addon.addons.otlp_sink import Counted, OtlpSink, direct_session
from proxy_addon.settings.otlp import OtlpSettings

from support import otlp_collector

DROPPED = "atlassian_proxy_audit_export_dropped_total"
BODY = "GET acme.atlassian.net/rest/api/3/myself 200 injected"
ATTRIBUTES: dict[str, str | int] = {"http.request.method": "GET", "atlassian_proxy.decision": "injected"}


def dropped(registry: CollectorRegistry) -> float:
    line = next(x for x in generate_latest(registry).decode().splitlines() if x.startswith(DROPPED + " "))
    return float(line.split()[1])


@pytest.fixture
def collector():
    running = otlp_collector.start()
    yield running
    running.shutdown()


def test_otel_service_name_names_the_service(collector, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "proxy-for-team-a")
    sink = OtlpSink(OtlpSettings(endpoint=collector.endpoint + "/v1/logs", schedule_delay_ms=50), AuditExport().dropped)
    sink.emit(time.time(), BODY, ATTRIBUTES)
    (record,) = collector.wait_records(1, timeout=10)
    assert sink.close(5)
    assert record.resource["service.name"] == "proxy-for-team-a"


def test_exports_go_straight_to_the_collector_never_through_the_environments_proxy():
    assert direct_session().trust_env is False


def test_a_full_queue_drops_new_records_and_counts_each(collector):
    """The collector holds the first export, so the queue fills behind it."""
    collector.behaviour.hold = True
    registry = CollectorRegistry()
    settings = OtlpSettings(
        endpoint=collector.endpoint + "/v1/logs", schedule_delay_ms=5000, max_queue_size=4, max_export_batch_size=4
    )
    sink = OtlpSink(settings, AuditExport(registry).dropped)
    for _ in range(4):
        sink.emit(time.time(), BODY, ATTRIBUTES)
    collector.wait(lambda c: c.posts == 1, 10, "the first export")
    for _ in range(7):
        sink.emit(time.time(), BODY, ATTRIBUTES)
    assert dropped(registry) == 3
    collector.behaviour.release.set()
    records = collector.wait_records(8, timeout=15)
    assert sink.close(5)
    assert len(records) == 8
    assert dropped(registry) == 3


class Failing(LogRecordExporter):
    def __init__(self, result: LogRecordExportResult | None) -> None:
        self.result = result

    def export(self, batch):
        if self.result is None:
            raise ConnectionError("refused")
        return self.result

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@pytest.mark.parametrize(("result", "count"), [(LogRecordExportResult.SUCCESS, 0), (LogRecordExportResult.FAILURE, 3)])
def test_a_failed_export_counts_every_record_of_its_batch(result, count):
    registry = CollectorRegistry()
    export = AuditExport(registry)
    Counted(Failing(result), export.dropped).export([object()] * 3)
    assert dropped(registry) == count


def test_an_export_that_raises_counts_too():
    registry = CollectorRegistry()
    export = AuditExport(registry)
    with pytest.raises(ConnectionError):
        Counted(Failing(None), export.dropped).export([object()] * 2)
    assert dropped(registry) == 2

"""The audit export's hooks, settings and drop count, called directly, against the stand-in collector."""

from __future__ import annotations

import sys

import pytest
from mitmproxy.test import taddons, tflow, tutils
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from prometheus_client import CollectorRegistry, generate_latest

from proxy_addon.addons.audit_export import AuditExport, audit_record
from proxy_addon.addons.otlp_sink import Counted
from proxy_addon.addons.prepared import Prepared
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.settings.names import SettingsError
from proxy_addon.settings.otlp import OtlpSettings, otlp_settings

from support import otlp_collector

DROPPED = "atlassian_proxy_audit_export_dropped_total"


def flow(path: bytes = b"/rest/api/3/search?jql=project%3DSECRET", user: str | None = "carol", status: int = 200):
    f = tflow.tflow(req=tutils.treq(host="acme.atlassian.net", path=path), resp=tutils.tresp(status_code=status))
    f.request.headers["Host"] = "spoofed.example"
    f.request.headers["User-Agent"] = "secret-agent/7"
    record = FlowRecord.of(f.metadata)
    record.decision, record.site, record.user = Decision.INJECT, "default", user
    return f


def dropped(registry: CollectorRegistry) -> float:
    line = next(x for x in generate_latest(registry).decode().splitlines() if x.startswith(DROPPED + " "))
    return float(line.split()[1])


@pytest.fixture
def collector():
    running = otlp_collector.start()
    yield running
    running.shutdown()


def test_the_record_holds_where_it_really_went_the_path_without_query_and_who():
    body, attributes = audit_record(flow())
    assert attributes == {
        "http.request.method": "GET",
        "server.address": "acme.atlassian.net",
        "url.path": "/rest/api/3/search",
        "http.response.status_code": 200,
        "atlassian_proxy.decision": "injected",
        "atlassian_proxy.site": "default",
        "atlassian_proxy.client": "carol",
        "user.name": "carol",
    }
    assert body == "GET acme.atlassian.net/rest/api/3/search 200 injected"


def test_without_a_login_there_is_no_client_and_a_failed_request_names_its_failure():
    f = flow(user=None)
    f.response = None
    f.error = tflow.terr("Connection refused")
    FlowRecord.of(f.metadata).site = None
    _, attributes = audit_record(f)
    assert "user.name" not in attributes
    assert "atlassian_proxy.client" not in attributes
    assert "http.response.status_code" not in attributes
    assert attributes["atlassian_proxy.site"] == "other"
    assert attributes["error.type"] == "the connection was refused"


def test_undecodable_bytes_in_a_path_still_encode():
    """mitmproxy keeps them as lone surrogates; protobuf refuses those, and would drop the whole batch."""
    _, attributes = audit_record(flow(path=b"/wiki/\xff\xfe?q=1"))
    assert attributes["url.path"] == "/wiki/\\xff\\xfe"
    attributes["url.path"].encode("utf-8")


def test_records_reach_the_collector_with_the_resource_and_one_per_hook(collector, monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    export = AuditExport()
    settings = OtlpSettings(endpoint=collector.endpoint + "/v1/logs", schedule_delay_ms=50)
    with taddons.context(export):
        export.use(Prepared(otlp=settings))
        export.response(flow())
        connect = flow(path=b"", user=None, status=407)
        connect.request.method = "CONNECT"
        export.http_connect_error(connect)
        records = collector.wait_records(2, timeout=10)
        export.done()
    assert [r.attributes["http.request.method"] for r in records] == ["GET", "CONNECT"]
    assert "url.path" not in records[1].attributes
    assert records[0].resource["service.name"] == "atlassian-auth-proxy"
    assert records[0].resource["deployment.environment"] == "test"
    assert records[0].severity_text == "INFO"
    assert records[0].event_name == "atlassian_proxy.audit"
    assert len(collector.records) == 2


def test_otel_service_name_names_the_service(collector, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "proxy-for-team-a")
    export = AuditExport()
    with taddons.context(export):
        export.use(Prepared(otlp=OtlpSettings(endpoint=collector.endpoint + "/v1/logs", schedule_delay_ms=50)))
        export.response(flow())
        (record,) = collector.wait_records(1, timeout=10)
        export.done()
    assert record.resource["service.name"] == "proxy-for-team-a"


def test_a_full_queue_drops_new_records_and_counts_each(collector):
    """The collector holds the first export, so the queue fills behind it."""
    collector.behaviour.hold = True
    registry = CollectorRegistry()
    export = AuditExport(registry)
    settings = OtlpSettings(
        endpoint=collector.endpoint + "/v1/logs", schedule_delay_ms=5000, max_queue_size=4, max_export_batch_size=4
    )
    with taddons.context(export):
        export.use(Prepared(otlp=settings))
        for _ in range(4):
            export.response(flow())
        collector.wait(lambda c: c.posts == 1, 10, "the first export")
        for _ in range(7):
            export.response(flow())
        assert dropped(registry) == 3
        collector.behaviour.release.set()
        records = collector.wait_records(8, timeout=15)
        export.done()
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


def test_the_counter_is_there_from_zero_without_otlp_and_nothing_is_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "proxy_addon.addons.otlp_sink", raising=False)
    registry = CollectorRegistry()
    export = AuditExport(registry)
    with taddons.context(export):
        export.use(Prepared())
        export.response(flow())
        export.running()
    assert dropped(registry) == 0
    assert "proxy_addon.addons.otlp_sink" not in sys.modules


def test_asking_for_otlp_without_the_packages_names_what_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "proxy_addon.addons.otlp_sink", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk._logs", None)
    export = AuditExport()
    settings = OtlpSettings(endpoint="http://127.0.0.1:4318/v1/logs", variable="OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
    with pytest.raises(SettingsError) as raised:
        export.use(Prepared(otlp=settings))
    assert str(raised.value) == (
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is set, but the OpenTelemetry packages are not installed: "
        "pip install 'atlassian-auth-proxy[otlp]'"
    )


def test_the_encoder_takes_what_the_record_holds():
    """Every attribute value is a type OTLP encodes; a bad one would fail the whole batch."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    body, attributes = audit_record(flow(path=b"/\xff"))
    provider.get_logger("t").emit(body=body, attributes=attributes)
    assert encode_logs(memory.get_finished_logs()).SerializeToString()


# --- the variables -------------------------------------------------------------------------------

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector.example:4318/"}


def test_no_endpoint_means_no_export_and_nothing_checked():
    assert otlp_settings({}) is None
    assert otlp_settings({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_BLRP_SCHEDULE_DELAY": "x"}) is None
    assert otlp_settings({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}) is None


def test_the_logs_endpoint_is_used_as_it_is_and_the_general_one_gets_the_logs_path():
    assert otlp_settings(ENDPOINT) == OtlpSettings(endpoint="http://collector.example:4318/v1/logs")
    both = {**ENDPOINT, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://logs.example/ingest"}
    assert otlp_settings(both).endpoint == "https://logs.example/ingest"
    assert otlp_settings(both).variable == "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"


def test_the_logged_endpoint_leaves_out_userinfo_and_query():
    settings = otlp_settings({"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://u:pw@logs.example:4318/v1/logs?key=k"})
    assert settings.shown_endpoint == "https://logs.example:4318/v1/logs"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
            "OTEL_EXPORTER_OTLP_ENDPOINT: expected the http:// or https:// URL of an OTLP collector",
        ),
        (
            {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://collector:99999"},
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: expected the http:// or https:// URL",
        ),
        (
            {**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported; the audit export speaks http/protobuf only",
        ),
        (
            {
                **ENDPOINT,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/json",
            },
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/json' is not supported",
        ),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_TIMEOUT": "10000"}, "OTEL_EXPORTER_OTLP_TIMEOUT: expected seconds above 0"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "soon"}, "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: expected seconds"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION: expected one of"),
        ({**ENDPOINT, "OTEL_BLRP_SCHEDULE_DELAY": "30000"}, "OTEL_BLRP_SCHEDULE_DELAY: expected from 1 to 5000"),
        ({**ENDPOINT, "OTEL_BLRP_MAX_QUEUE_SIZE": "0"}, "OTEL_BLRP_MAX_QUEUE_SIZE: expected a positive whole number"),
        (
            {**ENDPOINT, "OTEL_BLRP_MAX_QUEUE_SIZE": "100", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "512"},
            "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: expected from 1 to 100",
        ),
        ({**ENDPOINT, "OTEL_RESOURCE_ATTRIBUTES": "team=a,oops"}, "OTEL_RESOURCE_ATTRIBUTES: expected comma-separated"),
        (
            {**ENDPOINT, "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"},
            "OTEL_EXPORTER_OTLP_CERTIFICATE: no such",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(env, message):
    with pytest.raises(SettingsError) as raised:
        otlp_settings(env)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_a_bad_header_entry_is_refused_without_showing_the_value():
    with pytest.raises(SettingsError) as raised:
        otlp_settings({**ENDPOINT, "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=fine,collector-s3cret"})
    assert str(raised.value) == "OTEL_EXPORTER_OTLP_HEADERS: expected comma-separated key=value entries"

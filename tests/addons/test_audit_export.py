"""The audit export's record and hooks, called directly, against the stand-in collector (addons/test_otlp_sink.py has
the SDK's pipeline and its drop count, settings/test_otlp.py the variables)."""

from __future__ import annotations

import sys

import pytest
from mitmproxy.test import taddons, tflow, tutils
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from prometheus_client import CollectorRegistry, generate_latest

from proxy_addon.addons.audit_export import AuditExport, audit_record
from proxy_addon.addons.prepared import Prepared
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.settings.names import SettingsError
from proxy_addon.settings.otlp import OtlpSettings

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


def test_the_record_says_whether_a_warm_connection_carried_the_request():
    sent = flow()
    assert "atlassian_proxy.upstream" not in audit_record(sent)[1]
    FlowRecord.of(sent.metadata).upstream = "new"
    assert audit_record(sent)[1]["atlassian_proxy.upstream"] == "new"

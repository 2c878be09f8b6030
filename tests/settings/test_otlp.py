"""The OTEL_* variables the audit export reads: off without an endpoint, each bad value one line naming the
variable (addons/test_audit_export.py sends records with them)."""

from __future__ import annotations

import pytest

from proxy_addon.settings.names import SettingsError
from proxy_addon.settings.otlp import OtlpSettings, otlp_settings

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

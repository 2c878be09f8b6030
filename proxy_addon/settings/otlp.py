"""OpenTelemetry's own variables for the audit export: whether it is on, and each value checked once at start.

They are OpenTelemetry's names, not ours (no `ATLASSIAN_PROXY_` prefix), and the SDK reads most
of them again itself when it builds the exporter and the resource. It does not refuse a bad
value: it logs a warning and uses its default, or skips the entry, so a typo would quietly send
records elsewhere, unauthenticated or never. Here every value the export depends on is checked
first, and a bad one stops the start with one line naming the variable. Header values are
secrets (a collector's API key): no message shows them.

Two bounds are ours: the batch delay is at most `MAX_SCHEDULE_DELAY_MS`, so a record reaches the
collector within 8 s, and an export's timeout at most `MAX_TIMEOUT_SECONDS`, so records flow again
within 15 s of a hung collector answering. The Python SDK reads the timeout in seconds where the
specification says milliseconds; the bound also catches a value meant as milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from proxy_addon.settings.names import SettingsError

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
LOGS_ENDPOINT = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"
PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
LOGS_PROTOCOL = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"
SDK_DISABLED = "OTEL_SDK_DISABLED"
HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
LOGS_HEADERS = "OTEL_EXPORTER_OTLP_LOGS_HEADERS"
SECRET_VARIABLES = frozenset({HEADERS, LOGS_HEADERS})
"""OpenTelemetry's variables that may hold a secret of the proxy: a collector's API key in a header."""
SUPPORTED_PROTOCOL = "http/protobuf"
LOGS_PATH = "v1/logs"
"""What the SDK appends to `OTEL_EXPORTER_OTLP_ENDPOINT`; `..._LOGS_ENDPOINT` is used as it is."""

COMPRESSIONS = frozenset({"none", "gzip", "deflate"})
MAX_SCHEDULE_DELAY_MS = 5000
MAX_TIMEOUT_SECONDS = 10.0
DEFAULT_SCHEDULE_DELAY_MS = 1000
DEFAULT_MAX_QUEUE_SIZE = 2048
DEFAULT_MAX_EXPORT_BATCH_SIZE = 512
"""The SDK's own defaults, named here because the export's queue bound is counted by the proxy."""


@dataclass(frozen=True)
class OtlpSettings:
    """The audit export, on: where records go and how the batching processor is set."""

    endpoint: str
    """The logs URL the exporter posts to, as the SDK resolves it."""
    variable: str = ENDPOINT
    """The variable that set it, for messages."""
    schedule_delay_ms: int = DEFAULT_SCHEDULE_DELAY_MS
    max_queue_size: int = DEFAULT_MAX_QUEUE_SIZE
    max_export_batch_size: int = DEFAULT_MAX_EXPORT_BATCH_SIZE

    @property
    def shown_endpoint(self) -> str:
        """The endpoint for the log: without userinfo or query, which may hold credentials."""
        parts = urlsplit(self.endpoint)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _value(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of `names` set to something, with its name: the one the SDK reads (it takes an empty
    value as unset, and the first name, the logs-specific one, over the general one)."""
    for name in names:
        if value := environ.get(name):
            return name, value
    return None


def _collector_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def _endpoint(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(the variable, the logs URL it makes)."""
    found = _value(environ, LOGS_ENDPOINT, ENDPOINT)
    if found is None:
        return None
    name, value = found
    if not _collector_url(value):
        raise SettingsError(
            f"{name}: expected the http:// or https:// URL of an OTLP collector, such as http://127.0.0.1:4318"
        )
    return name, value if name == LOGS_ENDPOINT else f"{value.removesuffix('/')}/{LOGS_PATH}"


def _protocol(environ: Mapping[str, str]) -> None:
    found = _value(environ, LOGS_PROTOCOL, PROTOCOL)
    if found is not None and found[1] != SUPPORTED_PROTOCOL:
        name, value = found
        raise SettingsError(f"{name}: {value!r} is not supported; the audit export speaks {SUPPORTED_PROTOCOL} only")


def _integer(environ: Mapping[str, str], name: str, default: int, largest: int | None = None) -> int:
    found = _value(environ, name)
    if found is None:
        return default
    try:
        number = int(found[1])
    except ValueError:
        number = 0
    if number < 1 or (largest is not None and number > largest):
        bound = f"from 1 to {largest}" if largest is not None else "a positive whole number"
        raise SettingsError(f"{name}: expected {bound}, not {found[1]!r}")
    return number


def _timeout(environ: Mapping[str, str]) -> None:
    found = _value(environ, "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    if found is None:
        return
    name, value = found
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise SettingsError(
            f"{name}: expected seconds above 0 and at most {MAX_TIMEOUT_SECONDS:g} "
            f"(OpenTelemetry's Python SDK reads it in seconds), not {value!r}"
        )


def _compression(environ: Mapping[str, str]) -> None:
    found = _value(environ, "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")
    if found is not None and found[1].lower() not in COMPRESSIONS:
        raise SettingsError(f"{found[0]}: expected one of {', '.join(sorted(COMPRESSIONS))}, not {found[1]!r}")


def _pairs(environ: Mapping[str, str], *names: str, secret: bool = False) -> None:
    """`key=value,key=value`: an entry without `=` or a key is refused (the SDK would skip it)."""
    found = _value(environ, *names)
    if found is None:
        return
    for entry in found[1].split(","):
        key, sep, _ = entry.partition("=")
        if entry.strip() and (not sep or not key.strip()):
            shown = "" if secret else f": {entry.strip()!r}"
            raise SettingsError(f"{found[0]}: expected comma-separated key=value entries{shown}")


def _files(environ: Mapping[str, str]) -> None:
    for kind in ("CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"):
        found = _value(environ, f"OTEL_EXPORTER_OTLP_LOGS_{kind}", f"OTEL_EXPORTER_OTLP_{kind}")
        if found is not None and not Path(found[1]).is_file():
            raise SettingsError(f"{found[0]}: no such file: {found[1]}")


def otlp_settings(environ: Mapping[str, str]) -> OtlpSettings | None:
    """The audit export's settings, or None when no endpoint is set (or the SDK is disabled): then
    nothing is read further, nothing is checked and nothing is sent."""
    if environ.get(SDK_DISABLED, "").strip().lower() == "true":
        return None
    found = _endpoint(environ)
    if found is None:
        return None
    _protocol(environ)
    _timeout(environ)
    _compression(environ)
    _pairs(environ, LOGS_HEADERS, HEADERS, secret=True)
    _pairs(environ, "OTEL_RESOURCE_ATTRIBUTES")
    _files(environ)
    queue = _integer(environ, "OTEL_BLRP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE)
    return OtlpSettings(
        endpoint=found[1],
        variable=found[0],
        schedule_delay_ms=_integer(
            environ, "OTEL_BLRP_SCHEDULE_DELAY", DEFAULT_SCHEDULE_DELAY_MS, MAX_SCHEDULE_DELAY_MS
        ),
        max_queue_size=queue,
        max_export_batch_size=_integer(
            environ, "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", min(DEFAULT_MAX_EXPORT_BATCH_SIZE, queue), queue
        ),
    )

"""A stand-in OTLP/HTTP collector on loopback: decodes each `ExportLogsServiceRequest` with the
`opentelemetry-proto` package and keeps every log record it received, as plain values.

It can be slow (`delay` seconds per export), hold exports until released, or answer another
status (500, 503) instead of 200; `posts` counts every export request whatever it answered.
`python tests/support/otlp_collector.py --port N` runs one as a process (the bench's collector).
"""

from __future__ import annotations

import argparse
import gzip
import signal
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

LOGS_PATH = "/v1/logs"


def plain(value: AnyValue) -> Any:
    """An OTLP AnyValue as the Python value it holds (the kinds a log record of ours can hold)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: plain(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind)


@dataclass
class Received:
    """One log record as the collector got it."""

    resource: dict[str, Any]
    scope: str
    attributes: dict[str, Any]
    body: Any
    time_unix_nano: int
    severity_text: str
    event_name: str
    arrived: float
    """`time.monotonic()` when its export request arrived."""


@dataclass
class Behaviour:
    status: int = 200
    delay: float = 0.0
    release: threading.Event = field(default_factory=threading.Event)
    """Exports wait for this while `hold` is true."""
    hold: bool = False


class Collector:
    """The collector's state, shared with its handler threads."""

    def __init__(self) -> None:
        self.records: list[Received] = []
        self.posts = 0
        self.behaviour = Behaviour()
        self.arrived = threading.Condition()
        self.server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def receive(self, body: bytes) -> int:
        """Keep the records of one export request; the status to answer with."""
        behaviour = self.behaviour
        now = time.monotonic()
        with self.arrived:
            self.posts += 1
            self.arrived.notify_all()
        if behaviour.hold:
            behaviour.release.wait(60)
        if behaviour.delay:
            time.sleep(behaviour.delay)
        if behaviour.status != 200:
            return behaviour.status
        request = ExportLogsServiceRequest.FromString(body)
        received = [
            Received(
                resource={a.key: plain(a.value) for a in resource_logs.resource.attributes},
                scope=scope_logs.scope.name,
                attributes={a.key: plain(a.value) for a in record.attributes},
                body=plain(record.body),
                time_unix_nano=record.time_unix_nano,
                severity_text=record.severity_text,
                event_name=record.event_name,
                arrived=now,
            )
            for resource_logs in request.resource_logs
            for scope_logs in resource_logs.scope_logs
            for record in scope_logs.log_records
        ]
        with self.arrived:
            self.records.extend(received)
            self.arrived.notify_all()
        return 200

    def wait(self, predicate, timeout: float, what: str) -> None:
        """Wait (no polling sleep) until `predicate(self)` holds."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"the collector timed out waiting for {what} ({len(self.records)} records)")

    def wait_records(self, count: int, timeout: float = 15.0) -> list[Received]:
        self.wait(lambda c: len(c.records) >= count, timeout, f"{count} records")
        return list(self.records)

    def shutdown(self) -> None:
        self.behaviour.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def handler_for(collector: Collector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            status = collector.receive(body) if self.path == LOGS_PATH else 404
            answer = ExportLogsServiceResponse().SerializeToString() if status == 200 else b""
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the proxy gave up on this export (it stopped, or its timeout passed)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def start(port: int = 0) -> Collector:
    """A collector on 127.0.0.1:`port` (0: a free one), serving from a thread until `shutdown()`."""
    collector = Collector()
    server = ThreadingHTTPServer(("127.0.0.1", port), handler_for(collector))
    server.daemon_threads = True
    collector.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return collector


def main() -> None:
    """Serve until SIGTERM or SIGINT, then print how many export requests and records arrived."""
    parser = argparse.ArgumentParser(description="A stand-in OTLP/HTTP logs collector on 127.0.0.1.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    collector = start(args.port)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        collector.shutdown()
        print(f"received {collector.posts} export requests, {len(collector.records)} records", flush=True)


if __name__ == "__main__":
    main()

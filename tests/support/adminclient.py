"""Reading the admin endpoint of a running proxy: its port from the log, /healthz, /metrics."""

from __future__ import annotations

import http.client
import json
import re

from prometheus_client.parser import text_string_to_metric_families

ADMIN_LINE = re.compile(r"admin endpoint on http://127\.0\.0\.1:(\d+)")


def admin_port(output: str) -> int:
    match = ADMIN_LINE.search(output)
    assert match, f"no admin endpoint line in:\n{output}"
    return int(match[1])


def get(port: int, path: str, method: str = "GET") -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.getheader("content-type", ""), response.read().decode()
    finally:
        connection.close()


def healthz(port: int) -> tuple[int, dict[str, str]]:
    status, content_type, body = get(port, "/healthz")
    assert content_type == "application/json"
    return status, json.loads(body)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition as {(name, labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)

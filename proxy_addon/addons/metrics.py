"""Prometheus metrics, counted from the flow's record, so they agree with the request log.

Label values are a fixed vocabulary (decision, status class), a configured site's name, or the
name of the proxy login a request authenticated with (a `[[clients]]` name or PROXY_AUTH's
user, `none` without one): never a path, a query, a header or anything else a client chose.
"""

from __future__ import annotations

from typing import Any

from mitmproxy import http, tls
from prometheus_client import CollectorRegistry, Counter, Histogram

from proxy_addon.addons.proxy_auth import Logins
from proxy_addon.addons.request_log import elapsed_seconds
from proxy_addon.policy.clients import NO_CLIENT
from proxy_addon.policy.record import Decision, FlowRecord

OTHER_SITE = "other"
TUNNELLED = "tunnelled"
NO_STATUS = "none"


def decision_label(decision: Decision) -> str:
    """Every `refused-*` decision is `refused`; the others as they are."""
    return "refused" if decision.startswith("refused-") else str(decision)


def status_class(status: int | None) -> str:
    return f"{status // 100}xx" if status else "error"


class Metrics:
    """Prometheus metrics in a registry of the proxy's own (so several proxies can share a process)."""

    def __init__(self, registry: CollectorRegistry | None = None, logins: Logins | None = None) -> None:
        """`logins` names who a connection's CONNECT authenticated as, for tunnels nobody decrypts."""
        self.logins = Logins() if logins is None else logins
        self.registry = CollectorRegistry() if registry is None else registry
        self.requests = Counter(
            "atlassian_proxy_requests",
            "Requests by site, decision, status class and client (tunnelled: connections, which are not decrypted)",
            ["site", "decision", "status_class", "client"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "atlassian_proxy_upstream_auth_failures",
            "Responses in which the site rejected the injected credentials",
            ["site"],
            registry=self.registry,
        )
        self._series: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        """Each label combination's counter and histogram, looked up once (label values are a closed set)."""
        self.duration = Histogram(
            "atlassian_proxy_request_duration_seconds",
            "Time from the request's first byte to the response's last byte",
            ["decision", "client"],
            registry=self.registry,
        )

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        if data.ignore_connection:
            client = self.logins.user_of(data.context.client) or NO_CLIENT
            self.requests.labels(OTHER_SITE, TUNNELLED, NO_STATUS, client).inc()

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._count(flow)

    def _count(self, flow: http.HTTPFlow) -> None:
        record = FlowRecord.of(flow.metadata)
        decision = record.decision
        site = record.site or OTHER_SITE
        response = flow.response
        label = decision_label(decision)
        key = (site, label, status_class(response.status_code if response else None), record.user or NO_CLIENT)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (self.requests.labels(*key), self.duration.labels(label, key[3]))
        series[0].inc()
        series[1].observe(elapsed_seconds(flow))
        if decision is Decision.INJECT and record.auth_failed:
            self.auth_failures.labels(site).inc()

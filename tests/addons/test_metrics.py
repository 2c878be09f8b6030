"""The metrics count from the flow's record with labels from a closed vocabulary, never what a client chose."""

from __future__ import annotations

from types import SimpleNamespace

from mitmproxy import http
from mitmproxy.test import tflow
from prometheus_client import generate_latest

from proxy_addon.addons.metrics import Metrics, decision_label, status_class
from proxy_addon.policy.record import Decision, FlowRecord


def test_every_refusal_is_one_label_and_statuses_are_counted_by_class():
    assert decision_label(Decision.OUT_OF_BOUNDS) == decision_label(Decision.CLEARTEXT) == "refused"
    assert decision_label(Decision.INJECT) == "injected"
    assert (status_class(204), status_class(503), status_class(None)) == ("2xx", "5xx", "error")


def test_a_request_is_counted_by_site_decision_status_and_client_with_no_path_or_query():
    metrics = Metrics()
    f = tflow.tflow()
    f.request.path = "/rest/api/3/search?jql=secret-query"
    f.response = http.Response.make(401)
    record = FlowRecord.of(f.metadata)
    record.decision, record.site, record.user, record.auth_failed = Decision.INJECT, "acme", "agent", True
    metrics.response(f)
    exposition = generate_latest(metrics.registry).decode()
    assert 'atlassian_proxy_requests_total{client="agent",decision="injected",site="acme",status_class="4xx"} 1.0' in (
        exposition
    )
    assert 'atlassian_proxy_upstream_auth_failures_total{site="acme"} 1.0' in exposition
    assert "secret-query" not in exposition
    assert "/rest/api" not in exposition


def test_an_unknown_site_and_no_login_have_labels_of_their_own():
    metrics = Metrics()
    metrics.error(tflow.tflow(err=True))
    metrics.tls_clienthello(
        SimpleNamespace(ignore_connection=True, context=SimpleNamespace(client=tflow.tclient_conn()))
    )
    exposition = generate_latest(metrics.registry).decode()
    assert 'client="none",decision="none",site="other",status_class="error"} 1.0' in exposition
    assert 'client="none",decision="tunnelled",site="other",status_class="none"} 1.0' in exposition

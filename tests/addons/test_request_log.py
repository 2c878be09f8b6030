"""The request log and the metrics read the same record, so they always agree on a decision."""

from __future__ import annotations

import json
import logging

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils
from prometheus_client import generate_latest

from proxy_addon.addons.metrics import Metrics
from proxy_addon.addons.request_log import RequestLog, record
from proxy_addon.policy.record import Decision, FlowRecord


def finished(decision: Decision | None, status: int, user: str | None = None) -> http.HTTPFlow:
    f = tflow.tflow(
        req=tutils.treq(path=b"/rest/api/3/search?jql=project%3DSECRET"), resp=tutils.tresp(status_code=status)
    )
    record = FlowRecord.of(f.metadata)
    if decision is not None:
        record.decision = decision
    record.user = user
    return f


@pytest.mark.parametrize(
    ("decision", "status", "label"),
    [
        (Decision.INJECT, 200, "injected"),
        (Decision.PROXY_AUTH, 407, "refused"),
        (Decision.HEAD_TOO_LARGE, 431, "refused"),
        (Decision.MISDIRECTED, 421, "refused"),
        (Decision.BACKED_OFF, 401, "backed-off"),
        (None, 502, "none"),
    ],
)
def test_log_and_metrics_name_the_same_decision(decision, status, label, caplog):
    log, metrics = RequestLog(), Metrics()
    log.json = True
    with taddons.context(log, metrics), caplog.at_level(logging.INFO, "atlassian_auth_proxy.requests"):
        f = finished(decision, status, user="carol")
        log.response(f)
        metrics.response(f)
    line = json.loads(caplog.records[-1].getMessage())
    assert line["decision"] == str(decision or Decision.NONE)
    assert line["user"] == "carol"
    assert "SECRET" not in caplog.text
    exposition = generate_latest(metrics.registry).decode()
    assert f'decision="{label}"' in exposition
    assert 'decision="passed"' not in exposition


def test_a_refused_connect_is_logged_and_counted(caplog):
    log, metrics = RequestLog(), Metrics()
    with taddons.context(log, metrics), caplog.at_level(logging.INFO, "atlassian_auth_proxy.requests"):
        f = finished(Decision.PROXY_AUTH, 407)
        f.request.method = "CONNECT"
        log.http_connect_error(f)
        metrics.http_connect_error(f)
    assert caplog.records[-1].getMessage().endswith("credentials=refused-proxy-auth")
    assert (
        'client="none",decision="refused",site="other",status_class="4xx"} 1.0'
        in generate_latest(metrics.registry).decode()
    )


def test_the_proxy_auth_user_is_logged_and_its_password_never():
    flow = tflow.tflow(req=tutils.treq(path=b"/rest/api/3/myself?x=1"), resp=True)
    assert record(flow)["user"] is None
    FlowRecord.of(flow.metadata).user = "alice"
    line = json.dumps(record(flow))
    assert json.loads(line)["user"] == "alice"
    assert "proxy-password" not in line


def test_a_request_on_a_warm_connection_says_so_in_text_and_json(caplog):
    log = RequestLog()
    flow = finished(Decision.INJECT, 200)
    with taddons.context(log), caplog.at_level(logging.INFO, "atlassian_auth_proxy.requests"):
        log.response(flow)
        FlowRecord.of(flow.metadata).upstream = "warm"
        log.response(flow)
        log.json = True
        log.response(flow)
    without, text, line = (r.getMessage() for r in caplog.records[-3:])
    assert "upstream=" not in without, "no field with the pool off"
    assert text.endswith("credentials=injected upstream=warm")
    assert json.loads(line)["upstream"] == "warm"
    assert record(finished(Decision.INJECT, 200))["upstream"] is None

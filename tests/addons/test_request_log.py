"""The request log and the metrics read the same record, so they always agree on a decision."""

from __future__ import annotations

import json
import logging

import mitmproxy
import pytest
from mitmproxy import http, tls
from mitmproxy.proxy import context
from mitmproxy.test import taddons, tflow, tutils
from prometheus_client import generate_latest

from proxy_addon.addons.metrics import Metrics
from proxy_addon.addons.request_log import RequestLog, describe, record
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


def connect_flow(status: int) -> http.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(method=b"CONNECT", scheme=b"", path=b"", authority=b"acme.atlassian.net:443"))
    f.response = tutils.tresp(status_code=status)
    return f


def test_a_failed_connect_names_the_host_and_port_without_an_empty_scheme(caplog):
    log = RequestLog()
    with taddons.context(log), caplog.at_level(logging.INFO, "atlassian_auth_proxy.requests"):
        log.http_connect_error(connect_flow(502))
        text = caplog.records[-1].getMessage()
        log.json = True
        log.http_connect_error(connect_flow(502))
        line = json.loads(caplog.records[-1].getMessage())
    assert text.startswith("CONNECT address:22 502 "), text  # treq's host and port
    assert "://" not in text
    assert (line["method"], line["scheme"], line["host"], line["port"], line["path"]) == (
        "CONNECT",
        None,
        "address",
        22,
        None,
    )


def test_other_requests_keep_scheme_host_port_and_path():
    flow = tflow.tflow(req=tutils.treq(path=b"/rest/api/3/myself?x=1"), resp=True)
    assert describe(flow).startswith("GET http://address:22/rest/api/3/myself?x=… 200 ")
    assert (record(flow)["scheme"], record(flow)["path"]) == ("http", "/rest/api/3/myself?x=…")


def failed_handshake(error: str, sni: str | None = "acme.atlassian.net") -> tls.TlsData:
    client = tflow.tclient_conn()
    client.peername = ("127.0.0.1", 50123)
    client.sni = sni
    client.error = error
    ctx = context.Context(client, mitmproxy.ctx.options)
    ctx.server.address = ("acme.atlassian.net", 443)
    return tls.TlsData(client, ctx)


@pytest.mark.parametrize(
    ("error", "why"),
    [
        (
            "The client does not trust the proxy's certificate for acme.atlassian.net (tlsv1 alert unknown ca)",
            "the client refused the proxy's certificate: it does not trust the proxy's CA; make it trust",
        ),
        (
            "The client disconnected during the handshake. If this happens consistently for acme.atlassian.net, "
            "this may indicate that the client does not trust the proxy's certificate.",
            "closed the connection during the handshake, most likely because it does not trust the proxy's CA",
        ),
    ],
)
def test_a_client_that_gives_up_on_the_handshake_is_logged_once_with_its_address_and_why(error, why, caplog):
    log = RequestLog()
    with taddons.context(log), caplog.at_level(logging.INFO):
        log.tls_failed_client(failed_handshake(error))
    (line,) = [r for r in caplog.records if r.name == "atlassian_auth_proxy.connections"]
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert message.startswith("client 127.0.0.1:50123: TLS handshake for acme.atlassian.net failed: ")
    assert why in message
    assert "alert unknown ca" not in message  # a fixed phrase, never mitmproxy's text


def test_a_handshake_that_never_began_names_the_connect_target_and_no_ca(caplog):
    log = RequestLog()
    with taddons.context(log), caplog.at_level(logging.INFO):
        log.tls_failed_client(failed_handshake("connection closed early", sni=None))
    (line,) = [r.getMessage() for r in caplog.records if r.name == "atlassian_auth_proxy.connections"]
    assert line == (
        "client 127.0.0.1:50123: TLS handshake for acme.atlassian.net failed: "
        "the client closed the connection before its TLS handshake began"
    )

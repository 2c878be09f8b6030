"""The audit record as OTLP log records: the real proxy, curl and raw clients, and a stand-in collector on loopback.

The collector (`support/otlp_collector.py`) decodes what the proxy's OpenTelemetry SDK sends with
the `opentelemetry-proto` package. Each test starts its own proxy with its OTEL_* variables.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import time

import pytest
import requests

from proxy_addon.runtime.server import DRAIN_SECONDS

from support import otlp_collector
from support.adminclient import admin_port, get, samples, value
from support.clients import curl, raw_connect, raw_tunnel
from support.proxy import EMAIL, TOKEN_192, basic, proxy_env, run_cli, wait_for

LOGIN = "carol:Pr0xy-pa55word-carol-9f3e"
SEARCH = "https://acme.atlassian.net/rest/api/3/search?jql=project%3DSECRET-PROJECT&maxResults=5"
MYSELF = "https://acme.atlassian.net/rest/api/3/myself"
USER_AGENT = "secret-agent/7.1 (build 4242)"
DROPPED = "atlassian_proxy_audit_export_dropped_total"
FAST = "200"  # OTEL_BLRP_SCHEDULE_DELAY in ms: tests see records sooner than the default 1 s


@pytest.fixture
def collector():
    running = otlp_collector.start()
    yield running
    running.shutdown()


def json_requests(output: str) -> list[dict]:
    return [line for line in map(json.loads, output.splitlines()) if "decision" in line]


def dropped(proxy) -> float:
    return value(samples(get(admin_port(proxy.output), "/metrics")[2]), DROPPED)


def closed_port() -> socket.socket:
    """A loopback port nobody listens on (bound, so nobody else takes it): a collector that is down."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def test_each_request_the_json_log_records_is_one_otlp_record_with_its_attributes_and_no_secret(make_proxy, collector):
    proxy = make_proxy(
        ATLASSIAN_PROXY_PROXY_AUTH=LOGIN,
        ATLASSIAN_PROXY_LOG_FORMAT="json",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=ci,team=platform",
        OTEL_BLRP_SCHEDULE_DELAY=FAST,
    )
    login = ("--proxy-user", LOGIN)
    injected = curl(
        proxy.url, SEARCH, proxy.ca_file, *login, "-A", USER_AGENT,
        "-H", "Authorization: Bearer the-clients-own-secret", "-H", "Cookie: session=client-cookie-value",
    )  # fmt: skip
    assert injected.returncode == 0, injected.stderr
    cleartext = curl(proxy.url, "http://acme.atlassian.net/plain?key=cleartext-query", proxy.ca_file, *login)
    assert cleartext.returncode == 0, cleartext.stderr
    connect_login = {"Proxy-Authorization": basic(*LOGIN.split(":", 1))}
    misdirected, _ = raw_tunnel(
        proxy.host, proxy.port, "acme.atlassian.net", "acme.atlassian.net", proxy.ca_file,
        b"GET /rest/api/3/myself HTTP/1.1\r\nHost: spoofed.example\r\nConnection: close\r\n\r\n", connect_login,
    )  # fmt: skip
    assert misdirected.startswith(b"HTTP/1.1 421"), misdirected[:100]
    tunnel = curl(proxy.url, "https://other.example.test/tunnelled", proxy.ca_file, *login)
    assert tunnel.returncode != 0, "a tunnel: the client does not trust the stand-in, nothing decrypted it"
    refused_connect, sock = raw_connect(proxy.host, proxy.port, "acme.atlassian.net")
    sock.close()
    assert refused_connect.startswith(b"HTTP/1.1 407")

    records = collector.wait_records(4, timeout=8)  # "within 8 s" of the last request
    marker = curl(proxy.url, MYSELF, proxy.ca_file, *login)
    assert marker.returncode == 0
    records = collector.wait_records(5, timeout=8)  # the queue is in order: nothing else was on its way
    wait_for(lambda: len(json_requests(proxy.output)) == 5, what="five JSON log lines")
    logged = json_requests(proxy.output)
    assert len(collector.records) == len(logged) == 5

    def key(method, host, path, status, decision, user):
        return (method, host, (path or "").partition("?")[0], status, decision, user)  # a CONNECT has no path

    assert sorted(
        key(r["method"], r["host"], r["path"], r["status"], r["decision"], r["user"]) for r in logged
    ) == sorted(
        key(
            a["http.request.method"], a["server.address"], a.get("url.path", ""), a.get("http.response.status_code"),
            a["atlassian_proxy.decision"], a.get("user.name"),
        )
        for a in (r.attributes for r in records)
    )  # fmt: skip
    by_decision = {r.attributes["atlassian_proxy.decision"]: r for r in records}
    assert set(by_decision) == {"injected", "refused-cleartext", "refused-misdirected", "refused-proxy-auth"}
    first = records[0]
    assert first.attributes == {
        "http.request.method": "GET",
        "server.address": "acme.atlassian.net",
        "url.path": "/rest/api/3/search",
        "http.response.status_code": 200,
        "atlassian_proxy.decision": "injected",
        "atlassian_proxy.site": "default",
        "atlassian_proxy.client": "carol",
        "user.name": "carol",
        "atlassian_proxy.upstream": "new",  # the proxy's first request to the site: nothing was warm yet
    }
    assert by_decision["refused-misdirected"].attributes["server.address"] == "acme.atlassian.net"
    assert by_decision["refused-cleartext"].attributes["atlassian_proxy.site"] == "other"
    anonymous = by_decision["refused-proxy-auth"].attributes
    assert anonymous["http.response.status_code"] == 407
    assert "user.name" not in anonymous
    assert "atlassian_proxy.client" not in anonymous
    assert first.resource["service.name"] == "atlassian-auth-proxy"
    assert first.resource["deployment.environment"] == "ci"
    assert first.resource["team"] == "platform"
    assert abs(first.time_unix_nano / 1e9 - time.time()) < 60

    pair = f"{EMAIL}:{TOKEN_192}"
    secrets = [TOKEN_192, pair, base64.b64encode(pair.encode()).decode(), "Pr0xy-pa55word", USER_AGENT, "secret-agent"]
    secrets += ["SECRET-PROJECT", "maxResults", "cleartext-query", "the-clients-own-secret", "client-cookie-value"]
    secrets += ["spoofed.example", "127.0.0.1"]  # a spoofed Host, and the client's (peer) address
    for record in records:
        every_value = repr((record.resource, record.attributes, record.body, record.scope))
        for secret in secrets:
            assert secret not in every_value, f"{secret!r} in an OTLP record"
    assert "OTLP collector at http://127.0.0.1:" in proxy.output


def test_otel_service_name_names_the_service_and_records_go_straight_to_the_collector(make_proxy, collector):
    """Not through the environment's proxy: in a shell set up for clients that is this proxy."""
    nowhere = "http://127.0.0.1:9"
    proxy = make_proxy(
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=collector.endpoint + "/v1/logs",
        OTEL_SERVICE_NAME="jira-agents-proxy",
        OTEL_RESOURCE_ATTRIBUTES="service.name=overridden-by-otel-service-name",
        OTEL_BLRP_SCHEDULE_DELAY=FAST,
        HTTP_PROXY=nowhere,
        HTTPS_PROXY=nowhere,
        ALL_PROXY=nowhere,
        http_proxy=nowhere,
        https_proxy=nowhere,
    )
    assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    (record,) = collector.wait_records(1, timeout=8)
    assert record.resource["service.name"] == "jira-agents-proxy"


def test_without_an_endpoint_nothing_is_sent_nothing_about_otlp_is_logged_and_the_counter_is_0(make_proxy):
    proxy = make_proxy(ATLASSIAN_PROXY_ADMIN_PORT="0", OTEL_SERVICE_NAME="set-but-no-endpoint")
    assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    wait_for(lambda: "/rest/api/3/myself" in proxy.output, what="the request log line")
    metrics = samples(get(admin_port(proxy.output), "/metrics")[2])
    assert (DROPPED, frozenset()) in metrics
    assert value(metrics, DROPPED) == 0
    assert "otlp" not in proxy.output.lower()
    assert "opentelemetry" not in proxy.output.lower()


def timed_requests(session: requests.Session, proxy_url: str, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        reply = session.get(MYSELF, proxies={"https": proxy_url})
        assert reply.status_code == 200
    return time.perf_counter() - started


def test_a_down_or_slow_collector_leaves_request_latency_as_without_otlp(make_proxy, collector):
    """20 requests each through a proxy without OTLP, one whose collector is down and one whose
    collector takes 5 s per export, interleaved so machine noise hits all three alike."""
    collector.behaviour.delay = 5.0
    down = closed_port()
    try:
        proxies = {
            "off": make_proxy(),
            "down": make_proxy(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{down.getsockname()[1]}"),
            "slow": make_proxy(OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BLRP_SCHEDULE_DELAY=FAST),
        }
        sessions = {name: requests.Session() for name in proxies}
        for name, session in sessions.items():
            session.trust_env = False
            session.verify = str(proxies[name].ca_file)
            timed_requests(session, proxies[name].url, 1)  # the tunnel and TLS, once
        collector.wait(lambda c: c.posts >= 1, 10, "the slow collector to be in an export")
        wait_for(lambda: "retrying" in proxies["down"].output, what="the down collector's first failed export")
        totals = dict.fromkeys(proxies, 0.0)
        for _ in range(4):
            for name, session in sessions.items():
                totals[name] += timed_requests(session, proxies[name].url, 5)
        assert collector.posts == 1, "the slow collector was still in its first export all along"
    finally:
        down.close()
    limit = totals["off"] * 1.5 + 0.25
    assert totals["down"] <= limit, totals
    assert totals["slow"] <= limit, totals


def test_a_collector_answering_500_loses_records_counted_and_gets_new_ones_within_15_s_of_recovering(
    make_proxy, collector
):
    collector.behaviour.status = 500
    proxy = make_proxy(
        ATLASSIAN_PROXY_ADMIN_PORT="0", OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BLRP_SCHEDULE_DELAY=FAST
    )
    for _ in range(3):
        assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    wait_for(lambda: dropped(proxy) == 3, what="three records counted as dropped")
    assert collector.records == []
    collector.behaviour.status = 200
    recovered = time.monotonic()
    for _ in range(2):
        assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    records = collector.wait_records(2, timeout=15)
    assert max(r.arrived for r in records) - recovered <= 15
    assert len(records) == 2
    assert dropped(proxy) == 3


def test_a_collector_that_comes_up_gets_records_within_15_s_and_every_record_is_delivered_or_counted(make_proxy):
    down = closed_port()
    port = down.getsockname()[1]
    proxy = make_proxy(
        ATLASSIAN_PROXY_ADMIN_PORT="0",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_BLRP_SCHEDULE_DELAY=FAST,
    )
    for _ in range(2):
        assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    wait_for(lambda: "retrying" in proxy.output, what="a failed export being retried")
    down.close()
    collector = otlp_collector.start(port)
    try:
        up = time.monotonic()
        assert curl(proxy.url, "https://acme.atlassian.net/rest/api/3/after-recovery", proxy.ca_file).returncode == 0
        collector.wait(
            lambda c: any(r.attributes.get("url.path") == "/rest/api/3/after-recovery" for r in c.records),
            15,
            "the record of the request made once the collector was up",
        )
        assert time.monotonic() - up <= 15
        wait_for(lambda: len(collector.records) + dropped(proxy) == 3, what="every record delivered or counted")
    finally:
        collector.shutdown()


def test_sigterm_with_an_export_pending_still_ends_within_the_drain_grace(make_proxy, collector):
    collector.behaviour.hold = True
    proxy = make_proxy(OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BLRP_SCHEDULE_DELAY=FAST)
    assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    collector.wait(lambda c: c.posts >= 1, 10, "the export to be pending")
    stopped = time.monotonic()
    proxy.process.send_signal(signal.SIGTERM)
    assert proxy.process.wait(DRAIN_SECONDS) == 0
    assert time.monotonic() - stopped < DRAIN_SECONDS
    assert "stopped without the audit records still being sent" in proxy.output


def test_another_protocol_is_one_line_naming_the_variable_and_exit_2(site, ca_file, confdir):
    env = proxy_env(
        site, ca_file, confdir, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4317", OTEL_EXPORTER_OTLP_PROTOCOL="grpc"
    )
    result = run_cli("run", "--listen-port", "0", env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported; the audit export speaks http/protobuf only" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_asking_for_otlp_without_the_packages_is_one_line_naming_what_to_install(site, ca_file, confdir, tmp_path):
    hidden = tmp_path / "hidden" / "opentelemetry"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("hidden by the test: not installed")\n')
    env = proxy_env(
        site, ca_file, confdir, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318", PYTHONPATH=str(hidden.parent)
    )
    result = run_cli("run", "--listen-port", "0", env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert (
        "OTEL_EXPORTER_OTLP_ENDPOINT is set, but the OpenTelemetry packages are not installed: "
        "pip install 'atlassian-auth-proxy[otlp]'"
    ) in result.stderr

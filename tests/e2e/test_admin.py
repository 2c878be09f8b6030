"""The admin endpoint of the real proxy: /healthz and /metrics answer and follow the state."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading

from support.adminclient import admin_port, get, healthz, samples, value
from support.clients import curl
from support.image import free_port
from support.proxy import EMAIL, TOKEN_192, command, proxy_env, wait_for

SITE = "https://acme.atlassian.net"
REQUESTS = "atlassian_proxy_requests_total"


def test_metrics_count_each_decision_with_no_secret_path_or_query_in_labels(make_proxy, site, ca_file):
    proxy = make_proxy(ATLASSIAN_PROXY_ADMIN_PORT="0")
    port = admin_port(proxy.output)
    assert healthz(port) == (200, {"status": "ok"})

    assert curl(proxy.url, SITE + "/rest/api/3/search?jql=project%3DSECRET", proxy.ca_file).returncode == 0
    assert curl(proxy.url, SITE + "/status/401", proxy.ca_file).returncode == 0
    assert curl(proxy.url, "http://acme.atlassian.net/cleartext", proxy.ca_file).returncode == 0
    assert curl(proxy.url, "https://other.example.test/elsewhere", ca_file).returncode == 0

    status, content_type, text = get(port, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    metrics = samples(text)
    acme = "default"
    assert value(metrics, REQUESTS, site=acme, decision="injected", status_class="2xx", client="none") == 1
    assert value(metrics, REQUESTS, site=acme, decision="injected", status_class="4xx", client="none") == 1
    assert value(metrics, REQUESTS, site="other", decision="refused", status_class="4xx", client="none") == 1
    assert value(metrics, REQUESTS, site="other", decision="tunnelled", status_class="none", client="none") == 1
    assert value(metrics, "atlassian_proxy_upstream_auth_failures_total", site=acme) == 1
    assert value(metrics, "atlassian_proxy_request_duration_seconds_count", decision="injected", client="none") == 2
    assert value(metrics, "atlassian_proxy_request_duration_seconds_count", decision="refused", client="none") == 1

    pair = f"{EMAIL}:{TOKEN_192}"
    for leak in (TOKEN_192, pair, base64.b64encode(pair.encode()).decode(), "SECRET", "jql", "/rest", "other.example"):
        assert leak not in text
    wait_for(lambda: "lacks a permission" in proxy.output, what="the identity page to confirm the token")
    assert healthz(port) == (200, {"status": "ok"}), "a 401 the identity page contradicts pauses nothing"
    assert get(port, "/nothing-here")[0] == 404
    assert get(port, "/healthz", method="POST")[0] == 405


def test_healthz_is_503_once_the_proxy_stops_listening(make_proxy, site):
    proxy = make_proxy(ATLASSIAN_PROXY_ADMIN_PORT="0")
    port = admin_port(proxy.output)
    site.record.slow_arrived.clear()
    site.record.slow_release.clear()
    result: list[subprocess.CompletedProcess[str]] = []
    client = threading.Thread(target=lambda: result.append(curl(proxy.url, SITE + "/slow", proxy.ca_file)))
    client.start()
    try:
        assert site.record.slow_arrived.wait(15), "the slow request never reached the site"
        assert healthz(port)[0] == 200
        proxy.process.send_signal(signal.SIGTERM)
        wait_for(lambda: "no longer accepting" in proxy.output, what="the proxy to start draining")
        assert healthz(port) == (503, {"status": "unavailable", "reason": "the proxy is not listening"})
    finally:
        site.record.slow_release.set()
        client.join(30)
    assert result
    assert result[0].returncode == 0
    assert proxy.process.wait(20) == 0


def test_a_taken_admin_port_is_a_one_line_setting_error(make_proxy, site, ca_file, confdir):
    first = make_proxy(ATLASSIAN_PROXY_ADMIN_PORT="0")
    taken = admin_port(first.output)
    result = subprocess.run(
        [*command(), "run", "--listen-port", "0"],
        env=proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_ADMIN_PORT=str(taken)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"atlassian-auth-proxy: error: ATLASSIAN_PROXY_ADMIN_PORT: cannot listen on 127.0.0.1:{taken} "
        "(Address already in use); choose a free port"
    ]


def test_the_health_probe_imports_neither_mitmproxy_nor_the_settings_model_when_the_port_is_in_the_env():
    """Probes run every few seconds beside the proxy: each must cost next to nothing."""
    script = (
        "import sys; from proxy_addon.commands.main import main; rc = main(['health']); "
        "print(rc, 'mitmproxy' in sys.modules, 'pydantic_settings' in sys.modules)"
    )
    env = {**os.environ, "ATLASSIAN_PROXY_ADMIN_PORT": str(free_port())}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert done.stdout.strip().splitlines()[-1] == "1 False False", done.stdout + done.stderr

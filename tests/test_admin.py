"""The admin endpoint of the real proxy: /healthz and /metrics answer and follow the state."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

from mitmproxy.test import taddons

from proxy_addon.addons.admin_endpoint import AdminEndpoint, Readiness
from proxy_addon.addons.metrics import Metrics
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import Scope, TokenHealth
from proxy_addon.runtime.root import AtlassianAuthProxy

from support.adminclient import admin_port, get, healthz, samples, value
from support.clients import curl
from support.image import free_port
from support.prepared import prepared, resolved
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


def test_a_credential_problem_makes_healthz_503_with_its_reason():
    """The hook the rejected-token back-off plugs into: any reason of Readiness is a 503."""
    reason: list[str | None] = [None]
    admin = AdminEndpoint(SimpleNamespace(problem=lambda: reason[0], paused=tuple), Metrics().registry)
    admin._listening = lambda: True  # type: ignore[method-assign]
    status, content_type, body = admin.reply("GET", "/healthz")
    assert (status, content_type, body) == (200, "application/json", b'{"status": "ok"}\n')
    reason[0] = "the site rejected the token; retrying in 60 s"
    status, _, body = admin.reply("GET", "/healthz")
    assert status == 503
    assert body == b'{"status": "unavailable", "reason": "the site rejected the token; retrying in 60 s"}\n'


def test_a_paused_host_no_setting_names_is_reported_but_leaves_healthz_ready_and_livez_follows_listening():
    paused: list[str] = ["x.atlassian.net"]
    admin = AdminEndpoint(SimpleNamespace(problem=lambda: None, paused=lambda: tuple(paused)), Metrics().registry)
    listening = [True]
    admin._listening = lambda: listening[0]  # type: ignore[method-assign]
    assert admin.reply("GET", "/healthz") == (
        200,
        "application/json",
        b'{"status": "ok", "paused": ["x.atlassian.net"]}\n',
    )
    assert admin.reply("GET", "/livez") == (200, "application/json", b'{"status": "ok"}\n')
    listening[0] = False
    assert admin.reply("GET", "/livez")[0] == 503
    assert admin.reply("GET", "/healthz")[0] == 503


def test_the_root_addon_reports_missing_credentials():
    proxy = AtlassianAuthProxy()
    with taddons.context(proxy):
        assert proxy.readiness.problem() == "no credentials loaded"


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


def test_readiness_counts_a_paused_host_only_where_the_settings_name_it():
    """/healthz's reason, from the credentials registry and token health the root hands it."""
    named = Site("acme", (HostPattern.parse("acme.atlassian.net"), HostPattern.parse("*.atlassian.net")), EMAIL)
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    readiness = Readiness(credentials, health)
    readiness.use(prepared([named], TOKEN_192))
    assert readiness.problem() == "no credentials loaded"
    credentials.adopt(named, resolved(named, TOKEN_192).credentials)
    assert (readiness.problem(), readiness.paused()) == (None, ())
    now = time.monotonic()
    health.judge("acme", "other.atlassian.net", health.stamp(), "HTTP 401", now, Scope.HOST)
    assert (readiness.problem(), readiness.paused()) == (None, ("other.atlassian.net",)), "a host paused alone"
    health.judge("acme", "other.atlassian.net", health.stamp(), "HTTP 401", now)
    assert readiness.problem() == (
        "acme.atlassian.net rejected the API token; requests are answered locally until it is replaced"
    ), "the site's pause, seen on another host, pauses the named one too"
    assert readiness.paused() == ("other.atlassian.net",)


def test_readiness_lists_the_pause_of_a_site_of_wildcards_only_but_stays_ready():
    wildcard = Site("acme", (HostPattern.parse("*.atlassian.net"),), EMAIL)
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    readiness = Readiness(credentials, health)
    readiness.use(prepared([wildcard], TOKEN_192))
    credentials.adopt(wildcard, resolved(wildcard, TOKEN_192).credentials)
    health.judge("acme", "t3.atlassian.net", health.stamp(), "HTTP 401", time.monotonic())
    assert (readiness.problem(), readiness.paused()) == (None, ("t3.atlassian.net",))

"""The proxy as a process: token rotation, graceful stop, mitmdump loading, no secret in output."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from support.clients import curl, raw_tunnel
from support.proxy import EMAIL, TOKEN_24, TOKEN_192, basic, mitmdump, proxy_env, run_cli, saving_mitmdump, wait_for

MYSELF = "https://acme.atlassian.net/rest/api/3/myself"


def test_token_file_whitespace_is_ignored_and_rotation_needs_no_restart(make_proxy, site, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN_24}\n")
    proxy = make_proxy(ATLASSIAN_PROXY_API_TOKEN=None, ATLASSIAN_PROXY_API_TOKEN_FILE=str(token_file))
    assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_24)

    replacement = tmp_path / "token.new"
    replacement.write_text(TOKEN_192 + "\n")
    replacement.replace(token_file)
    wait_for(lambda: "token reloaded" in proxy.output, what="the token file to be re-read")
    assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)


def test_an_emptied_token_file_keeps_the_previous_token(make_proxy, site, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN_24)
    proxy = make_proxy(ATLASSIAN_PROXY_API_TOKEN=None, ATLASSIAN_PROXY_API_TOKEN_FILE=str(token_file))
    token_file.write_text("")
    wait_for(lambda: "keeping the previous token" in proxy.output, what="the warning about the empty file")
    assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_24)


def test_sigterm_lets_an_in_flight_request_finish_then_exits_0(make_proxy, site):
    proxy = make_proxy()
    site.record.slow_arrived.clear()
    site.record.slow_release.clear()
    result: list[subprocess.CompletedProcess[str]] = []
    client = threading.Thread(
        target=lambda: result.append(curl(proxy.url, "https://acme.atlassian.net/slow", proxy.ca_file))
    )
    client.start()
    assert site.record.slow_arrived.wait(15), "the slow request never reached the site"
    proxy.process.send_signal(signal.SIGTERM)
    wait_for(lambda: "no longer accepting" in proxy.output, what="the proxy to start draining")
    site.record.slow_release.set()
    client.join(30)
    assert result, "the client never finished"
    assert result[0].returncode == 0, result[0].stderr
    assert '"slow": "done"' in result[0].stdout
    assert proxy.process.wait(20) == 0


def test_sigterm_with_an_idle_keep_alive_client_stops_cleanly(make_proxy, site):
    proxy = make_proxy()
    with requests.Session() as session:
        session.trust_env = False
        session.proxies = {"https": proxy.url}
        session.verify = str(proxy.ca_file)
        assert session.get(MYSELF).status_code == 200  # its connection stays open, idle, as the proxy stops
        proxy.process.send_signal(signal.SIGTERM)
        assert proxy.process.wait(20) == 0
    assert proxy.ended.wait(5), "the proxy's output never ended"
    assert "Traceback" not in proxy.output
    assert "CancelledError" not in proxy.output


def test_no_secret_in_any_output_even_when_things_fail(make_proxy, site, ca_file):
    proxy = make_proxy(
        ATLASSIAN_PROXY_CONNECT_TO=f"*.atlassian.net=127.0.0.1:{site.port},dead.atlassian.net=127.0.0.1:9",
    )
    outputs = [
        curl(proxy.url, MYSELF + "?jql=project%3DSECRET", proxy.ca_file, "-v"),
        curl(proxy.url, "http://acme.atlassian.net/cleartext", proxy.ca_file, "-v"),
        curl(proxy.url, "https://dead.atlassian.net/refused", proxy.ca_file, "-v"),
        curl(proxy.url, "https://other.example.test/elsewhere", ca_file, "-v"),
    ]
    misdirected, _ = raw_tunnel(
        proxy.host,
        proxy.port,
        "acme.atlassian.net",
        "acme.atlassian.net",
        proxy.ca_file,
        b"GET / HTTP/1.1\r\nHost: other.example.test\r\nConnection: close\r\n\r\n",
    )
    assert proxy.stop() == 0
    text = proxy.output + "".join(o.stdout + o.stderr for o in outputs) + misdirected.decode(errors="replace")
    assert "credentials=injected" in proxy.output
    assert "SECRET" not in proxy.output, "query values must not be logged"
    pair = f"{EMAIL}:{TOKEN_192}"
    for secret in (TOKEN_192, pair, base64.b64encode(pair.encode()).decode(), TOKEN_192[:24]):
        assert secret not in text


def test_the_addon_loads_into_plain_mitmdump_and_saved_flows_hold_no_secret(site, ca_file, tmp_path):
    saved = tmp_path / "flows.mitm"
    with saving_mitmdump(proxy_env(site, ca_file, tmp_path), saved) as port:
        result = curl(f"http://127.0.0.1:{port}", MYSELF, tmp_path / "mitmproxy-ca-cert.pem")
        assert result.returncode == 0, result.stderr
        assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
    flows = saved.read_bytes()
    assert b"/rest/api/3/myself" in flows, "the flow was saved"
    assert basic(EMAIL, TOKEN_192).split()[1].encode() not in flows
    assert TOKEN_192.encode() not in flows


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--listen-host", "127.0.0.1", "--set", "flow_detail=3"], "flow_detail=3 would print"),
        (["--listen-host", "127.0.0.1", "--set", "proxy_debug=true"], "proxy_debug would log"),
        ([], "refusing to listen on every interface"),
    ],
    ids=["flow_detail", "proxy_debug", "every-interface"],
)
def test_mitmdump_options_that_would_leak_are_refused(site, ca_file, tmp_path, options, expected):
    addon = Path(__file__).parents[2] / "proxy_addon" / "addon.py"
    result = subprocess.run(
        [mitmdump(), "-s", str(addon), "--listen-port", "0", *options],
        env=proxy_env(site, ca_file, tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_refuses_every_interface_without_proxy_auth(site, ca_file, tmp_path):

    result = run_cli(
        "run",
        "--listen-host",
        "0.0.0.0",
        env=proxy_env(site, ca_file, tmp_path),
    )
    assert result.returncode == 2
    assert result.stderr.startswith("atlassian-auth-proxy: error: refusing to listen on 0.0.0.0")
    assert os.linesep not in result.stderr.rstrip()

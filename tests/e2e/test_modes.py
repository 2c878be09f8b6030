"""Reverse mode for tools that cannot use a proxy, and chaining through a corporate proxy."""

from __future__ import annotations

import base64
import socket
import subprocess

import pytest

from support import corp_proxy
from support.clients import CLIENT_ENV, curl, status_and_body
from support.proxy import EMAIL, TOKEN_192, basic, proxy_env, run_cli, start_mitmdump, wait_for


def test_reverse_mode_serves_a_plain_http_base_url_on_loopback(make_proxy, site):
    proxy = make_proxy("--reverse", "https://acme.atlassian.net")
    result = subprocess.run(
        ["curl", "-sS", "-u", "client:own", f"{proxy.url}/rest/api/3/myself"],
        capture_output=True,
        text=True,
        env=CLIENT_ENV,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"displayName": "Test User"' in result.stdout
    seen = site.record.last()
    assert seen.header("Authorization") == basic(EMAIL, TOKEN_192)
    assert seen.header("Host") == "acme.atlassian.net"
    assert seen.sni == "acme.atlassian.net"

    with socket.create_connection((proxy.host, proxy.port), timeout=15) as sock:
        sock.sendall(
            b"GET https://evil.example.test/x HTTP/1.1\r\nHost: evil.example.test\r\nConnection: close\r\n\r\n"
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 421"), reply


def test_reverse_target_must_be_a_credential_host(make_proxy, site, ca_file, confdir):
    from support.proxy import proxy_env

    result = run_cli(
        "run",
        "--reverse",
        "https://other.example.test",
        env=proxy_env(site, ca_file, confdir),
    )
    assert result.returncode == 2
    assert "other.example.test gets credentials from no site" in result.stderr


def test_upstream_proxy_sees_the_tunnel_and_the_site_sees_the_credentials(make_proxy, site):
    corp = corp_proxy.start(site.port)
    try:
        proxy = make_proxy(
            ATLASSIAN_PROXY_UPSTREAM_PROXY=f"http://corp-user:corp%20pass@127.0.0.1:{corp.port}",
            ATLASSIAN_PROXY_CONNECT_TO="",
        )
        result = curl(proxy.url, "https://acme.atlassian.net/rest/api/3/myself", proxy.ca_file)
        assert result.returncode == 0, result.stderr
        assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
        expected_auth = "Basic " + base64.b64encode(b"corp-user:corp pass").decode()
        assert ("acme.atlassian.net:443", expected_auth) in corp.seen.connects
        assert "corp pass" not in proxy.output
        assert "corp%20pass" not in proxy.output
    finally:
        corp.shutdown()


@pytest.fixture
def only_through_corp(site):
    """A corporate proxy to the stand-in, and CONNECT_TO sending every direct connection to a
    bound port that does not listen: the site is reachable only through the corporate proxy."""
    corp = corp_proxy.start(site.port)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    settings = {
        "ATLASSIAN_PROXY_UPSTREAM_PROXY": f"http://corp-user:corp%20pass@127.0.0.1:{corp.port}",
        "ATLASSIAN_PROXY_CONNECT_TO": f"*.atlassian.net=127.0.0.1:{closed.getsockname()[1]}",
    }
    yield corp, settings
    closed.close()
    corp.shutdown()


CORP_LOGIN = "Basic " + base64.b64encode(b"corp-user:corp pass").decode()


def test_check_asks_the_site_through_the_upstream_proxy(site, ca_file, confdir, only_through_corp):
    corp, settings = only_through_corp
    env = proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_SITE="acme.atlassian.net", **settings)
    result = run_cli("check", env=env)
    assert result.returncode == 0, result.stderr
    assert ("acme.atlassian.net:443", CORP_LOGIN) in corp.seen.connects
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
    assert "corp pass" not in result.stdout + result.stderr


def test_an_ambiguous_401_is_confirmed_through_the_upstream_proxy(make_proxy, site, only_through_corp):
    corp, settings = only_through_corp
    proxy = make_proxy(**settings)
    status, _ = status_and_body(proxy, "https://acme.atlassian.net/needs-admin/rest/api/3/project")
    assert status == "401"
    wait_for(lambda: "lacks a permission" in proxy.output, what="the confirmed-valid log line")
    assert "rejected the API token" not in proxy.output, "an unreachable identity page would count as a rejection"
    assert site.record.last().path == "/rest/api/3/myself"
    assert corp.seen.connects.count(("acme.atlassian.net:443", CORP_LOGIN)) >= 2, "the request and its confirmation"


CLIENT_LOGIN = "ci:Cl1ent-login-of-ci-7f"
CLIENT_BASIC = base64.b64encode(CLIENT_LOGIN.encode()).decode()


def through_corp_with_a_client_login(proxy, corp, site) -> None:
    """A plain-http request and a tunnel, each with the client's proxy login, reach the corporate
    proxy with its own login and never the client's."""
    plain = curl(proxy.url, "http://plain.example.test/via-corp", proxy.ca_file, "--proxy-user", CLIENT_LOGIN)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout == "corp", "the corporate proxy answered"
    assert ("GET", "http://plain.example.test/via-corp", CORP_LOGIN) in corp.seen.plain
    tunnel = curl(
        proxy.url, "https://acme.atlassian.net/rest/api/3/myself", proxy.ca_file, "--proxy-user", CLIENT_LOGIN
    )
    assert tunnel.returncode == 0, tunnel.stderr
    assert ("acme.atlassian.net:443", CORP_LOGIN) in corp.seen.connects
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
    assert site.record.last().header("Proxy-Authorization") is None
    assert not any(CLIENT_BASIC in head for head in corp.seen.heads), "the client's login went to the corporate proxy"
    assert "corp pass" not in proxy.output


def test_run_checks_the_client_login_before_the_corporate_login_is_added(make_proxy, site):
    corp = corp_proxy.start(site.port)
    try:
        proxy = make_proxy(
            ATLASSIAN_PROXY_UPSTREAM_PROXY=f"http://corp-user:corp%20pass@127.0.0.1:{corp.port}",
            ATLASSIAN_PROXY_CONNECT_TO="",
            ATLASSIAN_PROXY_PROXY_AUTH=CLIENT_LOGIN,
        )
        through_corp_with_a_client_login(proxy, corp, site)
        refused = curl(proxy.url, "http://plain.example.test/no-login", proxy.ca_file, "-w", "%{http_code}")
        assert refused.stdout.endswith("407"), "the corporate login added for the upstream is no login to us"
        assert not any(target.endswith("/no-login") for _, target, _ in corp.seen.plain)
    finally:
        corp.shutdown()


def test_without_a_proxy_login_plain_http_still_reaches_the_corporate_proxy_with_its_login(make_proxy, site):
    corp = corp_proxy.start(site.port)
    try:
        proxy = make_proxy(
            ATLASSIAN_PROXY_UPSTREAM_PROXY=f"http://corp-user:corp%20pass@127.0.0.1:{corp.port}",
            ATLASSIAN_PROXY_CONNECT_TO="",
        )
        plain = curl(proxy.url, "http://plain.example.test/no-client-login", proxy.ca_file, "--proxy-user", "a:b")
        assert plain.stdout == "corp", plain.stderr
        assert ("GET", "http://plain.example.test/no-client-login", CORP_LOGIN) in corp.seen.plain
        assert not any(base64.b64encode(b"a:b").decode() in head for head in corp.seen.heads)
    finally:
        corp.shutdown()


def test_mitmdump_checks_the_client_login_before_the_corporate_login_is_added(site, ca_file, tmp_path):
    corp = corp_proxy.start(site.port)
    env = proxy_env(site, ca_file, tmp_path, ATLASSIAN_PROXY_CONNECT_TO="", ATLASSIAN_PROXY_PROXY_AUTH=CLIENT_LOGIN)
    proxy = start_mitmdump(
        env, "--mode", f"upstream:http://127.0.0.1:{corp.port}", "--set", "upstream_auth=corp-user:corp pass"
    )
    try:
        through_corp_with_a_client_login(proxy, corp, site)
    finally:
        proxy.stop()
        corp.shutdown()


def test_reverse_mode_with_proxy_auth_needs_proxy_authorization(make_proxy, site):
    proxy = make_proxy("--reverse", "https://acme.atlassian.net", ATLASSIAN_PROXY_PROXY_AUTH="ci:secret-Pa55word-41")
    url = f"{proxy.url}/rest/api/3/myself"
    denied = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True, env=CLIENT_ENV
    )
    assert denied.stdout == "407"
    login = "Proxy-Authorization: Basic " + base64.b64encode(b"ci:secret-Pa55word-41").decode()
    allowed = subprocess.run(["curl", "-sS", "-H", login, url], capture_output=True, text=True, env=CLIENT_ENV)
    assert '"displayName": "Test User"' in allowed.stdout, allowed.stderr
    seen = site.record.last()
    assert seen.header("Authorization") == basic(EMAIL, TOKEN_192)
    assert seen.header("Proxy-Authorization") is None

"""Proxy authentication: nobody without the proxy login can use the proxy or learn the password."""

from __future__ import annotations

import base64
import socket
import time

import pytest
from mitmproxy import io

from proxy_addon.policy.record import FlowRecord

from support.clients import curl, raw_connect, raw_tunnel
from support.proxy import EMAIL, TOKEN_192, basic, proxy_env, run_cli, saving_mitmdump

PASSWORD = "Pr0xy-pa55word-9f3e"
LOGIN = f"ci:{PASSWORD}"
MYSELF = "https://acme.atlassian.net/rest/api/3/myself"


def proxy_authorization(login: str) -> str:
    return "Basic " + base64.b64encode(login.encode()).decode()


@pytest.fixture
def guarded(make_proxy):
    return make_proxy(ATLASSIAN_PROXY_PROXY_AUTH=LOGIN)


@pytest.mark.parametrize(
    ("args", "status"),
    [((), "407"), (("--proxy-user", "ci:wrong"), "407"), (("--proxy-user", "other:" + PASSWORD), "407")],
    ids=["none", "wrong-password", "wrong-user"],
)
def test_connect_without_the_right_login_gets_407_and_nothing_reaches_the_site(guarded, site, args, status):
    seen = len(site.record.requests)
    result = curl(guarded.url, MYSELF, guarded.ca_file, "-v", *args)
    assert f"CONNECT tunnel failed, response {status}" in result.stderr
    assert len(site.record.requests) == seen


def test_407_names_the_scheme_and_tunnels_need_the_login_too(guarded, site):
    reply, _ = raw_connect(guarded.host, guarded.port, "other.example.test")
    assert reply.startswith(b"HTTP/1.1 407")
    assert b'Proxy-Authenticate: Basic realm="atlassian-auth-proxy"' in reply


def test_right_login_gets_credentials_and_the_site_never_sees_proxy_authorization(guarded, site):
    result = curl(guarded.url, MYSELF, guarded.ca_file, "--proxy-user", LOGIN)
    assert result.returncode == 0, result.stderr
    seen = site.record.last()
    assert seen.header("Authorization") == basic(EMAIL, TOKEN_192)
    assert seen.header("Proxy-Authorization") is None


def test_proxy_authorization_sent_inside_the_tunnel_is_removed(guarded, site):
    request = (
        b"GET /inside HTTP/1.1\r\nHost: acme.atlassian.net\r\n"
        + f"Proxy-Authorization: {proxy_authorization(LOGIN)}\r\n".encode()
        + b"Connection: close\r\n\r\n"
    )
    reply, _ = raw_tunnel(
        guarded.host,
        guarded.port,
        "acme.atlassian.net",
        "acme.atlassian.net",
        guarded.ca_file,
        request,
        {"Proxy-Authorization": proxy_authorization(LOGIN)},
    )
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    seen = site.record.last()
    assert seen.path == "/inside"
    assert seen.header("Proxy-Authorization") is None


def test_plain_requests_need_the_login_and_never_forward_it(guarded, plain_site):
    url = f"http://127.0.0.1:{plain_site.port}/plain"
    refused = curl(guarded.url, url, guarded.ca_file, "-w", "%{http_code}")
    assert refused.stdout.endswith("407")
    assert not plain_site.record.requests
    allowed = curl(guarded.url, url, guarded.ca_file, "--proxy-user", LOGIN, "-w", "%{http_code}")
    assert allowed.stdout.endswith("200"), allowed.stdout
    seen = plain_site.record.last()
    assert seen.path == "/plain"
    assert seen.header("Proxy-Authorization") is None


def test_without_proxy_auth_proxy_authorization_is_still_not_forwarded(proxy, plain_site):
    result = curl(proxy.url, f"http://127.0.0.1:{plain_site.port}/hop", proxy.ca_file, "--proxy-user", "a:b")
    assert result.returncode == 0, result.stderr
    assert plain_site.record.last().header("Proxy-Authorization") is None


def test_the_proxy_password_is_in_no_output(make_proxy, site):
    proxy = make_proxy(ATLASSIAN_PROXY_PROXY_AUTH=LOGIN)
    outputs = [
        curl(proxy.url, MYSELF, proxy.ca_file, "-v", "--proxy-user", LOGIN),
        curl(proxy.url, MYSELF, proxy.ca_file, "-v", "--proxy-user", "ci:wrong"),
        curl(proxy.url, "http://acme.atlassian.net/x", proxy.ca_file, "-v", "--proxy-user", LOGIN),
    ]
    assert proxy.stop() == 0
    assert "407" in proxy.output
    server_side = proxy.output + "".join(o.stdout for o in outputs)
    for secret in (PASSWORD, proxy_authorization(LOGIN).split()[1]):
        assert secret not in server_side


def test_a_non_loopback_listen_host_is_allowed_with_proxy_auth(make_proxy):
    proxy = make_proxy("--listen-host", "0.0.0.0", ATLASSIAN_PROXY_PROXY_AUTH=LOGIN)
    reply, _ = raw_connect("127.0.0.1", proxy.port, "acme.atlassian.net")
    assert reply.startswith(b"HTTP/1.1 407")


def test_proxy_auth_file(make_proxy, site, tmp_path):
    login_file = tmp_path / "proxy-login"
    login_file.write_text(f"{LOGIN}\n")
    proxy = make_proxy(ATLASSIAN_PROXY_PROXY_AUTH_FILE=str(login_file))
    assert curl(proxy.url, MYSELF, proxy.ca_file, "--proxy-user", LOGIN).returncode == 0
    assert "CONNECT tunnel failed, response 407" in curl(proxy.url, MYSELF, proxy.ca_file, "-v").stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ATLASSIAN_PROXY_PROXY_AUTH": "no-colon-" + PASSWORD}, "ATLASSIAN_PROXY_PROXY_AUTH: is not USER:PASSWORD"),
        ({"ATLASSIAN_PROXY_PROXY_AUTH": "ci:"}, "ATLASSIAN_PROXY_PROXY_AUTH: is not USER:PASSWORD"),
        ({"ATLASSIAN_PROXY_PROXY_AUTH_FILE": "/nonexistent/login"}, "ATLASSIAN_PROXY_PROXY_AUTH_FILE: cannot read"),
        (
            {"ATLASSIAN_PROXY_PROXY_AUTH": LOGIN, "ATLASSIAN_PROXY_PROXY_AUTH_FILE": "{login_file}"},
            "ATLASSIAN_PROXY_PROXY_AUTH and ATLASSIAN_PROXY_PROXY_AUTH_FILE are both set",
        ),
    ],
    ids=["no-colon", "empty-password", "missing-file", "both"],
)
def test_bad_proxy_auth_settings_exit_2_without_echoing_the_password(site, ca_file, tmp_path, env, expected):
    login_file = tmp_path / "login"
    login_file.write_text(LOGIN)
    env = {name: value.format(login_file=login_file) for name, value in env.items()}
    result = run_cli(
        "run",
        env=proxy_env(site, ca_file, tmp_path, **env),
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"atlassian-auth-proxy: error: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert PASSWORD not in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ATLASSIAN_PROXY_PROXY_AUTH": "ci:fifteen-chars-"}, "ATLASSIAN_PROXY_PROXY_AUTH: has a password that is "),
        ({"ATLASSIAN_PROXY_PROXY_AUTH_FILE": "{login_file}"}, "ATLASSIAN_PROXY_PROXY_AUTH_FILE: the login in "),
    ],
    ids=["env", "file"],
)
def test_a_proxy_password_shorter_than_16_characters_exits_2_with_one_line(site, ca_file, tmp_path, env, expected):
    login_file = tmp_path / "login"
    login_file.write_text("ci:fifteen-chars-\n")
    env = {name: value.format(login_file=login_file) for name, value in env.items()}
    result = run_cli("run", env=proxy_env(site, ca_file, tmp_path, **env), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"atlassian-auth-proxy: error: {expected}"), result.stderr
    assert "shorter than 16 characters" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "fifteen-chars-" not in result.stderr


def test_mitmdump_saved_flows_hold_the_proxy_user_but_not_the_password(site, ca_file, tmp_path):
    saved = tmp_path / "flows.mitm"
    with saving_mitmdump(proxy_env(site, ca_file, tmp_path, ATLASSIAN_PROXY_PROXY_AUTH=LOGIN), saved) as port:
        result = curl(f"http://127.0.0.1:{port}", MYSELF, tmp_path / "mitmproxy-ca-cert.pem", "--proxy-user", LOGIN)
        assert result.returncode == 0, result.stderr
    flows = saved.read_bytes()
    with saved.open("rb") as file:
        (flow,) = list(io.FlowReader(file).stream())
    assert FlowRecord.of(flow.metadata).user == "ci", "the user name is kept for the record"
    assert PASSWORD.encode() not in flows
    assert proxy_authorization(LOGIN).split()[1].encode() not in flows


def test_a_407_is_logged_as_answered_by_the_proxy_not_passed(guarded, plain_site):
    from support.proxy import wait_for

    curl(guarded.url, f"http://127.0.0.1:{plain_site.port}/logged", guarded.ca_file)
    wait_for(lambda: "/logged" in guarded.output, what="the request log line")
    line = next(line for line in guarded.lines if "/logged" in line)
    assert " 407 " in line
    assert line.rstrip().endswith("credentials=refused-proxy-auth")


def connect_from(proxy, source: str, login: str) -> bytes:
    """A CONNECT to acme.atlassian.net from the loopback address `source`, with `login`; the proxy's reply head."""
    with socket.create_connection((proxy.host, proxy.port), timeout=15, source_address=(source, 0)) as sock:
        sock.sendall(
            b"CONNECT acme.atlassian.net:443 HTTP/1.1\r\nHost: acme.atlassian.net:443\r\n"
            + f"Proxy-Authorization: {proxy_authorization(login)}\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply and (chunk := sock.recv(4096)):
            reply += chunk
        return reply


def test_guessing_the_login_is_locked_out_for_that_user_from_all_of_loopback(guarded):
    """Every loopback address is one peer (a local guesser can bind any of 127.0.0.0/8). Another peer keeping
    its access (addons/test_proxy_auth.py) and another user keeping it from the same peer
    (test_redteam_findings.py #7) are proved where such peers and users exist."""
    started = time.monotonic()
    replies = [connect_from(guarded, "127.0.0.1", f"ci:guess-{n:03d}-{PASSWORD}") for n in range(300)]
    assert [reply.split(b" ", 2)[1] for reply in replies[:5]] == [b"407"] * 4 + [b"429"]
    assert all(reply.startswith(b"HTTP/1.1 429") for reply in replies[5:])
    assert b"\r\nRetry-After: 30\r\n" in replies[5]
    locked = connect_from(guarded, "127.0.0.1", LOGIN)
    assert locked.startswith(b"HTTP/1.1 429"), "the right password does not help a locked-out user"
    assert connect_from(guarded, "127.0.0.2", LOGIN).startswith(b"HTTP/1.1 429"), "127.0.0.2 is the same peer"
    assert time.monotonic() - started < 30, "the lockout never slowed anyone but the guesser"
    warnings = [line for line in guarded.lines if "wrong proxy login" in line or "failed proxy login" in line]
    assert len(warnings) == 2, warnings
    assert (
        "loopback: 4 failed proxy login(s) since the last line about it; its logins as ci get 429 for 30 s"
        in (warnings[1])
    )

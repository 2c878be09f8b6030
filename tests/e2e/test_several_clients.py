"""`[[clients]]`: several agents through one proxy, each with its own login and bounds (issue 15).

One proxy serves every test here: two sites (acme, globex) and three clients with different
bounds, so the tests show the clients side by side in one run, as users run them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import io

from proxy_addon.policy.record import FlowRecord

from support.adminclient import admin_port, get, samples, value
from support.clients import CLIENT_ENV, curl, raw_connect, status_and_body, with_env_exports, with_requests
from support.proxy import (
    TOKEN_24,
    TOKEN_192,
    Proxy,
    basic,
    proxy_env,
    run_cli,
    saving_mitmdump,
    site_toml,
    start_proxy,
    wait_for,
)

ACME_USER, GLOBEX_USER = "me@acme.example", "me@globex.example"
A_PASSWORD = "agent-a-Pa55word-4e1f"
B_PASSWORD = "p@ss w:rd/%-agent-b"
"""Characters a URL must quote: `env --client` has to."""
C_PASSWORD = "agent-c-Pa55word-77c2"
A, B, C = f"agent-a:{A_PASSWORD}", f"agent-b:{B_PASSWORD}", f"agent-c:{C_PASSWORD}"
PASSWORDS = (A_PASSWORD, B_PASSWORD, C_PASSWORD)
ACME = "https://acme.atlassian.net/rest/api/3/myself"
GLOBEX = "https://globex.atlassian.net/rest/api/3/myself"

SITES = site_toml("acme", "acme.atlassian.net", "me@acme.example", token_env="ACME_TOKEN") + site_toml(
    "globex", "globex.atlassian.net", "me@globex.example", token_env="GLOBEX_TOKEN"
)
CLIENTS = """
[[clients]]
name = "agent-a"
password_env = "AGENT_A_PASSWORD"
sites = ["acme"]

[[clients]]
name = "agent-b"
password_file = "{b_file}"
read_only = true

[[clients]]
name = "agent-c"
password_env = "AGENT_C_PASSWORD"
requests_per_minute = 3
"""


def client_env(site, ca_file: Path, confdir: Path, config: Path, **overrides: str | None) -> dict[str, str]:
    """The proxy's environment for `config`: the sites' tokens and the clients' passwords."""
    return proxy_env(
        site,
        ca_file,
        confdir,
        ATLASSIAN_PROXY_CONFIG=str(config),
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_API_TOKEN=None,
        ACME_TOKEN=TOKEN_192,
        GLOBEX_TOKEN=TOKEN_24,
        AGENT_A_PASSWORD=A_PASSWORD,
        AGENT_C_PASSWORD=C_PASSWORD,
        **overrides,
    )


def cli_env(config: Path) -> dict[str, str]:
    """What a command other than `run` needs to load the settings: the config and the clients' passwords."""
    return {"ATLASSIAN_PROXY_CONFIG": str(config), "AGENT_A_PASSWORD": A_PASSWORD, "AGENT_C_PASSWORD": C_PASSWORD}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clients")
    b_file = root / "agent-b.password"
    b_file.write_text(B_PASSWORD + "\n")
    path = root / "clients.toml"
    path.write_text(SITES + CLIENTS.format(b_file=b_file))
    return path


@pytest.fixture(scope="module")
def agents(site, ca_file, confdir, config) -> Iterator[Proxy]:
    env = client_env(site, ca_file, confdir, config, ATLASSIAN_PROXY_LOG_FORMAT="json", ATLASSIAN_PROXY_ADMIN_PORT="0")
    running = start_proxy(env)
    yield running
    running.stop()


def log_line(proxy: Proxy, marker: str) -> dict:
    """The JSON request-log line of the request whose path carries `marker` (queries are not logged)."""
    wait_for(lambda: marker in proxy.output, what=f"the log line of {marker}")
    return next(json.loads(line) for line in proxy.lines if marker in line and line.startswith("{"))


def test_each_client_logs_in_with_its_own_password_and_is_named_in_the_log(agents, site):
    for login, marker in ((A, "/who-a"), (B, "/who-b")):
        result = curl(agents.url, ACME + marker, agents.ca_file, "--proxy-user", login, "-w", "%{http_code}")
        assert result.stdout.endswith("200"), result.stdout + result.stderr
        seen = site.record.last()
        assert seen.header("Authorization") == basic(ACME_USER, TOKEN_192)
        assert seen.header("Proxy-Authorization") is None
    assert log_line(agents, "/who-a")["user"] == "agent-a"
    assert log_line(agents, "/who-b")["user"] == "agent-b"


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--proxy-user", "agent-a:wrong", "--interface", "127.0.0.2"),
        ("--proxy-user", f"agent-a:{B_PASSWORD}", "--interface", "127.0.0.3"),
        ("--proxy-user", f"x:{A_PASSWORD}", "--interface", "127.0.0.4"),
    ],
    ids=["no-login", "wrong-password", "another-clients-password", "unknown-client"],
)
def test_without_one_clients_exact_login_connect_and_plain_requests_get_407(agents, site, plain_site, args):
    """Each wrong login from an address of its own: five from one address would lock it out (429)."""
    seen, plain_seen = len(site.record.requests), len(plain_site.record.requests)
    tunnel = curl(agents.url, ACME, agents.ca_file, "-v", *args)
    assert "CONNECT tunnel failed, response 407" in tunnel.stderr
    plain = curl(agents.url, f"http://127.0.0.1:{plain_site.port}/p", agents.ca_file, "-w", "%{http_code}", *args)
    assert plain.stdout.endswith("407")
    assert (len(site.record.requests), len(plain_site.record.requests)) == (seen, plain_seen)


def test_a_bare_connect_gets_407_naming_the_scheme(agents):
    reply, _ = raw_connect(agents.host, agents.port, "acme.atlassian.net")
    assert reply.startswith(b"HTTP/1.1 407")
    assert b'Proxy-Authenticate: Basic realm="atlassian-auth-proxy"' in reply


def test_clients_beside_proxy_auth_exit_2_with_one_line(site, ca_file, tmp_path, config):
    result = run_cli(
        "run", env=client_env(site, ca_file, tmp_path, config, ATLASSIAN_PROXY_PROXY_AUTH=f"ci:{A_PASSWORD}")
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        "atlassian-auth-proxy: error: [[clients]] and ATLASSIAN_PROXY_PROXY_AUTH are both set"
    ), result.stderr
    assert result.stderr.count("\n") == 1
    assert A_PASSWORD not in result.stderr + result.stdout


def test_a_client_naming_an_unknown_site_exits_2_naming_it(site, ca_file, tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text(SITES + '[[clients]]\nname = "x"\npassword_env = "AGENT_A_PASSWORD"\nsites = ["acmee"]\n')
    result = run_cli("run", env=client_env(site, ca_file, tmp_path, config))
    assert result.returncode == 2, result.stderr
    assert "[[clients]] 'x': sites names 'acmee', which is not a configured site (the sites are: acme, globex)" in (
        result.stderr
    )
    assert result.stderr.count("\n") == 1


def test_env_client_exports_a_proxy_url_that_logs_in_as_that_client(agents, site, config, tmp_path):
    script = f"curl -sS --max-time 20 {ACME}/via-env-client"
    result = with_env_exports(agents.port, agents.confdir, tmp_path, script, "--client", "agent-b", **cli_env(config))
    assert result.returncode == 0, result.stderr
    assert site.record.last().header("Authorization") == basic(ACME_USER, TOKEN_192)
    assert log_line(agents, "/via-env-client")["user"] == "agent-b"


def test_env_with_an_unknown_client_exits_2_with_one_line(config, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "ATLASSIAN_PROXY_CONFDIR": str(tmp_path), **cli_env(config)}
    result = run_cli("env", "--client", "agent-z", "--listen-port", "8080", env=env)
    assert result.returncode == 2, result.stderr
    assert "--client: no client is named 'agent-z' in [[clients]] (the clients are: agent-a, agent-b, agent-c)" in (
        result.stderr
    )
    assert result.stderr.count("\n") == 1


def test_a_non_loopback_listen_host_is_allowed_with_clients(site, ca_file, tmp_path, config):
    proxy = start_proxy(client_env(site, ca_file, tmp_path, config), "--listen-host", "0.0.0.0")
    try:
        reply, _ = raw_connect("127.0.0.1", proxy.port, "acme.atlassian.net")
        assert reply.startswith(b"HTTP/1.1 407")
        assert curl(f"http://127.0.0.1:{proxy.port}", ACME, proxy.ca_file, "--proxy-user", A).returncode == 0
    finally:
        proxy.stop()


def refused_count(proxy: Proxy, **labels: str) -> float:
    return value(samples(get(admin_port(proxy.output), "/metrics")[2]), "atlassian_proxy_requests_total", **labels)


def test_two_clients_with_different_bounds_in_one_run(agents, site):
    a_globex = {"site": "globex", "decision": "refused", "status_class": "4xx", "client": "agent-a"}
    b_acme = {"site": "acme", "decision": "refused", "status_class": "4xx", "client": "agent-b"}
    counted = refused_count(agents, **a_globex), refused_count(agents, **b_acme)

    status, _ = status_and_body(agents, ACME + "/a-write", "--proxy-user", A, "-d", "{}")
    assert status == "200"
    assert site.record.last().header("Authorization") == basic(ACME_USER, TOKEN_192)
    status, _ = status_and_body(agents, GLOBEX + "/b-read", "--proxy-user", B)
    assert status == "200"
    assert site.record.last().header("Authorization") == basic(GLOBEX_USER, TOKEN_24)
    status, _ = status_and_body(agents, "https://globex.atlassian.net/rest/api/3/search", "--proxy-user", B, "-d", "{}")
    assert status == "200", "a read-only client may still search"

    reached = len(site.record.requests)
    status, body = status_and_body(agents, GLOBEX + "/a-elsewhere", "--proxy-user", A)
    assert (status, body) == (
        "403",
        "atlassian-auth-proxy: client agent-a may not use site globex: its sites are acme\n",
    )
    status, body = status_and_body(agents, ACME + "/b-write", "--proxy-user", B, "-X", "DELETE")
    assert status == "403"
    assert body == (
        "atlassian-auth-proxy: client agent-b is read-only: DELETE /rest/api/3/myself/b-write is not a read "
        "(see docs/how-to/sites.md, Read-only)\n"
    )
    assert len(site.record.requests) == reached, "nothing of a refused request reached the site"

    assert log_line(agents, "/a-elsewhere")["user"] == "agent-a"
    assert log_line(agents, "/a-elsewhere")["decision"] == "refused-client-site"
    assert log_line(agents, "/b-write")["decision"] == "refused-client-read-only"
    wait_for(lambda: refused_count(agents, **a_globex) == counted[0] + 1, what="agent-a's refusal in /metrics")
    assert refused_count(agents, **b_acme) == counted[1] + 1


def test_past_its_rate_a_client_gets_429_and_another_client_still_gets_through(agents, site, plain_site):
    for n in range(3):
        assert status_and_body(agents, f"{ACME}/c-{n}", "--proxy-user", C)[0] == "200"
    reached, plain_reached = len(site.record.requests), len(plain_site.record.requests)
    as_c = f"http://{C}@{agents.host}:{agents.port}"
    refused = with_requests(as_c, ACME + "/c-over", agents.ca_file, {})
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.body.startswith("atlassian-auth-proxy: client agent-c is past its limit of 3 requests per minute")
    plain = with_requests(as_c, f"http://127.0.0.1:{plain_site.port}/c-plain", agents.ca_file, {})
    assert plain.status == 429, "plain requests count too"
    assert (len(site.record.requests), len(plain_site.record.requests)) == (reached, plain_reached)

    assert status_and_body(agents, ACME + "/a-meanwhile", "--proxy-user", A)[0] == "200"
    assert site.record.last().path.endswith("/a-meanwhile")
    assert log_line(agents, "/c-over")["decision"] == "refused-rate-limited"
    limited = {"site": "other", "decision": "refused", "status_class": "4xx", "client": "agent-c"}
    wait_for(lambda: refused_count(agents, **limited) == 2, what="both 429s in /metrics")


def test_no_password_is_in_the_proxys_output_or_its_replies(agents, plain_site):
    replies = [
        curl(agents.url, ACME, agents.ca_file, "-v", "--proxy-user", A),
        curl(
            agents.url, ACME, agents.ca_file, "-v", "--proxy-user", f"agent-a:{B_PASSWORD}", "--interface", "127.0.0.5"
        ),
        curl(
            agents.url,
            f"http://127.0.0.1:{plain_site.port}/x",
            agents.ca_file,
            *("-v", "--proxy-user", "agent-b:x", "--interface", "127.0.0.5"),
        ),
        curl(agents.url, GLOBEX, agents.ca_file, "-v", "--proxy-user", A),
    ]
    metrics = get(admin_port(agents.output), "/metrics")[2]
    server_side = agents.output + metrics + "".join(reply.stdout for reply in replies)
    for secret in (*PASSWORDS, *(basic(*login.split(":", 1)).split()[1] for login in (A, B, C))):
        assert secret not in server_side


def test_saved_flows_hold_the_client_name_but_no_password(site, ca_file, tmp_path, config):
    saved = tmp_path / "flows.mitm"
    with saving_mitmdump(client_env(site, ca_file, tmp_path, config), saved) as port:
        for login in (A, f"agent-a:{B_PASSWORD}"):
            curl(f"http://127.0.0.1:{port}", ACME + "/saved", tmp_path / "mitmproxy-ca-cert.pem", "--proxy-user", login)
    data = saved.read_bytes()
    with saved.open("rb") as file:
        users = [FlowRecord.of(flow.metadata).user for flow in io.FlowReader(file).stream()]
    assert "agent-a" in users
    for secret in (A_PASSWORD, B_PASSWORD, basic(*A.split(":", 1)).split()[1]):
        assert secret.encode() not in data


def test_reverse_mode_needs_one_clients_login_and_keeps_its_bounds(site, ca_file, tmp_path, config):
    proxy = start_proxy(client_env(site, ca_file, tmp_path, config), "--reverse", "https://globex.atlassian.net")
    try:
        url = f"{proxy.url}/rest/api/3/myself"

        def status(*login: str) -> str:
            headers = [f"Proxy-Authorization: {basic(*each.split(':', 1))}" for each in login]
            args = [arg for header in headers for arg in ("-H", header)]
            return subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args, url],
                capture_output=True,
                text=True,
                env=CLIENT_ENV,
                check=False,
            ).stdout

        assert status() == "407"
        assert status(f"agent-b:{A_PASSWORD}") == "407"
        assert status(A) == "403", "agent-a may use acme only"
        assert status(B) == "200"
        assert site.record.last().header("Authorization") == basic(GLOBEX_USER, TOKEN_24)
        assert site.record.last().header("Proxy-Authorization") is None
    finally:
        proxy.stop()


def test_exec_client_runs_the_command_as_that_client(site, ca_file, tmp_path, config):
    script = (
        f"curl -sS -o /dev/null -w '%{{http_code}} ' {ACME}/exec-read; "
        f"curl -sS -o /dev/null -w '%{{http_code}}' -X DELETE {ACME}/exec-write"
    )
    env = client_env(site, ca_file, tmp_path, config)
    result = run_cli("exec", "--client", "agent-b", "--", "sh", "-c", script, env=env)
    assert result.stdout == "200 403", result.stderr
    assert "user=agent-b credentials=refused-client-read-only" in result.stderr
    assert B_PASSWORD not in result.stderr
    unknown = run_cli("exec", "--client", "nobody", "--", "true", env=env)
    assert unknown.returncode == 2
    assert "--client: no client is named 'nobody'" in unknown.stderr

"""Credentials done right: a real Secret Service, login/logout/check, and rejected tokens."""

from __future__ import annotations

import signal
import subprocess
import tomllib

import pytest
import requests

from support.clients import curl
from support.keyring_service import keyring_call, secret_service
from support.proxy import EMAIL, TOKEN_24, TOKEN_192, basic, proxy_env, run_cli, start_proxy, wait_for

MYSELF = "https://acme.atlassian.net/rest/api/3/myself"
SECRETS = (TOKEN_24, TOKEN_192, basic(EMAIL, TOKEN_24).split()[1], basic(EMAIL, TOKEN_192).split()[1])


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    result = run_cli(*args, env=env, stdin=stdin)
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr
    return result


@pytest.fixture
def keyring_env(site, ca_file, confdir, tmp_path):
    with secret_service(tmp_path / "home") as service:
        env = proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_API_TOKEN=None)
        env.update(service)
        yield env


@pytest.fixture
def rejecting(site):
    """Make the stand-in treat these tokens as revoked, for one test."""
    rejected = site.record.rejected

    def reject(token: str) -> None:
        rejected.add(basic(EMAIL, token))

    yield reject
    rejected.clear()


def test_login_from_stdin_then_run_uses_the_stored_token_then_logout(keyring_env, site, tmp_path):
    login = cli(keyring_env, "login", "--email", EMAIL, "--site", "acme.atlassian.net", stdin=TOKEN_192 + "\n")
    assert login.returncode == 0, login.stderr
    assert "Test User" in login.stdout
    assert "keyring.backends.SecretService.Keyring" in login.stdout
    config = tomllib.loads((tmp_path / "home" / "config" / "atlassian-auth-proxy" / "config.toml").read_text())
    assert config == {"email": EMAIL, "site": "acme.atlassian.net", "hosts": ["acme.atlassian.net"]}

    proxy = start_proxy(keyring_env)
    try:
        assert "from keyring" in proxy.output
        assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
        assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
        other = curl(proxy.url, "https://other.atlassian.net/pinned", proxy.ca_file)
        assert other.returncode == 60, "after login --site, only that site gets credentials (others are tunnelled)"
    finally:
        assert proxy.stop() == 0

    logout = cli(keyring_env, "logout", "--email", EMAIL)
    assert logout.returncode == 0
    assert f"removed the token for {EMAIL}" in logout.stdout
    missing = cli(keyring_env, "run", "--listen-port", "0")
    assert missing.returncode == 2
    assert "the keyring has no entry (service 'atlassian-auth-proxy', user 'me@acme.example')" in missing.stderr
    assert missing.stderr.count("\n") == 1


def test_login_refuses_a_rejected_token_and_stores_nothing(keyring_env, rejecting):
    rejecting(TOKEN_24)
    login = cli(keyring_env, "login", "--email", EMAIL, "--site", "acme.atlassian.net", stdin=TOKEN_24)
    assert login.returncode == 1
    assert "acme.atlassian.net rejected the token" in login.stderr
    stored = keyring_call(
        keyring_env, f"import keyring; print(keyring.get_password('atlassian-auth-proxy', '{EMAIL}'))"
    )
    assert stored.stdout.strip() == "None"


def test_a_locked_keyring_is_not_a_missing_entry(keyring_env):
    assert cli(keyring_env, "login", "--email", EMAIL, "--no-verify", stdin=TOKEN_24).returncode == 0
    lock = keyring_call(
        keyring_env,
        "import secretstorage; c = secretstorage.get_default_collection(secretstorage.dbus_init()); c.lock(); "
        "print(c.is_locked())",
    )
    assert lock.stdout.strip() == "True", lock.stderr
    result = cli(keyring_env, "run", "--listen-port", "0")
    assert result.returncode == 2
    assert "is locked: unlock it" in result.stderr
    assert "no entry" not in result.stderr


def test_plaintext_keyring_backends_are_refused_unless_allowed(keyring_env, tmp_path):
    env = dict(keyring_env, PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring")
    refused = cli(env, "login", "--email", EMAIL, "--no-verify", stdin=TOKEN_24)
    assert refused.returncode == 2
    assert "keyrings.alt.file.PlaintextKeyring stores secrets in plain files" in refused.stderr
    allowed = cli(
        dict(env, ATLASSIAN_PROXY_ALLOW_INSECURE_KEYRING="true"),
        "login",
        "--email",
        EMAIL,
        "--no-verify",
        stdin=TOKEN_24,
    )
    assert allowed.returncode == 0, allowed.stderr


def test_check_ok_rejected_and_unreachable(site, ca_file, confdir, rejecting):
    env = proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_SITE="acme.atlassian.net")
    ok = cli(env, "check")
    assert ok.returncode == 0, ok.stderr
    assert (
        ok.stdout
        == "acme.atlassian.net: signed in as Test User (accountId test-account) with the token from environment\n"
    )

    rejecting(TOKEN_192)
    rejected = cli(env, "check")
    assert rejected.returncode == 1
    assert "acme.atlassian.net rejected the token for me@acme.example (HTTP 401)" in rejected.stderr

    unreachable = cli(dict(env, ATLASSIAN_PROXY_CONNECT_TO="*.atlassian.net=127.0.0.1:9"), "check")
    assert unreachable.returncode == 2
    assert (
        unreachable.stderr
        == "atlassian-auth-proxy: error: cannot reach acme.atlassian.net: the connection was refused\n"
    )

    del env["ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE"]
    untrusted = cli(env, "check")
    assert untrusted.returncode == 2
    assert "its TLS certificate is not trusted" in untrusted.stderr


@pytest.mark.parametrize(
    ("path", "site_status"),
    [("/rest/api/3/myself", "401"), ("/anonymous/serverInfo", "200")],
    ids=["401", "seraph-header"],
)
def test_rejected_token_backs_off_then_a_new_token_ends_it(make_proxy, site, tmp_path, rejecting, path, site_status):
    rejecting(TOKEN_24)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN_24)
    proxy = make_proxy(ATLASSIAN_PROXY_API_TOKEN=None, ATLASSIAN_PROXY_API_TOKEN_FILE=str(token_file))
    url = f"https://acme.atlassian.net{path}"

    first = curl(proxy.url, url, proxy.ca_file, "-w", "\n%{http_code}")
    assert first.stdout.endswith(f"\n{site_status}"), "the client gets the site's own answer to the first attempt"
    wait_for(lambda: "rejected the API token" in proxy.output, what="the rejection log line")
    line = next(x for x in proxy.output.splitlines() if "rejected the API token" in x)
    assert "acme.atlassian.net" in line
    assert "revoked or expired" in line
    assert "atlassian-auth-proxy login" in line

    attempts_before = sum(1 for r in site.record.requests if r.header("Authorization") == basic(EMAIL, TOKEN_24))
    for _ in range(20):
        reply = curl(proxy.url, url, proxy.ca_file, "-w", "\n%{http_code}", "-D", "-")
        assert reply.stdout.endswith("\n401")
        assert "retry-after:" in reply.stdout.lower()
        assert '"token_rejected"' in reply.stdout
    attempts = sum(1 for r in site.record.requests if r.header("Authorization") == basic(EMAIL, TOKEN_24))
    assert attempts - attempts_before <= 2

    token_file.write_text(TOKEN_192)
    wait_for(lambda: "token reloaded" in proxy.output, what="the new token to be read")
    assert curl(proxy.url, MYSELF, proxy.ca_file).returncode == 0
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
    assert proxy.output.count("rejected the API token") == 1


def test_sighup_rereads_the_keyring_without_dropping_connections(keyring_env, site):
    assert cli(keyring_env, "login", "--email", EMAIL, "--no-verify", stdin=TOKEN_24).returncode == 0
    proxy = start_proxy({**keyring_env, "ATLASSIAN_PROXY_UPSTREAM_POOL": "false"})  # it counts upstream connections
    try:
        with requests.Session() as session:
            session.trust_env = False
            options = {"proxies": {"https": proxy.url}, "verify": str(proxy.ca_file), "timeout": 30}
            assert session.get(MYSELF, **options).status_code == 200
            assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_24)
            connections = site.record.connections

            assert cli(keyring_env, "login", "--email", EMAIL, "--no-verify", stdin=TOKEN_192).returncode == 0
            proxy.process.send_signal(signal.SIGHUP)
            wait_for(lambda: "token reloaded" in proxy.output, what="SIGHUP to re-read the keyring")

            assert session.get(MYSELF, **options).status_code == 200
            assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
            assert site.record.connections == connections, "the client's connection was kept"
    finally:
        assert proxy.stop() == 0

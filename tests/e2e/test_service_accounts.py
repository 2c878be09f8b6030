"""Service accounts: the proxy mints access tokens at auth.atlassian.com and sends them as Bearer on the API gateway.

The stand-in (`support.oauth_stand_in`) behaves like Atlassian's token endpoint and gateway: it
mints for one client id and secret, and its gateway accepts only an access token it minted that
has neither expired nor been revoked. The proxy reaches both through CONNECT_TO, the site's own
host (for its cloudId) the usual stand-in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from support import adminclient, oauth_stand_in
from support.oauth_stand_in import ACCOUNT, CLIENT_ID, CLIENT_SECRET, CLOUD_ID, GATEWAY, TOKEN_HOST
from support.proxy import command, proxy_env, run_cli, saving_mitmdump, wait_for

SITE_TOML = f"""
[[sites]]
name = "acme-bot"
hosts = ["acme.atlassian.net"]
scheme = "client_credentials"
client_id = "{CLIENT_ID}"
client_secret_env = "ACME_BOT_SECRET"
cloud_id = "{CLOUD_ID}"
"""
ISSUE = "https://acme.atlassian.net/rest/api/3/issue/OPS-1"


@pytest.fixture(scope="module")
def oauth(ca):
    server = oauth_stand_in.start(ca.issue_cert(TOKEN_HOST, GATEWAY))
    yield server
    server.shutdown()


def connect_to(site, oauth) -> str:
    return f"{TOKEN_HOST}=127.0.0.1:{oauth.port},{GATEWAY}=127.0.0.1:{oauth.port},*.atlassian.net=127.0.0.1:{site.port}"


def service_env(site, oauth, ca_file, confdir, config: Path, **overrides: str) -> dict[str, str]:
    """The proxy's environment for `config`: the secret in ACME_BOT_SECRET, both stand-ins reachable."""
    settings = {
        "ATLASSIAN_PROXY_EMAIL": None,
        "ATLASSIAN_PROXY_API_TOKEN": None,
        "ATLASSIAN_PROXY_CONFIG": str(config),
        "ATLASSIAN_PROXY_CONNECT_TO": connect_to(site, oauth),
        "ACME_BOT_SECRET": CLIENT_SECRET,
    }
    return proxy_env(site, ca_file, confdir, **{**settings, **overrides})


def start(make_proxy, site, oauth, tmp_path, toml: str = SITE_TOML, **env: str):
    config = tmp_path / "service-account.toml"
    config.write_text(toml)
    return make_proxy(
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_API_TOKEN=None,
        ATLASSIAN_PROXY_CONFIG=str(config),
        ATLASSIAN_PROXY_CONNECT_TO=connect_to(site, oauth),
        ACME_BOT_SECRET=CLIENT_SECRET,
        **env,
    )


def session(proxy) -> requests.Session:
    client = requests.Session()
    client.trust_env = False
    client.proxies = {"https": proxy.url}
    client.verify = str(proxy.ca_file)
    return client


def test_twenty_requests_share_one_minted_token_sent_as_bearer_on_the_gateway(make_proxy, site, oauth, tmp_path):
    record = oauth.reset()
    proxy = start(make_proxy, site, oauth, tmp_path)
    client = session(proxy)
    own = {"Authorization": "Basic Y2xpZW50Om93bg==", "Cookie": "tenant.session.token=client-own"}
    for number in range(20):
        reply = client.get(f"https://acme.atlassian.net/rest/api/3/issue/OPS-{number}", headers=own)
        assert reply.status_code == 200, reply.text
        assert reply.json()["path"] == f"/ex/jira/{CLOUD_ID}/rest/api/3/issue/OPS-{number}"
    assert record.mints == 1
    (token,) = record.issued()
    assert record.verdicts() == ["valid"] * 20
    assert {seen.authorization for seen in record.gateway} == {f"Bearer {token}"}
    assert {seen.cookie for seen in record.gateway} == {None}, "the client's own Cookie is removed"
    (body,) = record.bodies
    assert b"grant_type=client_credentials" in body
    assert CLIENT_ID.encode() in body
    assert client.get(f"https://{GATEWAY}/ex/confluence/{CLOUD_ID}/wiki/rest/api/space").status_code == 200
    assert record.gateway[-1].authorization == f"Bearer {token}", "the gateway form of its cloudId too"
    assert record.mints == 1
    before = site.record.connections
    for _ in range(3):
        assert session(proxy).get(ISSUE).status_code == 200
    assert site.record.connections == before, "no connection to the site's own host for requests that go elsewhere"
    page = client.get("https://acme.atlassian.net/secure/Dashboard.jspa")
    assert page.status_code == 200, "a web page goes to the site itself, handshaken when it is asked for"
    seen = site.record.last()
    assert (seen.path, seen.sni, seen.header("Authorization")) == ("/secure/Dashboard.jspa", "acme.atlassian.net", None)


def test_without_cloud_id_the_site_looks_it_up_at_start(make_proxy, site, oauth, tmp_path):
    from support.upstream import CLOUD_ID as LOOKED_UP

    record = oauth.reset()
    proxy = start(make_proxy, site, oauth, tmp_path, SITE_TOML.replace(f'cloud_id = "{CLOUD_ID}"', ""))
    reply = session(proxy).get(ISSUE)
    assert reply.status_code == 200
    assert record.gateway[-1].path == f"/ex/jira/{LOOKED_UP}/rest/api/3/issue/OPS-1"


def test_a_ten_second_token_is_minted_again_before_it_expires(make_proxy, site, oauth, tmp_path):
    record = oauth.reset(expires_in=10)
    proxy = start(make_proxy, site, oauth, tmp_path)
    client = session(proxy)
    began = time.monotonic()
    while time.monotonic() - began < 13:
        assert client.get(ISSUE).status_code == 200
        time.sleep(0.2)  # the workload's pace over the token's lifetime, not a wait for readiness
    assert record.mints >= 2, "minted again once less than 2 s (a fifth) was left"
    assert set(record.verdicts()) == {"valid"}, "never an expired token at the gateway"


def test_sixteen_concurrent_first_requests_wait_for_one_mint(make_proxy, site, oauth, tmp_path):
    record = oauth.reset(delay=0.5)
    proxy = start(make_proxy, site, oauth, tmp_path)

    def fetch(number: int) -> int:
        with session(proxy) as client:
            return client.get(f"https://acme.atlassian.net/rest/api/3/issue/OPS-{number}").status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(fetch, range(16)))
    assert statuses == [200] * 16
    assert record.mints == 1
    assert len(record.attempts) == 1


def revoked_after_a_get(make_proxy, site, oauth, tmp_path, **env: str):
    """A proxy for the service account, a session through it whose GET succeeded, then every token revoked."""
    record = oauth.reset()
    proxy = start(make_proxy, site, oauth, tmp_path, **env)
    client = session(proxy)
    assert client.get(ISSUE).status_code == 200
    record.revoke_all()
    return record, proxy, client


def test_a_revoked_token_is_minted_again_once_and_a_get_is_sent_again(make_proxy, site, oauth, tmp_path):
    record, proxy, client = revoked_after_a_get(make_proxy, site, oauth, tmp_path)
    reply = client.get(ISSUE, headers={"Accept": "application/json", "X-Trace": "replayed"})
    assert reply.status_code == 200, "the client gets the answer to the GET sent again with the new token"
    assert reply.json() == {"method": "GET", "path": f"/ex/jira/{CLOUD_ID}/rest/api/3/issue/OPS-1"}
    assert "set-cookie" not in {name.lower() for name in reply.headers}
    assert record.mints == 2
    assert record.verdicts() == ["valid", "revoked", "valid"]
    assert client.head(ISSUE).status_code == 200
    assert record.mints == 2
    assert "refused its access token before it expired" in proxy.output


def test_a_post_refused_after_revocation_gets_the_401_and_is_not_sent_again(make_proxy, site, oauth, tmp_path):
    record, proxy, client = revoked_after_a_get(make_proxy, site, oauth, tmp_path)
    reply = client.post("https://acme.atlassian.net/rest/api/3/issue", json={"fields": {}})
    assert reply.status_code == 401, "a write is never sent twice"
    wait_for(lambda: record.mints == 2, what="the new token minted after the POST's 401")
    assert client.get(ISSUE).status_code == 200
    assert [seen.method for seen in record.gateway] == ["GET", "POST", "GET"]
    assert record.verdicts() == ["valid", "revoked", "valid"]
    assert record.mints == 2
    assert "rejected the API token" not in proxy.output, "no pause, no confirmation"


def test_a_rejected_secret_answers_502_and_is_tried_at_most_every_30_s(make_proxy, site, oauth, tmp_path):
    record = oauth.reset(secret="another-secret-altogether")
    proxy = start(make_proxy, site, oauth, tmp_path, ATLASSIAN_PROXY_ADMIN_PORT="0")
    client = session(proxy)
    for _ in range(5):
        reply = client.get(ISSUE)
        assert reply.status_code == 502
        body = reply.json()
        assert body["error"] == "client_credentials_rejected"
        assert body["message"].startswith("site acme-bot: auth.atlassian.com rejected the client credentials")
    assert len(record.attempts) == 1, "one try, then none for 30 s"
    assert record.gateway == []
    assert proxy.output.count("rejected the client credentials of client_id") == 1, "logged once per rejection"
    status, health = adminclient.healthz(adminclient.admin_port(proxy.output))
    assert status == 503
    assert "acme-bot" in health["reason"]


def test_a_429_from_the_token_endpoint_is_honoured_no_mint_before_its_retry_after(make_proxy, site, oauth, tmp_path):
    record = oauth.reset(limited=1, retry_after=120)
    proxy = start(make_proxy, site, oauth, tmp_path)
    client = session(proxy)
    for _ in range(4):
        reply = client.get(ISSUE)
        assert reply.status_code == 502, reply.text
        assert reply.json()["error"] == "client_credentials_unavailable"
        assert 115 <= int(reply.headers["Retry-After"]) <= 120, "the endpoint's own wait, not the 5 s of a failure"
        assert "HTTP 429" in reply.json()["message"]
    assert len(record.attempts) == 1, "never asked again before its Retry-After"
    assert record.gateway == []
    assert proxy.output.count("answered 429 Too Many Requests") == 1
    assert "rejected" not in proxy.output, "a 429 says nothing of the secret"


def test_gateway_form_requests_get_the_credentials_of_the_site_that_owns_the_cloud_id(make_proxy, site, tmp_path):
    from support.proxy import EMAIL, TOKEN_24, TOKEN_192, basic, site_toml
    from support.upstream import CLOUD_ID as SCOPED_CLOUD_ID

    classic_cloud_id = "0b0e5c1a-0000-4000-8000-0000000c1a55"
    config = tmp_path / "gateway.toml"
    config.write_text(
        site_toml("acme", "acme.atlassian.net", EMAIL, token_env="ACME_TOKEN")
        + "scoped = true\n\n"
        + site_toml("globex", "globex.atlassian.net", EMAIL, token_env="GLOBEX_TOKEN", cloud_id=classic_cloud_id)
    )
    proxy = make_proxy(
        "--config",
        str(config),
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_API_TOKEN=None,
        ACME_TOKEN=TOKEN_192,
        GLOBEX_TOKEN=TOKEN_24,
    )
    client = session(proxy)
    own = {"Authorization": "Bearer the-clients-own-token", "Cookie": "session=the-clients-own"}

    scoped = f"https://{GATEWAY}/ex/confluence/{SCOPED_CLOUD_ID}/wiki/rest/api/content/30001"
    assert client.get(scoped, headers=own).status_code == 200
    seen = site.record.last()
    assert (seen.path, seen.header("Host"), seen.sni) == (scoped.removeprefix(f"https://{GATEWAY}"), GATEWAY, GATEWAY)
    assert seen.header("Authorization") == basic(EMAIL, TOKEN_192), "a scoped token works on the gateway"
    assert seen.header("Cookie") is None

    classic = f"https://{GATEWAY}/ex/confluence/{classic_cloud_id}/wiki/rest/api/content/30001?expand=space"
    assert client.get(classic, headers=own).status_code == 200
    seen = site.record.last()
    assert seen.path == "/wiki/rest/api/content/30001?expand=space", "a classic token goes to the site itself"
    assert (seen.header("Host"), seen.sni) == ("globex.atlassian.net", "globex.atlassian.net")
    assert seen.header("Authorization") == basic(EMAIL, TOKEN_24)
    assert client.get(f"https://{GATEWAY}/ex/jira/{classic_cloud_id}/rest/api/3/myself").status_code == 200
    assert site.record.last().path == "/rest/api/3/myself"

    unknown = f"https://{GATEWAY}/ex/jira/0dd0dd00-0000-4000-8000-000000000000/rest/api/3/myself"
    assert client.get(unknown, headers=own).status_code == 200
    seen = site.record.last()
    assert (seen.header("Host"), seen.header("Authorization"), seen.header("Cookie")) == (
        GATEWAY,
        own["Authorization"],
        own["Cookie"],
    ), "a cloudId no site owns: forwarded as the client sent it"


def test_no_secret_or_access_token_in_logs_bodies_metrics_or_saved_flows(site, oauth, ca_file, confdir, tmp_path):
    record = oauth.reset()
    config = tmp_path / "service-account.toml"
    config.write_text(SITE_TOML)
    env = service_env(site, oauth, ca_file, confdir, config, ATLASSIAN_PROXY_ADMIN_PORT="0")
    saved = tmp_path / "flows"
    seen: list[str] = []
    with saving_mitmdump(env, saved) as port:
        client = requests.Session()
        client.trust_env = False
        client.proxies = {"https": f"http://127.0.0.1:{port}"}
        client.verify = str(confdir / "mitmproxy-ca-cert.pem")
        for url in (ISSUE, f"https://{GATEWAY}/ex/jira/{CLOUD_ID}/rest/api/3/myself"):
            reply = client.get(url)
            seen.append(json.dumps(dict(reply.headers)) + reply.text)
        record.revoke_all()
        reply = client.get(ISSUE)
        assert reply.status_code == 200
        seen.append(json.dumps(dict(reply.headers)) + reply.text)
        reply = client.post("https://acme.atlassian.net/rest/api/3/issue", json={})
        seen.append(json.dumps(dict(reply.headers)) + reply.text)
    assert record.mints >= 2
    captured = saved.read_bytes()
    assert b"Bearer" not in captured, "the flow holds the placeholder, never the access token"
    for secret in (CLIENT_SECRET, *record.issued()):
        assert secret.encode() not in captured
        assert all(secret not in text for text in seen)


def test_the_proxys_own_output_and_metrics_hold_no_secret_or_token(make_proxy, site, oauth, tmp_path):
    admin = {"ATLASSIAN_PROXY_ADMIN_PORT": "0", "ATLASSIAN_PROXY_LOG_FORMAT": "json"}
    record, proxy, client = revoked_after_a_get(make_proxy, site, oauth, tmp_path, **admin)
    assert client.get(ISSUE).status_code == 200
    port = adminclient.admin_port(proxy.output)
    _, _, metrics = adminclient.get(port, "/metrics")
    _, _, health = adminclient.get(port, "/healthz")
    proxy.stop()
    for secret in (CLIENT_SECRET, *record.issued()):
        assert secret not in proxy.output
        assert secret not in metrics
        assert secret not in health


def test_check_mints_a_token_and_says_who_the_service_account_is(site, oauth, ca_file, confdir, tmp_path):
    record = oauth.reset()
    config = tmp_path / "service-account.toml"
    config.write_text(SITE_TOML)
    result = run_cli("check", env=service_env(site, oauth, ca_file, confdir, config))
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"signed in through the API gateway as {ACCOUNT['displayName']}" in result.stdout
    assert record.gateway[-1].path == f"/ex/jira/{CLOUD_ID}/rest/api/3/myself"
    oauth.reset(secret="another-secret-altogether")
    result = run_cli("check", env=service_env(site, oauth, ca_file, confdir, config))
    assert result.returncode == 1
    assert "rejected the client credentials" in result.stdout + result.stderr
    assert CLIENT_SECRET not in result.stdout + result.stderr


def test_exec_keeps_the_client_secret_from_the_command(site, oauth, ca_file, confdir, tmp_path):
    record = oauth.reset()
    config = tmp_path / "service-account.toml"
    config.write_text(SITE_TOML)
    env = {
        k: v for k, v in service_env(site, oauth, ca_file, confdir, config).items() if not k.lower().endswith("_proxy")
    }
    script = (
        f"{sys.executable} -c 'import os, json; print(json.dumps(dict(os.environ)))'; "
        f"curl -sS -o /dev/null -w '%{{http_code}}' --max-time 20 {ISSUE}"
    )
    result = subprocess.run(
        [*command(), "exec", "--", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, result.stderr
    printed, status = result.stdout.rsplit("\n", 1)
    assert status == "200", "the proxy itself still had the secret"
    assert record.mints == 1
    environment = json.loads(printed)
    assert "ACME_BOT_SECRET" not in environment
    assert CLIENT_SECRET not in printed


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('client_id = "sa-Client-0123456789abcdef"\n', ""), 'scheme = "client_credentials" needs client_id'),
        (('hosts = ["acme.atlassian.net"]', 'hosts = ["*.atlassian.net"]'), "name its host exactly"),
        (('hosts = ["acme.atlassian.net"]', 'hosts = ["acme.atlassian.net", "globex.atlassian.net"]'), "one host"),
        (("client_secret_env", "token_env"), "remove token_env"),
        (('cloud_id = "5ca1ab1e', 'cloud_id = "5ca1/ab1e'), "is not a cloudId"),
        (("ACME_BOT_SECRET", "UNSET_BOT_SECRET"), "UNSET_BOT_SECRET is not set: it should hold the client secret"),
    ],
)
def test_a_service_account_site_that_cannot_work_stops_the_start(
    site, oauth, ca_file, confdir, tmp_path, change, expected
):
    config = tmp_path / "bad.toml"
    config.write_text(SITE_TOML.replace(*change))
    result = run_cli("run", "--config", str(config), env=service_env(site, oauth, ca_file, confdir, config))
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert CLIENT_SECRET not in result.stderr


def test_login_with_a_client_id_stores_the_secret_in_the_keyring_and_run_mints_with_it(
    site, oauth, ca_file, confdir, tmp_path
):
    from support.keyring_service import secret_service
    from support.proxy import start_proxy

    record = oauth.reset()
    config = tmp_path / "service-account.toml"
    config.write_text(SITE_TOML.replace('client_secret_env = "ACME_BOT_SECRET"\n', ""))
    with secret_service(tmp_path / "home") as service:
        env = {**service_env(site, oauth, ca_file, confdir, config, ACME_BOT_SECRET=None), **service}
        login = run_cli("login", "--client-id", CLIENT_ID, env=env, stdin=CLIENT_SECRET + "\n")
        assert login.returncode == 0, login.stderr
        assert "auth.atlassian.com: the client credentials work" in login.stdout
        assert f"user client:{CLIENT_ID}" in login.stdout
        assert CLIENT_SECRET not in login.stdout + login.stderr
        assert record.mints == 1, "login verified the secret by minting"
        proxy = start_proxy(env)
        try:
            assert f"keyring ('atlassian-auth-proxy', 'client:{CLIENT_ID}')" in proxy.output
            assert session(proxy).get(ISSUE).status_code == 200
        finally:
            assert proxy.stop() == 0
        assert record.mints == 2
        logout = run_cli("logout", "--client-id", CLIENT_ID, env=env)
        assert f"removed the client secret of {CLIENT_ID}" in logout.stdout
        missing = run_cli("run", "--listen-port", "0", env=env)
        assert missing.returncode == 2
        assert "no client secret: " in missing.stderr
        assert f"user 'client:{CLIENT_ID}'" in missing.stderr


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.atlassian.net/rest/..;/..;/..;/..;/ex/jira/0dd0dd00-0000-4000-8000-000000000000/rest/api/3/myself",
        f"https://{GATEWAY}/ex/jira/{CLOUD_ID}/..;/0dd0dd00-0000-4000-8000-000000000000/rest/api/3/myself",
    ],
)
def test_no_bearer_for_a_path_a_servlet_resolves_outside_the_sites_prefix(make_proxy, site, oauth, tmp_path, url):
    """`..;` is `..` to a servlet container: under the site's prefix in the request line, another tenant's after."""
    record = oauth.reset()
    proxy = start(make_proxy, site, oauth, tmp_path)
    result = subprocess.run(
        ["curl", "-sS", "--path-as-is", "-o", "/dev/null", "--proxy", proxy.url, "--cacert", str(proxy.ca_file), url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert all(seen.authorization is None for seen in record.gateway), "no Bearer left with it"
    assert record.mints == 0

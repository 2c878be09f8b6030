"""Token health as Atlassian reports it: scope misses and permission 401s never pause a good token,
a rejected one still pauses, renamed sites are named, and a recorded expiry date is acted on."""

from __future__ import annotations

import datetime as dt
import tomllib

import pytest

from support.adminclient import admin_port, get, healthz, samples, value
from support.clients import curl, status_and_body
from support.keyring_service import secret_service
from support.proxy import EMAIL, TOKEN_24, TOKEN_192, basic, proxy_env, run_cli, site_toml, start_scoped, wait_for
from support.upstream import CLOUD_ID, RENAMED_FROM

SITE = "https://acme.atlassian.net"
MYSELF = SITE + "/rest/api/3/myself"
GOOD = basic(EMAIL, TOKEN_192)
BAD = basic(EMAIL, TOKEN_24)


@pytest.fixture
def rejecting(site):
    """Make the stand-in treat TOKEN_24 as revoked, for one test."""
    site.record.rejected.add(BAD)
    yield
    site.record.rejected.clear()


def attempts(site, authorization: str) -> int:
    with site.record.lock:
        return sum(1 for r in site.record.requests if r.header("Authorization") == authorization)


def assert_myself_keeps_working(proxy, site) -> None:
    before = attempts(site, GOOD)
    for _ in range(10):
        status, body = status_and_body(proxy, MYSELF)
        assert status == "200", body
    assert attempts(site, GOOD) - before == 10, "every request reached the site with the credentials"


def test_scope_miss_goes_to_the_client_is_logged_and_never_pauses(proxy, site):
    status, body = status_and_body(proxy, SITE + "/scope-missing/rest/api/3/issue?jql=secret")
    assert status == "401"
    assert "scope does not match" in body, "the client gets the site's own answer"
    wait_for(lambda: "lacks the scope" in proxy.output, what="the scope-miss log line")
    line = next(x for x in proxy.output.splitlines() if "lacks the scope" in x)
    assert "acme.atlassian.net" in line
    assert "GET /scope-missing/rest/api/3/issue" in line
    assert "secret" not in line, "the query stays out of the log"
    assert_myself_keeps_working(proxy, site)
    status_and_body(proxy, SITE + "/scope-missing/rest/api/3/issue")
    assert proxy.output.count("lacks the scope") == 1, "once per (site, route)"
    assert "rejected the API token" not in proxy.output


def test_endpoint_401_with_a_valid_token_is_confirmed_and_never_pauses(proxy, site):
    myself_before = sum(1 for r in site.record.requests if r.path == "/rest/api/3/myself")
    status, body = status_and_body(proxy, SITE + "/needs-admin/rest/api/3/project")
    assert status == "401"
    assert "Authentication required" in body
    wait_for(lambda: "lacks a permission" in proxy.output, what="the confirmed-valid log line")
    line = next(x for x in proxy.output.splitlines() if "lacks a permission" in x)
    assert "GET /needs-admin/rest/api/3/project" in line
    assert "/rest/api/3/myself accepts" in line
    confirmation = [r for r in site.record.requests if r.path == "/rest/api/3/myself"][myself_before]
    assert confirmation.header("Authorization") == GOOD, "the confirmation used the same credentials"
    assert confirmation.sni == "acme.atlassian.net", "over TLS, to the site's own identity page"
    assert_myself_keeps_working(proxy, site)
    assert "rejected the API token" not in proxy.output
    for leak in (TOKEN_192, GOOD.split()[1]):
        assert leak not in proxy.output


def test_endpoint_401_with_a_rejected_token_starts_the_pause(make_proxy, site, rejecting):
    proxy = make_proxy(
        ATLASSIAN_PROXY_API_TOKEN=TOKEN_24, ATLASSIAN_PROXY_ADMIN_PORT="0", ATLASSIAN_PROXY_HOSTS="acme.atlassian.net"
    )
    url = SITE + "/needs-admin/rest/api/3/project"
    assert status_and_body(proxy, url)[0] == "401"
    before = attempts(site, BAD)
    for _ in range(20):
        status_and_body(proxy, url)
    wait_for(lambda: "rejected the API token" in proxy.output, what="the rejection log line")
    assert attempts(site, BAD) - before <= 3, "at most 3 more attempts, the confirmation included"
    reply = curl(proxy.url, MYSELF, proxy.ca_file, "-D", "-")
    assert '"token_rejected"' in reply.stdout, "the pause is on"
    assert "/rest/api/3/myself" in next(x for x in proxy.output.splitlines() if "rejected the API token" in x)
    status, body = healthz(admin_port(proxy.output))
    assert status == 503
    assert "rejected the API token" in body["reason"]


def test_renamed_site_is_named_once_and_the_redirect_passes(proxy, site):
    for path in ("/rest/api/3/myself", "/browse/ABC-1"):
        reply = curl(proxy.url, f"https://{RENAMED_FROM}{path}", proxy.ca_file, "-D", "-", "-o", "/dev/null")
        assert "\nHTTP/1.1 301 " in reply.stdout, "the redirect passes unchanged"
        assert f"\nLocation: https://acme.atlassian.net{path}\n" in reply.stdout
    assert site.record.last().header("Authorization") == GOOD
    wait_for(lambda: "probably renamed" in proxy.output, what="the rename log line")
    lines = [x for x in proxy.output.splitlines() if "probably renamed" in x]
    assert len(lines) == 1, "once per pair"
    assert f"{RENAMED_FROM} redirects to acme.atlassian.net" in lines[0]
    assert "Change HOSTS" in lines[0]
    assert "already gets the credentials of site default" in lines[0]


def test_expiry_five_days_ahead_warns_and_sets_the_gauge(make_proxy):
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=5)
    proxy = make_proxy(ATLASSIAN_PROXY_TOKEN_EXPIRES=day.isoformat(), ATLASSIAN_PROXY_ADMIN_PORT="0")
    wait_for(lambda: "expires on" in proxy.output, what="the expiry warning")
    line = next(x for x in proxy.output.splitlines() if "expires on" in x)
    assert f"site default expires on {day.isoformat()} (in 5 days)" in line
    port = admin_port(proxy.output)
    metrics = samples(get(port, "/metrics")[2])
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC).timestamp()
    assert value(metrics, "atlassian_proxy_token_expiry_timestamp_seconds", site="default") == midnight
    assert healthz(port)[0] == 200, "not expired yet"


def test_expired_two_days_ago_fails_healthz_but_requests_still_go(make_proxy, site):
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    proxy = make_proxy(ATLASSIAN_PROXY_TOKEN_EXPIRES=day.isoformat(), ATLASSIAN_PROXY_ADMIN_PORT="0")
    status, body = healthz(admin_port(proxy.output))
    assert status == 503
    assert f"expired on {day.isoformat()}" in body["reason"]
    assert status_and_body(proxy, MYSELF)[0] == "200", "the site decides"
    assert site.record.last().header("Authorization") == GOOD


def test_malformed_expiry_date_exits_2_naming_the_setting(site, ca_file, confdir):
    env = proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_TOKEN_EXPIRES="31/12/2026")
    result = run_cli("run", "--listen-port", "0", env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "ATLASSIAN_PROXY_TOKEN_EXPIRES" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_prints_the_date_and_days_left(site, ca_file, confdir):
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30)
    env = proxy_env(
        site, ca_file, confdir, ATLASSIAN_PROXY_TOKEN_EXPIRES=day.isoformat(), ATLASSIAN_PROXY_SITE="acme.atlassian.net"
    )
    result = run_cli("check", env=env)
    assert result.returncode == 0, result.stderr
    assert f"the token expires on {day.isoformat()} (30 days left)" in result.stdout


TWO_SITES = site_toml("acme", "acme.atlassian.net", "me@acme.example", token_env="ACME_TOKEN") + site_toml(
    "globex", "globex.atlassian.net", "me@acme.example", token_env="GLOBEX_TOKEN", token_expires="not-a-date"
)


def test_one_rejected_site_leaves_the_other_working(make_proxy, site, tmp_path, rejecting):
    config = tmp_path / "sites.toml"
    config.write_text(TWO_SITES.replace('token_expires = "not-a-date"\n', ""))
    proxy = make_proxy(
        ATLASSIAN_PROXY_API_TOKEN=None,
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_CONFIG=str(config),
        ACME_TOKEN=TOKEN_24,
        GLOBEX_TOKEN=TOKEN_192,
    )
    assert status_and_body(proxy, MYSELF)[0] == "401"
    wait_for(lambda: "rejected the API token of site acme" in proxy.output, what="acme's rejection")
    assert '"token_rejected"' in status_and_body(proxy, MYSELF)[1]
    before = attempts(site, GOOD)
    for _ in range(5):
        assert status_and_body(proxy, "https://globex.atlassian.net/rest/api/3/myself")[0] == "200"
    assert attempts(site, GOOD) - before == 5


def test_malformed_site_expiry_date_exits_2_naming_the_table(site, ca_file, confdir, tmp_path):
    config = tmp_path / "sites.toml"
    config.write_text(TWO_SITES)
    env = proxy_env(
        site,
        ca_file,
        confdir,
        ATLASSIAN_PROXY_API_TOKEN=None,
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_CONFIG=str(config),
    )
    result = run_cli("run", "--listen-port", "0", env={**env, "ACME_TOKEN": TOKEN_24, "GLOBEX_TOKEN": TOKEN_192})
    assert result.returncode == 2
    assert "[[sites]] number 2, token_expires" in result.stderr
    assert "Traceback" not in result.stderr


def test_login_records_the_expiry_next_to_the_email_and_check_reads_it(site, ca_file, confdir, tmp_path):
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)
    with secret_service(tmp_path / "home") as service:
        env = {
            **proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_API_TOKEN=None, ATLASSIAN_PROXY_EMAIL=None),
            **service,
        }
        bad = run_cli("login", "--email", EMAIL, "--expires", "2026-02-30", env=env, stdin=TOKEN_192)
        assert bad.returncode == 2
        assert "--expires" in bad.stderr
        assert "Traceback" not in bad.stderr

        args = ("login", "--email", EMAIL, "--site", "acme.atlassian.net", "--expires", day.isoformat())
        login = run_cli(*args, env=env, stdin=TOKEN_192)
        assert login.returncode == 0, login.stderr
        config = tomllib.loads((tmp_path / "home" / "config" / "atlassian-auth-proxy" / "config.toml").read_text())
        assert config["email"] == EMAIL
        assert config["token_expires"] == day

        check = run_cli("check", env=env)
        assert check.returncode == 0, check.stderr
        assert f"acme.atlassian.net: the token expires on {day.isoformat()} (3 days left)" in check.stdout
        for output in (bad.stdout + bad.stderr, login.stdout + login.stderr, check.stdout + check.stderr):
            assert TOKEN_192 not in output


def test_scoped_site_confirms_at_the_gateway_identity_page(make_proxy, site, tmp_path):
    proxy = start_scoped(make_proxy, tmp_path)
    gateway_myself = f"/ex/jira/{CLOUD_ID}/rest/api/3/myself"
    assert status_and_body(proxy, SITE + "/rest/scope-missing/search")[0] == "401"
    assert status_and_body(proxy, SITE + "/rest/needs-admin/project")[0] == "401"
    wait_for(lambda: "lacks a permission" in proxy.output, what="the gateway confirmation")
    assert f"api.atlassian.com{gateway_myself} accepts" in proxy.output
    assert "lacks the scope" in proxy.output
    confirmation = next(r for r in reversed(site.record.requests) if r.path == gateway_myself)
    assert (confirmation.sni, confirmation.header("Authorization")) == ("api.atlassian.com", GOOD)
    for _ in range(5):
        assert status_and_body(proxy, MYSELF)[0] == "200"
    assert "rejected the API token" not in proxy.output

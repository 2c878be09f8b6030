"""Token health by design (red-team findings 3, 8 and 11), end to end with the real proxy, the stand-in and curl.

A rejection is the token's, confirmed at the site's home: a host a client names under the wildcard
can pause only itself. No answer to a client's request pauses by itself, and a login of the
client's own in the query never reaches the site. The identity page follows a Data Center site's
declared layout, for `check` too.
"""

from __future__ import annotations

from support.adminclient import admin_port, healthz
from support.clients import status_and_body
from support.proxy import proxy_env, run_cli, wait_for

ACME = "acme.atlassian.net"
MYSELF = "/rest/api/3/myself"


def requests_since(site, count: int) -> list:
    with site.record.lock:
        return site.record.requests[count:]


def test_a_host_a_client_names_under_the_wildcard_pauses_alone_when_the_home_accepts_the_token(make_proxy, site):
    proxy = make_proxy(ATLASSIAN_PROXY_SITE=ACME, ATLASSIAN_PROXY_ADMIN_PORT="0")
    before = len(site.record.requests)
    status, body = status_and_body(proxy, "https://t9.atlassian.net/needs-admin/rest/api/3/project")
    assert status == "401", body
    wait_for(lambda: "t9.atlassian.net refused the API token of site default" in proxy.output, what="t9's pause")
    status, body = status_and_body(proxy, "https://t9.atlassian.net" + MYSELF)
    assert (status, '"token_rejected"' in body) == ("401", True), "t9 alone is paused"
    assert status_and_body(proxy, f"https://{ACME}{MYSELF}")[0] == "200", "the home goes on"
    assert status_and_body(proxy, f"https://t8.atlassian.net{MYSELF}")[0] == "200", "and every other host"
    sent = requests_since(site, before)
    confirmation = next(r for r in sent if r.path == MYSELF)
    assert confirmation.header("Host") == ACME, "confirmed at the home, not at the host the client chose"
    assert "rejected the API token" not in proxy.output
    assert healthz(admin_port(proxy.output)) == (200, {"status": "ok", "paused": ["t9.atlassian.net"]})


def test_a_failed_login_header_is_confirmed_and_never_pauses_a_valid_token(make_proxy, site):
    proxy = make_proxy()
    status, body = status_and_body(proxy, f"https://{ACME}/login-failed/rest/api/3/issue/OPS-1")
    assert (status, "login failed" in body) == ("401", True), "the client gets the site's own answer"
    wait_for(lambda: "the token stays in use" in proxy.output, what="the confirmation's verdict")
    for _ in range(3):
        assert status_and_body(proxy, f"https://{ACME}{MYSELF}")[0] == "200"
    assert "rejected the API token" not in proxy.output


def test_a_login_of_the_clients_own_in_the_query_never_reaches_the_site(proxy, site):
    before = len(site.record.requests)
    status, body = status_and_body(proxy, f"https://{ACME}{MYSELF}?os_username=nobody&os%5Fpassword=x")
    assert status == "400"
    assert "the query carries os_username, a login of the client's own" in body
    assert requests_since(site, before) == []


DATA_CENTER_SITES = """
[[sites]]
name = "dc-jira"
hosts = ["tracker.corp.example"]
scheme = "bearer"
token_env = "JIRA_PAT"
product = "jira"
context_path = "/jira"

[[sites]]
name = "dc-wiki"
hosts = ["confluence.corp.example"]
scheme = "bearer"
token_env = "WIKI_PAT"
product = "confluence"
context_path = "/confluence/"
"""


def test_check_asks_each_data_center_site_the_identity_page_of_its_layout(site, ca_file, confdir, tmp_path):
    config = tmp_path / "dc.toml"
    config.write_text(DATA_CENTER_SITES)
    env = proxy_env(
        site,
        ca_file,
        confdir,
        ATLASSIAN_PROXY_CONFIG=str(config),
        ATLASSIAN_PROXY_EMAIL=None,
        ATLASSIAN_PROXY_API_TOKEN=None,
        JIRA_PAT="jira-pat-0123456789abcdef",
        WIKI_PAT="wiki-pat-0123456789abcdef",
    )
    before = len(site.record.requests)
    result = run_cli("check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    asked = {(r.header("Host"), r.path) for r in requests_since(site, before)}
    assert asked == {
        ("tracker.corp.example", "/jira/rest/api/2/myself"),
        ("confluence.corp.example", "/confluence/rest/api/user/current"),
    }

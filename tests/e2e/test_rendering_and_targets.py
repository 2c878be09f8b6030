"""Rendering, request targets and read-only in the site's layout, end to end: real proxy, curl, the TLS stand-in.

The red team after issue 20 (findings 1, 2 and 4) has its own tests in `test_redteam_findings.py`;
these cover what closing them by design added around them: a judged body's `expand`, a target URL
parsers read differently from an unbounded client, read-only POSTs judged in a Data Center site's
layout, and Data Center Jira's `latest` API version. Clients: `jira-agent` (project OPS), `reader`
(read-only) and `free-agent` (no bounds).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from support import upstream
from support.bounded import ACME_SITE, DC_JIRA_SITE, SITE_TOKENS, clients_toml, start_bounded
from support.clients import curl
from support.proxy import Proxy

CLOUD = "https://acme.atlassian.net"
DC_JIRA = "https://tracker.corp.example"
DC_UNDECLARED = "https://confluence.corp.example"
PASSWORDS = {
    "jira-agent": "jira-Pa55word-0b7e-rt1x",
    "reader": "read-Pa55word-c41a-rt1x",
    "free-agent": "free-Pa55word-93f2-rt1x",
}
CONFIG = (
    ACME_SITE
    + DC_JIRA_SITE
    + """
[[sites]]
name = "dc-undeclared"
hosts = ["confluence.corp.example"]
scheme = "bearer"
token_env = "DC_PAT"
"""
    + clients_toml({"jira-agent": {"jira_projects": ["OPS"]}, "reader": {"read_only": True}, "free-agent": {}})
)


@pytest.fixture(scope="module")
def running(site, ca_file, confdir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    config = tmp_path_factory.mktemp("rendering") / "config.toml"
    proxy = start_bounded(site, ca_file, confdir, config, CONFIG, PASSWORDS, **SITE_TOKENS)
    yield proxy
    proxy.stop()


def call(proxy: Proxy, site: upstream.UpstreamServer, client: str, method: str, url: str, *args: str):
    """(status, body, the paths the site received because of it) of one curl request as `client`."""
    before = len(site.record.requests)
    login = f"{client}:{PASSWORDS[client]}"
    result = curl(proxy.url, url, proxy.ca_file, "-X", method, "--proxy-user", login, "-w", "\n%{http_code}", *args)
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    with site.record.lock:
        paths = [seen.path for seen in site.record.requests[before:]]
    return int(status), body, paths


def test_a_post_search_whose_body_asks_for_rendered_fields_never_reaches_the_site(running, site):
    body = json.dumps({"jql": "project = OPS", "expand": ["names", "renderedFields"]})
    json_body = ["-H", "Content-Type: application/json", "--data", body]
    status, text, paths = call(running, site, "jira-agent", "POST", CLOUD + "/rest/api/3/search/jql", *json_body)
    assert (status, paths) == (403, []), text
    assert "has the site render" in text
    plain = json.dumps({"jql": "project = OPS", "expand": "names"})
    json_body = ["-H", "Content-Type: application/json", "--data", plain]
    status, text, paths = call(running, site, "jira-agent", "POST", CLOUD + "/rest/api/3/search/jql", *json_body)
    assert (status, paths) == (200, ["/rest/api/3/search/jql"]), text


@pytest.mark.parametrize(
    "target", ["/rest/api/3/issue/OPS-1?fields=key#&expand=renderedFields", "/rest/api/3/search?jql=100%zz"]
)
def test_a_target_url_parsers_read_differently_is_400_for_every_client(running, site, target):
    """Unbounded clients too: nothing with a credential goes out that the site may read as another request."""
    for client in ("free-agent", "jira-agent", "reader"):
        status, text, paths = call(running, site, client, "GET", CLOUD + "/", "--request-target", target)
        assert (status, paths) == (400, []), (client, text)
        assert text.startswith(f"atlassian-auth-proxy: client {client}: the request target holds "), text
        assert "expand" not in text, "the answer never repeats the target"
        assert "zz" not in text


def test_a_read_only_client_searches_data_center_jira_under_its_context_path_and_writes_nothing(running, site):
    json_body = ["-H", "Content-Type: application/json", "--data", '{"jql": "project = OPS"}']
    status, text, paths = call(running, site, "reader", "POST", DC_JIRA + "/jira/rest/api/2/search", *json_body)
    assert (status, paths) == (200, ["/jira/rest/api/2/search"]), text
    status, text, paths = call(running, site, "reader", "POST", DC_JIRA + "/jira/rest/api/2/issue", *json_body)
    assert (status, paths) == (403, []), text
    status, text, paths = call(running, site, "reader", "POST", DC_JIRA + "/jira/rest/api/content/search", *json_body)
    assert (status, paths) == (403, []), "Confluence's search is no read on a Jira site"


def test_on_a_site_of_unknown_product_a_read_only_client_posts_nothing(running, site):
    json_body = ["-H", "Content-Type: application/json", "--data", '{"jql": "project = OPS"}']
    status, text, paths = call(running, site, "reader", "POST", DC_UNDECLARED + "/rest/api/2/search", *json_body)
    assert (status, paths) == (403, []), text
    assert "is read-only" in text
    status, _, paths = call(running, site, "reader", "GET", DC_UNDECLARED + "/rest/api/content/30001")
    assert (status, len(paths)) == (200, 1)


def test_on_data_center_jira_latest_is_judged_as_version_2(running, site):
    status, text, paths = call(running, site, "jira-agent", "GET", DC_JIRA + "/jira/rest/api/latest/issue/OPS-1")
    assert (status, paths) == (200, ["/jira/rest/api/latest/issue/OPS-1"]), text
    status, text, paths = call(running, site, "jira-agent", "GET", DC_JIRA + "/jira/rest/api/latest/issue/SEC-1")
    assert (status, paths) == (403, []), text
    status, text, paths = call(running, site, "jira-agent", "GET", CLOUD + "/rest/api/latest/issue/OPS-1")
    assert (status, paths) == (403, []), "Cloud documents no `latest`: in no row"

"""Bounds that hold everywhere (issue 20), end to end: real proxy, real curl, the TLS stand-in.

`legacy` runs with a config today's users have (a Data Center Confluence site that does not say
what it serves); each of its tests is an attack from the review and fails on the code before
issue 20. `declared` runs with Data Center sites that declare `product` and `context_path`.
Clients: `wiki-agent` (Confluence space ENG), `jira-agent` (Jira project OPS), `reader`
(read-only) and `free-agent` (no bounds). The stand-in has projects OPS and SEC, spaces ENG (page
30001) and HR (page 30002), and shows SEC and HR data through the cross-product routes
(`support.upstream.SEC_ISSUE`, `HR_ARTICLE`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from support import upstream
from support.bounded import ACME_SITE, DC_JIRA_SITE, PAT, SITE_TOKENS, Call, clients_toml, start_bounded
from support.proxy import EMAIL, TOKEN_192, Proxy, basic
from support.query_shape import confined_parts

CLOUD = "https://acme.atlassian.net"
DC_WIKI = "https://confluence.corp.example"
DC_JIRA = "https://tracker.corp.example"
PASSWORDS = {
    "wiki-agent": "wiki-Pa55word-61d0",
    "jira-agent": "jira-Pa55word-0b7e",
    "reader": "read-Pa55word-c41a",
    "free-agent": "free-Pa55word-93f2",
}
CLIENTS = clients_toml(
    {
        "wiki-agent": {"confluence_spaces": ["ENG"]},
        "jira-agent": {"jira_projects": ["OPS"]},
        "reader": {"read_only": True},
        "free-agent": {},
    }
)
LEGACY = (
    ACME_SITE
    + """
[[sites]]
name = "dc-wiki"
hosts = ["confluence.corp.example"]
scheme = "bearer"
token_env = "DC_PAT"
"""
    + CLIENTS
)
DECLARED = (
    ACME_SITE
    + """
[[sites]]
name = "dc-wiki"
hosts = ["confluence.corp.example"]
scheme = "bearer"
token_env = "DC_PAT"
product = "confluence"
"""
    + DC_JIRA_SITE
    + CLIENTS
)
JIRA_MACRO = (
    '<ac:structured-macro ac:name="jira"><ac:parameter ac:name="jqlQuery">project = SEC</ac:parameter>'
    "</ac:structured-macro>"
)


def start(site, ca_file, confdir: Path, config: Path, config_text: str) -> Proxy:
    return start_bounded(site, ca_file, confdir, config, config_text, PASSWORDS, **SITE_TOKENS)


@pytest.fixture(scope="module")
def legacy(site, ca_file, confdir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    running = start(site, ca_file, confdir, tmp_path_factory.mktemp("legacy") / "config.toml", LEGACY)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def declared(site, ca_file, confdir, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    running = start(site, ca_file, confdir, tmp_path_factory.mktemp("declared") / "config.toml", DECLARED)
    yield running
    running.stop()


def refused(call: Call, status: int = 403) -> None:
    """Answered by the proxy itself, naming the client; nothing reached the site, SEC and HR least of all."""
    assert call.status == status, call.body
    assert call.body.startswith("atlassian-auth-proxy: "), call.body
    assert call.client in call.body
    assert call.seen == [], call.paths
    assert upstream.SEC_ISSUE not in call.body
    assert upstream.HR_ARTICLE not in call.body


def as_client(proxy: Proxy, site: upstream.UpstreamServer, name: str) -> Call:
    return Call(proxy, site, name, PASSWORDS[name])


@pytest.mark.parametrize(
    "path",
    [
        "/rest/servicedeskapi/servicedesk/1/knowledgebase/article?query=salary",
        "/rest/servicedeskapi/servicedesk/projectKey:ITS/knowledgebase/article?query=salary",
        "/rest/servicedeskapi/knowledgebase/article?query=salary",
    ],
)
def test_finding_1_a_space_bounded_client_cannot_search_confluence_through_the_knowledge_base(legacy, site, path):
    wiki = as_client(legacy, site, "wiki-agent")
    refused(wiki("GET", CLOUD + path))
    assert "confluence_spaces" in wiki.body


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("POST", "/wiki/rest/api/contentbody/convert/view", {"value": JIRA_MACRO, "representation": "storage"}),
        ("POST", "/wiki/rest/api/contentbody/convert/export_view", {"value": JIRA_MACRO, "representation": "storage"}),
        ("GET", "/wiki/plugins/servlet/applinks/proxy?appId=1&path=/rest/api/2/search?jql=project%3DSEC", None),
        ("GET", "/wiki/rest/api/content/30001?expand=body.view", None),
        ("GET", "/wiki/api/v2/pages/30001?body-format=export_view", None),
    ],
)
def test_finding_2_a_project_bounded_client_cannot_read_jira_through_confluence(legacy, site, method, path, data):
    jira = as_client(legacy, site, "jira-agent")
    refused(jira(method, CLOUD + path, data))


def test_finding_2_confluence_that_cannot_reach_jira_stays_open_to_a_project_bounded_client(legacy, site):
    jira = as_client(legacy, site, "jira-agent")
    assert jira("GET", CLOUD + "/wiki/rest/api/content/30002?expand=body.storage").status == 200
    assert jira.paths == ["/wiki/rest/api/content/30002?expand=body.storage"]
    assert jira.seen[0].header("Authorization") == basic(EMAIL, TOKEN_192)


@pytest.mark.parametrize(
    "path",
    ["/rest/api/content/30002", "/rest/api/search?cql=space%3DHR", "/rest/api/space/HR/content", "/rest/api/space"],
)
def test_finding_3_on_a_data_center_site_of_unknown_layout_a_bounded_client_gets_only_the_identity_page(
    legacy, site, path
):
    wiki = as_client(legacy, site, "wiki-agent")
    refused(wiki("GET", DC_WIKI + path))
    assert "product is not known" in wiki.body
    assert wiki("GET", DC_WIKI + "/rest/api/2/myself").status == 200
    assert wiki.paths == ["/rest/api/2/myself"]
    assert wiki.seen[0].header("Authorization") == f"Bearer {PAT}"


def test_finding_10_a_search_body_with_jql_in_another_case_gets_400_and_nothing_reaches_the_site(legacy, site):
    jira = as_client(legacy, site, "jira-agent")
    refused(jira("POST", CLOUD + "/rest/api/3/search/jql", {"jql": "status = Done", "JQL": "project = SEC"}), 400)
    refused(jira("POST", CLOUD + "/rest/api/3/search/jql", {"Jql": "project = SEC"}), 400)


@pytest.mark.parametrize(
    ("client", "args"),
    [
        ("reader", ["-H", "X-HTTP-Method-Override: DELETE"]),
        ("reader", ["-H", "x-method-override: PUT"]),
        ("jira-agent", ["-H", "X-HTTP-Method: DELETE"]),
        ("jira-agent", ["-G", "--data-urlencode", "_method=DELETE"]),
    ],
)
def test_a_method_override_from_a_read_only_or_bounded_client_is_refused(legacy, site, client, args):
    call = as_client(legacy, site, client)
    refused(call("GET", CLOUD + "/rest/api/3/issue/OPS-1", None, *args), 400)
    assert "as another method" in call.body


def test_a_method_override_from_an_unbounded_read_write_client_passes(legacy, site):
    free = as_client(legacy, site, "free-agent")
    assert free("GET", CLOUD + "/rest/api/3/issue/OPS-1", None, "-H", "X-HTTP-Method-Override: DELETE").status == 200
    assert free.seen[0].header("X-HTTP-Method-Override") == "DELETE"


def test_default_deny_a_bounded_client_gets_no_route_outside_the_table_in_either_product(legacy, site):
    wiki = as_client(legacy, site, "wiki-agent")
    refused(wiki("GET", CLOUD + "/rest/greenhopper/1.0/rapidview"))
    assert "no Jira route family" in wiki.body
    refused(wiki("POST", CLOUD + "/gateway/api/graphql", {"query": "{ me { user { name } } }"}))
    assert wiki("GET", CLOUD + "/rest/api/3/filter/10000").status == 200, "Jira's own API reaches only Jira"
    jira = as_client(legacy, site, "jira-agent")
    refused(jira("GET", CLOUD + "/rest/api/3/filter/10000"))
    assert "route family `/rest/api/{v}/**`" in jira.body


def test_on_declared_data_center_confluence_at_the_root_pages_and_searches_are_judged(declared, site):
    wiki = as_client(declared, site, "wiki-agent")
    assert wiki("GET", DC_WIKI + "/rest/api/content/30001").status == 200
    assert wiki.paths == ["/rest/api/content/30001?expand=space", "/rest/api/content/30001"]
    assert all(seen.header("Authorization") == f"Bearer {PAT}" for seen in wiki.seen)
    wiki("GET", DC_WIKI + "/rest/api/content/30002")
    assert wiki.status == 403, wiki.body
    assert wiki.paths == ["/rest/api/content/30002?expand=space"], "the lookup only"
    assert "HR" not in wiki.body
    assert wiki("GET", DC_WIKI + "/rest/api/search?cql=" + quote("space = HR")).status == 200
    assert confined_parts(site.record.queries[-1], "space") == (["ENG"], "space = HR", [])
    assert wiki.paths[0].startswith("/rest/api/search?")
    refused(wiki("GET", DC_WIKI + "/rest/api/space/HR/content"))


def test_on_declared_data_center_jira_under_its_context_path_issues_and_searches_are_judged(declared, site):
    jira = as_client(declared, site, "jira-agent")
    assert jira("GET", DC_JIRA + "/jira/rest/api/2/issue/OPS-1").status == 200
    assert jira.paths == ["/jira/rest/api/2/issue/OPS-1"]
    refused(jira("GET", DC_JIRA + "/jira/rest/api/2/issue/SEC-1"))
    jira("GET", DC_JIRA + "/jira/rest/api/2/issue/20002")
    assert jira.status == 403, jira.body
    assert jira.paths == ["/jira/rest/api/2/issue/20002?fields=project"], "looked up in the site's own layout"
    assert jira("GET", DC_JIRA + "/jira/rest/api/2/search?jql=" + quote("project = SEC")).status == 200
    assert confined_parts(site.record.queries[-1], "project") == (["OPS"], "project = SEC", [])
    refused(jira("GET", DC_JIRA + "/rest/api/2/issue/OPS-1"))
    assert "Jira at /jira" in jira.body

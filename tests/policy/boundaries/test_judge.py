"""The judgement of a bounded client's requests: by example, then property-tested against a model of the sites.

Pure; the end-to-end tests (tests/e2e/test_project_and_space_bounds.py, test_bounds_by_design.py) prove the wire.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy.test import tflow, tutils

from proxy_addon.addons.injector import facts_of
from proxy_addon.policy.boundaries.judge import judge
from proxy_addon.policy.boundaries.judgements import (
    ALLOWED,
    NEEDS_BODY,
    Allowed,
    NeedsBody,
    NeedsLookup,
    Refused,
    Rewritten,
)
from proxy_addon.policy.boundaries.lookups import Ref, RefKind, lookup_path
from proxy_addon.policy.clients import Client
from proxy_addon.policy.hosts import HostPattern, normalize_host
from proxy_addon.policy.layouts import ON_GATEWAY, UNKNOWN, Layout, Prefixes, Product, declared, layout_of
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision
from proxy_addon.policy.scoped import GATEWAY, Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.policy.verdict import Policy, decide

from support import site_model
from support.query_shape import confined_parts
from support.site_model import ALL, CONFLUENCE, JIRA, Truth

LOGIN = ProxyLogin.parse("agent:Pr0xy-pa55word-9f3e")
OPS_AGENT = Client("ops-agent", LOGIN, jira_projects=frozenset({"OPS"}), confluence_spaces=frozenset({"ENG"}))
JIRA_ONLY = Client("jira-only", LOGIN, jira_projects=frozenset({"OPS"}))
WIKI_ONLY = Client("wiki-only", LOGIN, confluence_spaces=frozenset({"ENG"}))
FREE = Client("free", LOGIN)
KNOWN = {
    Ref(RefKind.ISSUE, "20001"): "OPS",
    Ref(RefKind.ISSUE, "20002"): "SEC",
    Ref(RefKind.ISSUE, "29999"): None,
    Ref(RefKind.PROJECT, "10001"): "OPS",
    Ref(RefKind.PROJECT, "10002"): "SEC",
    Ref(RefKind.CONTENT, "30001", "/wiki"): "ENG",
    Ref(RefKind.CONTENT, "30002", "/wiki"): "HR",
    Ref(RefKind.SPACE, "40001", "/wiki"): "ENG",
    Ref(RefKind.SPACE, "40002", "/wiki"): "HR",
}


def out_of_bounds(judgement) -> bool:
    return isinstance(judgement, Refused) and (judgement.status, judgement.decision) == (403, Decision.OUT_OF_BOUNDS)


def bad(judgement) -> bool:
    return isinstance(judgement, Refused) and (judgement.status, judgement.decision) == (400, Decision.BAD_QUERY)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/rest/api/3/myself"),
        ("GET", "/rest/api/2/serverInfo"),
        ("GET", "/rest/api/3/field"),
        ("GET", "/rest/api/3/issue/OPS-1"),
        ("GET", "/rest/api/3/issue/ops-1?fields=summary"),
        ("POST", "/rest/api/3/issue/OPS-1/comment"),
        ("DELETE", "/rest/api/2/issue/OPS-12/watchers"),
        ("GET", "/rest/agile/1.0/issue/OPS-1"),
        ("GET", "/rest/api/3/project/OPS"),
        ("GET", "/rest/api/3/project/ops/versions"),
        ("GET", "/rest/api/3/issue/createmeta/OPS/issuetypes"),
        ("GET", "/REST/API/3/issue/OPS-1"),
        ("GET", "/rest/api/3/issue/OPS-1/"),
        ("GET", "/rest/api/3/issue/%4FPS-1"),
        ("GET", "/wiki/rest/api/space/ENG/content"),
        ("GET", "/wiki/rest/api/content?spaceKey=ENG&title=Runbook"),
        ("GET", "/wiki/rest/api/user/current"),
    ],
)
def test_routes_inside_the_bounds_pass(method, path):
    assert judge(method, path, OPS_AGENT) is ALLOWED


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/rest/api/3/issue/SEC-1"),
        ("PUT", "/rest/api/3/issue/SEC-1"),
        ("GET", "/rest/api/3/issue/sec-1/comment"),
        ("GET", "/rest/agile/1.0/issue/SEC-1"),
        ("GET", "/rest/api/3/project/SEC"),
        ("GET", "/rest/api/3/project/search"),
        ("GET", "/rest/api/3/project/recent"),
        ("GET", "/rest/api/3/project"),
        ("GET", "/rest/api/3/issue/picker?query=x"),
        ("GET", "/rest/api/3/issue/createmeta"),
        ("POST", "/rest/api/3/issue/bulkfetch"),
        ("PUT", "/rest/api/3/issue/properties/x"),
        ("GET", "/rest/api/3/filter/10000"),
        ("GET", "/rest/api/3/dashboard"),
        ("POST", "/rest/api/3/issueLink"),
        ("POST", "/rest/api/3/bulk/issues/move"),
        ("GET", "/rest/api/3/jql/autocompletedata/suggestions?fieldName=project"),
        ("POST", "/rest/api/3/myself"),
        ("GET", "/rest/greenhopper/1.0/rapidview"),
        ("GET", "/rest/servicedeskapi/request"),
        ("GET", "/rest/agile/1.0/board/1/issue"),
        ("POST", "/gateway/api/graphql"),
        ("POST", "/graphql"),
        ("GET", "/ex/bitbucket/123/2.0/user"),
        ("GET", "/browse/SEC-1"),
        ("GET", "/wiki/rest/api/space"),
        ("GET", "/wiki/rest/api/space/HR"),
        ("GET", "/wiki/rest/api/content?spaceKey=HR"),
        ("GET", "/wiki/rest/api/content?spaceKey=ENG&spaceKey=HR"),
        ("GET", "/wiki/rest/api/content"),
        ("POST", "/wiki/rest/api/content/30001/copy"),
        ("PUT", "/wiki/rest/api/content/30001/move/append/30002"),
        ("GET", "/wiki/api/v2/pages"),
        ("GET", "/wiki/spaces/HR/pages/30002"),
        ("GET", "/wiki/rest/api/search/user?cql=type=user"),
    ],
)
def test_routes_outside_the_bounds_or_not_judged_are_refused_with_403(method, path):
    judgement = judge(method, path, OPS_AGENT)
    assert out_of_bounds(judgement), judgement


@pytest.mark.parametrize(
    "path",
    [
        "/rest/api/3/issue/../search?jql=",
        "/rest/api/3/issue/OPS-1/../../search",
        "/rest/api/3/issue/%2e%2e/search",
        "/rest/api/3/issue/%2E%2E/SEC-1",
        "/rest/api/3/issue/./SEC-1",
        "/rest/api/3/issue/OPS-1%2F..%2F..%2Fsearch",
        "/rest/api/3/issue/OPS-1%5C..",
        "/rest/api/3/issue/OPS-1;x=/../../search",
        "/rest/api/3//issue/OPS-1",
        "/rest/api/3/issue/OPS-1\\..\\SEC-1",
        "/rest/api/3/issue/%252e%252e/search",
        "/rest/api/3/issue/%zz",
        "/rest/api/3/issue/OPS-1%00",
        "/rest/api/3/issue/ÖPS-1",
        "/wiki/rest/api/content/30001/%2e%2e/30002",
        "rest/api/3/issue/OPS-1",
    ],
)
def test_paths_not_in_canonical_form_are_refused_with_400(path):
    assert bad(judge("GET", path, OPS_AGENT))


def test_keys_of_one_letter_projects_are_judged_like_any_other():
    one_letter = Client("x-agent", LOGIN, jira_projects=frozenset({"X"}))
    assert judge("GET", "/rest/api/3/issue/X-1", one_letter) is ALLOWED
    assert out_of_bounds(judge("GET", "/rest/api/3/issue/XY-1", one_letter))
    assert judge("GET", "/rest/api/3/project/x", one_letter) is ALLOWED


def test_an_unbounded_client_is_not_judged_at_all():
    assert judge("GET", "/rest/api/3/issue/../search", FREE) is ALLOWED
    assert judge("POST", "/graphql", FREE) is ALLOWED


def test_a_jira_only_bound_leaves_confluence_alone_and_the_reverse():
    assert judge("GET", "/wiki/rest/api/space/HR", JIRA_ONLY) is ALLOWED
    assert out_of_bounds(judge("GET", "/rest/api/3/issue/SEC-1", JIRA_ONLY))
    assert judge("GET", "/rest/api/3/issue/SEC-1", WIKI_ONLY) is ALLOWED
    assert out_of_bounds(judge("GET", "/wiki/rest/api/space/HR", WIKI_ONLY))
    assert out_of_bounds(judge("POST", "/gateway/api/graphql", WIKI_ONLY))


@pytest.mark.parametrize(
    ("path", "ref", "inside"),
    [
        ("/rest/api/3/issue/20001", Ref(RefKind.ISSUE, "20001"), True),
        ("/rest/api/3/issue/20002/comment", Ref(RefKind.ISSUE, "20002"), False),
        ("/rest/api/3/issue/29999", Ref(RefKind.ISSUE, "29999"), False),
        ("/rest/api/3/project/10001", Ref(RefKind.PROJECT, "10001"), True),
        ("/rest/api/3/project/10002/versions", Ref(RefKind.PROJECT, "10002"), False),
        ("/wiki/rest/api/content/30001", Ref(RefKind.CONTENT, "30001", "/wiki"), True),
        ("/wiki/rest/api/content/30002/child/page", Ref(RefKind.CONTENT, "30002", "/wiki"), False),
        ("/wiki/api/v2/pages/30001", Ref(RefKind.CONTENT, "30001", "/wiki"), True),
        ("/wiki/api/v2/pages/30002/footer-comments", Ref(RefKind.CONTENT, "30002", "/wiki"), False),
        ("/wiki/api/v2/spaces/40001/pages", Ref(RefKind.SPACE, "40001", "/wiki"), True),
        ("/wiki/download/attachments/30002/secret.pdf", Ref(RefKind.CONTENT, "30002", "/wiki"), False),
    ],
)
def test_an_id_is_looked_up_then_judged_by_its_key(path, ref, inside):
    first = judge("GET", path, OPS_AGENT)
    assert first == NeedsLookup(frozenset({ref}))
    second = judge("GET", path, OPS_AGENT, known=KNOWN)
    assert second is ALLOWED if inside else out_of_bounds(second)


def test_a_refusal_after_a_lookup_names_neither_the_other_project_nor_whether_it_exists():
    elsewhere = judge("GET", "/rest/api/3/issue/20002", OPS_AGENT, known=KNOWN)
    nowhere = judge("GET", "/rest/api/3/issue/29999", OPS_AGENT, known=KNOWN)
    assert isinstance(elsewhere, Refused)
    assert isinstance(nowhere, Refused)
    assert "SEC" not in elsewhere.reason
    assert elsewhere.reason.replace("20002", "N") == nowhere.reason.replace("29999", "N")
    assert "ops-agent" in elsewhere.reason
    assert "OPS" in elsewhere.reason


def test_a_lookup_through_the_gateway_stays_under_its_prefix():
    path = "/ex/confluence/c0ffee00-1234/wiki/rest/api/content/30001"
    (ref,) = judge("GET", path, OPS_AGENT, layout=ON_GATEWAY).refs
    assert lookup_path(ref) == "/ex/confluence/c0ffee00-1234/wiki/rest/api/content/30001?expand=space"
    (ref,) = judge("GET", "/ex/confluence/c0ffee00-1234/rest/api/content/30001", OPS_AGENT, layout=ON_GATEWAY).refs
    assert lookup_path(ref) == "/ex/confluence/c0ffee00-1234/rest/api/content/30001?expand=space"
    assert judge("GET", "/ex/jira/c0ffee00-1234/rest/api/3/issue/OPS-1", OPS_AGENT, layout=ON_GATEWAY) is ALLOWED
    (ref,) = judge("GET", "/rest/api/2/issue/20001", OPS_AGENT).refs
    assert lookup_path(ref) == "/rest/api/2/issue/20001?fields=project"


def jql_of(judgement) -> str:
    assert isinstance(judgement, Rewritten), judgement
    assert judgement.path is not None
    (value,) = parse_qs(urlsplit(judgement.path).query, keep_blank_values=True)["jql"]
    return value


def test_a_get_search_is_confined_and_keeps_its_other_parameters():
    path = "/rest/api/3/search/jql?maxResults=5&jql=project%20%3D%20SEC%20ORDER%20BY%20key"
    judgement = judge("GET", path, OPS_AGENT)
    jql = jql_of(judgement)
    keys, condition, ordering = confined_parts(jql, "project")
    assert (keys, condition, ordering) == (["OPS"], "project = SEC", ["key"])
    assert parse_qs(urlsplit(judgement.path).query)["maxResults"] == ["5"]
    assert urlsplit(judgement.path).path == "/rest/api/3/search/jql"


def test_a_search_without_jql_becomes_the_restriction_alone():
    assert jql_of(judge("GET", "/rest/api/2/search?fields=key", OPS_AGENT)) == 'project in ("OPS")'


@pytest.mark.parametrize(
    "query",
    [
        "jql=project%3DOPS)%20OR%20(project%3DSEC",
        "jql=a&jql=b",
        "JQL=project%3DSEC",
        "jql=%ff",
        "jql=x%20ORDER%20BY%20key%20OR%20project%3DSEC",
    ],
)
def test_a_search_that_cannot_be_confined_is_refused_with_400(query):
    assert bad(judge("GET", f"/rest/api/3/search?{query}", OPS_AGENT))


def test_a_post_search_confines_the_body_and_keeps_every_other_field():
    body = json.dumps({"jql": "status = Done ORDER BY created DESC", "maxResults": 3, "fields": ["summary"]}).encode()
    assert judge("POST", "/rest/api/3/search/jql", OPS_AGENT) is NEEDS_BODY
    judgement = judge("POST", "/rest/api/3/search/jql", OPS_AGENT, body)
    assert isinstance(judgement, Rewritten)
    sent = json.loads(judgement.body)
    assert confined_parts(sent.pop("jql"), "project") == (["OPS"], "status = Done", ["created", "DESC"])
    assert sent == {"maxResults": 3, "fields": ["summary"]}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/rest/api/3/search/jql", b'{"jql": "x = 1) OR (y = 2"}'),
        ("/rest/api/3/search/jql", b'{"jql": "x", "jql": "y"}'),
        ("/rest/api/3/search/jql", b'{"jql": 5}'),
        ("/rest/api/3/search/jql", b"[]"),
        ("/rest/api/3/search/jql", b"jql=x"),
        ("/rest/api/3/search/jql?jql=x", b"{}"),
    ],
)
def test_a_post_search_that_cannot_be_confined_is_refused_with_400(path, body):
    assert bad(judge("POST", path, OPS_AGENT, body))


def test_a_cql_search_is_confined_to_the_spaces():
    judgement = judge("GET", "/wiki/rest/api/content/search?cql=type%3Dpage%20OR%20space%3DHR&limit=2", OPS_AGENT)
    assert isinstance(judgement, Rewritten)
    (cql,) = parse_qs(urlsplit(judgement.path).query)["cql"]
    assert confined_parts(cql, "space") == (["ENG"], "type=page OR space=HR", [])


def issue(project: dict, **more) -> dict:
    return {"fields": {"project": project, "summary": "s", **more}}


def create(project: dict, **more) -> bytes:
    return json.dumps(issue(project, **more)).encode()


def bulk(*issues: dict) -> bytes:
    return json.dumps({"issueUpdates": list(issues)}).encode()


LINKED = json.dumps({**issue({"key": "OPS"}), "update": {"issuelinks": []}}).encode()


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/rest/api/3/issue", create({"key": "OPS"}), "allowed"),
        ("/rest/api/3/issue", create({"key": "ops"}), "allowed"),
        ("/rest/api/3/issue", create({"key": "SEC"}), "out"),
        ("/rest/api/3/issue", create({"id": "10001"}), "allowed"),
        ("/rest/api/3/issue", create({"id": 10002}), "out"),
        ("/rest/api/3/issue", create({"key": "OPS"}, parent={"key": "SEC-1"}), "out"),
        ("/rest/api/3/issue", create({"key": "OPS", "id": "10002"}), "out"),
        ("/rest/api/3/issue", json.dumps({"fields": {"summary": "no project"}}).encode(), "out"),
        ("/rest/api/3/issue", LINKED, "out"),
        ("/rest/api/3/issue", b'{"fields": {"project": {"key": "OPS"}, "project": {"key": "SEC"}}}', "bad"),
        ("/rest/api/3/issue/bulk", bulk(issue({"key": "OPS"}), issue({"key": "SEC"})), "out"),
        ("/rest/api/3/issue/bulk", bulk(issue({"id": "10001"})), "allowed"),
        ("/rest/api/3/issue/bulk", b'{"issueUpdates": []}', "out"),
    ],
)
def test_issue_creation_is_judged_by_every_project_in_the_body(path, body, expected):
    judgement = judge("POST", path, OPS_AGENT, body, KNOWN)
    outcomes = {"allowed": judgement is ALLOWED, "out": out_of_bounds(judgement), "bad": bad(judgement)}
    assert outcomes[expected], judgement


def test_an_edit_that_moves_an_issue_to_another_project_is_refused():
    assert judge("PUT", "/rest/api/3/issue/OPS-1", OPS_AGENT) is NEEDS_BODY
    assert judge("PUT", "/rest/api/3/issue/OPS-1", OPS_AGENT, b'{"fields": {"summary": "x"}}') is ALLOWED
    assert out_of_bounds(judge("PUT", "/rest/api/3/issue/OPS-1", OPS_AGENT, b'{"fields": {"project": {"key": "SEC"}}}'))


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/wiki/rest/api/content", {"type": "page", "space": {"key": "ENG"}, "title": "t"}, "allowed"),
        ("POST", "/wiki/rest/api/content", {"type": "page", "space": {"key": "HR"}, "title": "t"}, "out"),
        ("POST", "/wiki/rest/api/content", {"type": "page", "title": "no space"}, "out"),
        ("POST", "/wiki/rest/api/content", {"space": {"key": "ENG"}, "ancestors": [{"id": "30002"}]}, "out"),
        ("POST", "/wiki/rest/api/content", {"space": {"key": "ENG"}, "ancestors": [{"id": "30001"}]}, "allowed"),
        ("POST", "/wiki/rest/api/content", {"space": {"key": "ENG"}, "container": {"id": 30002}}, "out"),
        ("PUT", "/wiki/rest/api/content/30001", {"space": {"key": "HR"}}, "out"),
        ("PUT", "/wiki/rest/api/content/30001", {"title": "renamed", "version": {"number": 2}}, "allowed"),
        ("POST", "/wiki/api/v2/pages", {"spaceId": "40001", "title": "t"}, "allowed"),
        ("POST", "/wiki/api/v2/pages", {"spaceId": "40002", "title": "t"}, "out"),
        ("POST", "/wiki/api/v2/pages", {"spaceId": "40001", "parentId": "30002"}, "out"),
        ("PUT", "/wiki/api/v2/pages/30001", {"spaceId": "40002"}, "out"),
    ],
)
def test_content_creation_is_judged_by_its_space(method, path, body, expected):
    judgement = judge(method, path, OPS_AGENT, json.dumps(body).encode(), KNOWN)
    assert judgement is ALLOWED if expected == "allowed" else out_of_bounds(judgement), judgement


@given(st.text(alphabet="/.%2eEfF5cC;\\?&=OPS-1abc", max_size=40))
def test_no_generated_path_around_an_issue_passes_unless_it_is_plainly_inside(suffix):
    """Whatever follows `/rest/api/3/issue/`: allowed only when, decoded, it is an OPS issue and plain segments."""
    judgement = judge("GET", "/rest/api/3/issue/" + suffix, OPS_AGENT)
    if judgement is ALLOWED:
        segments = suffix.partition("?")[0].removesuffix("/").split("/")
        decoded = [unquote(segment) for segment in segments]
        assert re.fullmatch(r"OPS-[0-9]+", decoded[0], re.IGNORECASE), suffix
        assert all(d not in ("", ".", "..") and not set(d) & set("/\\;%") for d in decoded), suffix


# Found by an adversarial review: each of these went through before.


def test_spacekey_in_another_spelling_is_refused_as_the_site_would_not_read_it():
    assert bad(judge("GET", "/wiki/rest/api/content?SpaceKey=ENG", WIKI_ONLY))
    assert bad(judge("GET", "/wiki/rest/api/content?spacekey=ENG&spaceKey=ENG", WIKI_ONLY))
    assert judge("GET", "/wiki/rest/api/content?spaceKey=ENG", WIKI_ONLY) is ALLOWED


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/cgraphql"),
        ("GET", "/rest/servicedeskapi/knowledgebase/article?query=salary"),
        ("GET", "/ex/confluence/c0ffeeg/wiki/rest/api/content/30002"),
        ("GET", "/some/new/root"),
    ],
)
def test_roots_that_may_reach_confluence_are_refused_for_a_space_bounded_client(method, path):
    assert out_of_bounds(judge(method, path, WIKI_ONLY))


def test_a_transition_body_is_judged_like_an_edit():
    link = {"update": {"issuelinks": [{"add": {"outwardIssue": {"key": "SEC-1"}}}]}}
    path = "/rest/api/3/issue/OPS-1/transitions"
    assert judge("POST", path, JIRA_ONLY) is NEEDS_BODY
    assert out_of_bounds(judge("POST", path, JIRA_ONLY, json.dumps(link).encode()))
    assert out_of_bounds(judge("POST", path, JIRA_ONLY, b'{"fields": {"parent": {"key": "SEC-1"}}}'))
    assert judge("POST", path, JIRA_ONLY, b'{"transition": {"id": "31"}}') is ALLOWED


def test_a_reference_that_could_name_two_things_is_refused():
    create = {"fields": {"project": {"key": "OPS", "name": "SEC"}, "summary": "x"}}
    assert out_of_bounds(judge("POST", "/rest/api/3/issue", JIRA_ONLY, json.dumps(create).encode()))
    page = {"type": "page", "title": "x", "space": {"key": "ENG", "id": 40002}}
    assert out_of_bounds(judge("POST", "/wiki/rest/api/content", WIKI_ONLY, json.dumps(page).encode()))


def test_an_attachment_update_that_could_move_it_elsewhere_is_refused():
    assert out_of_bounds(judge("PUT", "/wiki/rest/api/content/30001/child/attachment/att1", WIKI_ONLY))


def test_a_body_nested_too_deeply_to_read_is_a_400_not_a_crash():
    deep = b'{"jql": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert bad(judge("POST", "/rest/api/3/search/jql", JIRA_ONLY, deep))


def test_an_empty_bound_refuses_ids_without_looking_them_up():
    nothing = Client("nothing", LOGIN, jira_projects=frozenset({"OPS"}), confluence_spaces=frozenset())
    assert out_of_bounds(judge("GET", "/wiki/rest/api/content/30001", nothing))


# Issue 20: bounds that hold everywhere, by design.

DC_WIKI = declared(Product.CONFLUENCE, "/")
DC_JIRA = declared(Product.JIRA, "/jira")


@pytest.mark.parametrize(
    "path",
    [
        "/rest/servicedeskapi/servicedesk/1/knowledgebase/article?query=salary",
        "/rest/servicedeskapi/servicedesk/projectKey:ITS/knowledgebase/article?query=salary",
        "/rest/servicedeskapi/knowledgebase/article?query=salary",
        "/rest/servicedeskapi/servicedesk/1/knowledgebase",
        "/REST/ServiceDeskAPI/servicedesk/1/KnowledgeBase/article",
        "/rest/servicedeskapi/servicedesk/1/knowledgebase/article/view/9",
        "/rest/servicedeskapi/servicedesk/1/articles",
        "/rest/servicedeskapi/servicedesk/1/requesttype/2/knowledge",
    ],
)
def test_finding_1_every_knowledge_base_form_is_refused_for_a_space_bounded_client(path):
    judgement = judge("GET", path, WIKI_ONLY)
    assert out_of_bounds(judgement), judgement
    assert "confluence_spaces" in judgement.reason
    assert out_of_bounds(judge("GET", path, JIRA_ONLY)), "it reaches Jira too, and judges nothing"


def test_service_management_outside_its_knowledge_base_is_jira_only():
    assert judge("GET", "/rest/servicedeskapi/request", WIKI_ONLY) is ALLOWED
    refused = judge("GET", "/rest/servicedeskapi/request", JIRA_ONLY)
    assert out_of_bounds(refused)
    assert "route family `/rest/servicedeskapi/**`" in refused.reason


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/wiki/rest/api/contentbody/convert/view"),
        ("POST", "/wiki/rest/api/contentbody/convert/export_view"),
        ("POST", "/wiki/rest/api/contentbody/convert/styled_view?expand=webresource"),
        ("POST", "/wiki/rest/api/contentbody/convert/async/view"),
        ("GET", "/wiki/rest/api/contentbody/convert/async/bulk/tasks"),
        ("POST", "/WIKI/REST/API/ContentBody/convert/view"),
        ("GET", "/wiki/plugins/servlet/applinks/proxy?appId=1&path=/rest/api/2/search?jql=project=SEC"),
        ("GET", "/plugins/servlet/applinks/proxy?appId=1&path=/rest/api/2/search"),
        ("GET", "/wiki/rest/jiraanywhere/1.0/servers"),
        ("GET", "/wiki/rest/api/content/30002?expand=body.view"),
        ("GET", "/wiki/rest/api/content/30002?expand=version,body.EXPORT_VIEW"),
        ("GET", "/wiki/rest/api/content/30002?Expand=body.styled_view"),
        ("GET", "/wiki/rest/api/content/30002?expand=body.anonymous_export_view"),
        ("GET", "/wiki/rest/api/content/30002?expand=body.%76iew"),
        ("GET", "/wiki/rest/api/content?spaceKey=HR&expand=body.view"),
        ("GET", "/wiki/rest/api/search?cql=type=page&expand=content.body.view"),
        ("GET", "/wiki/rest/api/space/HR?expand=description.view"),
        ("GET", "/wiki/api/v2/pages/30002?body-format=view"),
        ("GET", "/wiki/api/v2/pages/30002?BODY-FORMAT=Export_View"),
        ("GET", "/wiki/api/v2/pages?body_format=styled_view"),
        ("GET", "/wiki/api/v2/blogposts/30002?bodyFormat=anonymous_export_view"),
    ],
)
def test_finding_2_confluence_routes_that_render_or_proxy_jira_are_refused_for_a_project_bounded_client(method, path):
    judgement = judge(method, path, JIRA_ONLY)
    assert out_of_bounds(judgement), judgement
    assert out_of_bounds(judge(method, path, WIKI_ONLY)), "they show pages of any space too"


def test_confluence_stays_open_to_a_client_bounded_only_in_jira_where_it_cannot_reach_jira():
    assert judge("GET", "/wiki/rest/api/content/30002?expand=body.storage,version", JIRA_ONLY) is ALLOWED
    assert judge("GET", "/wiki/api/v2/pages/30002?body-format=atlas_doc_format", JIRA_ONLY) is ALLOWED
    assert judge("GET", "/wiki/rest/api/space", JIRA_ONLY) is ALLOWED
    assert judge("POST", "/wiki/rest/api/content/30002/move/append/30001", JIRA_ONLY) is ALLOWED
    rendered = judge("GET", "/wiki/rest/api/content/30001?expand=body.view", OPS_AGENT)
    assert out_of_bounds(rendered)
    assert "rendered body" in rendered.reason
    assert "storage" in rendered.reason


def test_finding_3_on_data_center_confluence_at_the_root_paths_are_judged_as_confluence():
    first = judge("GET", "/rest/api/content/30002", WIKI_ONLY, layout=DC_WIKI)
    (ref,) = first.refs
    assert ref == Ref(RefKind.CONTENT, "30002", "")
    assert lookup_path(ref) == "/rest/api/content/30002?expand=space"
    assert out_of_bounds(judge("GET", "/rest/api/content/30002", WIKI_ONLY, known={ref: "HR"}, layout=DC_WIKI))
    assert judge("GET", "/rest/api/content/30002", WIKI_ONLY, known={ref: "ENG"}, layout=DC_WIKI) is ALLOWED
    assert out_of_bounds(judge("GET", "/rest/api/space/HR/content", WIKI_ONLY, layout=DC_WIKI))
    assert judge("GET", "/rest/api/space/ENG", WIKI_ONLY, layout=DC_WIKI) is ALLOWED
    search = judge("GET", "/rest/api/search?cql=space%3DHR", WIKI_ONLY, layout=DC_WIKI)
    assert isinstance(search, Rewritten)
    assert urlsplit(search.path).path == "/rest/api/search"
    (cql,) = parse_qs(urlsplit(search.path).query)["cql"]
    assert confined_parts(cql, "space") == (["ENG"], "space=HR", [])
    assert out_of_bounds(judge("GET", "/rest/api/2/issue/SEC-1", WIKI_ONLY, layout=DC_WIKI)), "Confluence's path"
    assert judge("GET", "/rest/api/2/issue/SEC-1", JIRA_ONLY, layout=DC_WIKI) is ALLOWED, "no Jira there to reach"


def test_on_data_center_jira_under_a_context_path_ids_are_looked_up_there():
    assert judge("GET", "/jira/rest/api/2/issue/OPS-1", JIRA_ONLY, layout=DC_JIRA) is ALLOWED
    assert out_of_bounds(judge("GET", "/jira/rest/api/2/issue/SEC-1", JIRA_ONLY, layout=DC_JIRA))
    (ref,) = judge("GET", "/jira/rest/api/2/issue/20002", JIRA_ONLY, layout=DC_JIRA).refs
    assert lookup_path(ref) == "/jira/rest/api/2/issue/20002?fields=project"
    search = judge("GET", "/jira/rest/api/2/search?jql=project%3DSEC", JIRA_ONLY, layout=DC_JIRA)
    assert urlsplit(search.path).path == "/jira/rest/api/2/search"
    outside = judge("GET", "/rest/api/2/issue/OPS-1", JIRA_ONLY, layout=DC_JIRA)
    assert out_of_bounds(outside)
    assert "Jira at /jira" in outside.reason


@pytest.mark.parametrize("layout", [UNKNOWN, declared(Product.JIRA, "/")])
def test_on_a_site_of_unknown_layout_a_bounded_client_gets_only_the_identity_page(layout):
    for client in (JIRA_ONLY, WIKI_ONLY):
        assert judge("GET", "/rest/api/2/myself", client, layout=UNKNOWN) is ALLOWED
        assert judge("HEAD", "/rest/api/3/myself", client, layout=UNKNOWN) is ALLOWED
        for method, path in [
            ("POST", "/rest/api/2/myself"),
            ("GET", "/rest/api/content/30002"),
            ("GET", "/rest/api/search?cql=type=page"),
            ("GET", "/rest/api/space/HR/content"),
            ("GET", "/2.0/repositories"),
        ]:
            judgement = judge(method, path, client, layout=UNKNOWN)
            assert out_of_bounds(judgement), (method, path)
            assert "product is not known" in judgement.reason
    assert judge("GET", "/rest/api/content/30002", FREE, layout=layout) is ALLOWED, "an unbounded client is not judged"


@pytest.mark.parametrize(
    "body",
    [
        {"jql": "status = Done", "JQL": "project = SEC"},
        {"JQL": "project = SEC"},
        {"Jql": "project = SEC", "maxResults": 5},
        {"jQL": ""},
    ],
)
def test_finding_10_a_search_body_with_jql_in_another_case_is_refused_with_400(body):
    assert bad(judge("POST", "/rest/api/3/search/jql", JIRA_ONLY, json.dumps(body).encode()))


def test_default_deny_refuses_what_no_row_holds_and_names_the_family():
    for client in (JIRA_ONLY, WIKI_ONLY, OPS_AGENT):
        for path in ["/rest/greenhopper/1.0/rapidview", "/rest/internal/2/x", "/secure/Dashboard.jspa", "/cgraphql"]:
            judgement = judge("GET", path, client)
            assert out_of_bounds(judgement), (client.name, path)
            assert "is in no Jira route family of the table" in judgement.reason
    assert judge("GET", "/rest/api/3/filter/10000", WIKI_ONLY) is ALLOWED
    refused = judge("GET", "/rest/api/3/filter/10000", JIRA_ONLY)
    assert refused.reason == (
        "client jira-only has jira_projects: GET /rest/api/3/filter/10000 is in route family `/rest/api/{v}/**`, "
        "which reaches Jira but does not judge jira_projects (see docs/reference/boundaries.md)"
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/rest/api/3/issue", {"fields": {"project": {"key": "OPS"}}, "project": {"key": "SEC"}}),
        ("POST", "/rest/api/3/issue", {"fields": {"project": {"key": "OPS"}, "Project": {"key": "SEC"}}}),
        ("POST", "/rest/api/3/issue", {"Fields": {"project": {"key": "SEC"}}, "fields": {"project": {"key": "OPS"}}}),
        ("PUT", "/rest/api/3/issue/OPS-1", {"fields": {"summary": "s", "customfield_1": {"parent": {"key": "SEC-1"}}}}),
        ("POST", "/rest/api/3/issue/bulk", {"issueUpdates": [{"fields": {"project": {"key": "OPS"}}, "project": 1}]}),
        (
            "POST",
            "/rest/api/3/issue",
            {"fields": {"project": {"key": "OPS"}}, "issueUpdates": [{"fields": {"project": {"key": "SEC"}}}]},
        ),
        (
            "POST",
            "/rest/api/3/issue/bulk",
            {"issueUpdates": [{"fields": {"project": {"key": "OPS"}}}], "fields": {"project": {"key": "SEC"}}},
        ),
        ("POST", "/wiki/rest/api/content", {"space": {"key": "ENG"}, "spaceId": "40002"}),
        ("POST", "/wiki/rest/api/content", {"space": {"key": "ENG"}, "metadata": {"space": {"key": "HR"}}}),
        ("PUT", "/wiki/rest/api/content/30001", {"title": "t", "Space": {"key": "HR"}}),
        ("POST", "/wiki/api/v2/pages", {"spaceId": "40001", "space": {"key": "HR"}}),
        ("POST", "/wiki/api/v2/pages", {"spaceId": "40001", "SpaceId": "40002"}),
        ("PUT", "/wiki/api/v2/pages/30001", {"title": "t", "ancestors": [{"id": "30002"}]}),
    ],
)
def test_a_body_naming_a_project_or_space_where_the_route_does_not_read_it_is_refused(method, path, body):
    judgement = judge(method, path, OPS_AGENT, json.dumps(body).encode(), KNOWN)
    assert out_of_bounds(judgement), judgement
    assert "which this route is not judged by" in judgement.reason


# Red team after issue 20: rendering is a property of the route table, the target is read as the site reads it.

BOUNDED = (JIRA_ONLY, WIKI_ONLY, OPS_AGENT)


def rendering_refused(judgement) -> bool:
    return out_of_bounds(judgement) and "has the site render" in judgement.reason


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/wiki/rest/api/content/30001/history/1/macro/id/0f5a-jira-macro/convert/view"),
        ("GET", "/wiki/rest/api/content/30001/history/1/macro/id/0f5a/convert/export_view"),
        ("GET", "/wiki/rest/api/content/30001/history/1/macro/id/0f5a/convert/styled_view"),
        ("GET", "/wiki/rest/api/content/30001/history/1/macro/id/0f5a/convert/anonymous_export_view"),
        ("GET", "/wiki/rest/api/content/30001/history/1/macro/id/0f5a/convert/async/view"),
        ("GET", "/wiki/rest/api/content/30001/history/1/macro/hash/ab12/convert/storage"),
        ("GET", "/WIKI/REST/API/Content/30001/History/1/Macro/ID/0f5a/Convert/VIEW"),
        ("GET", "/wiki/rest/api/content/30001/version/2/view"),
        ("GET", "/wiki/rest/api/content/30001/child/comment/editor2"),
        ("POST", "/wiki/rest/api/contentbody/convert/storage"),
        ("POST", "/rest/api/1.0/render"),
        ("GET", "/rest/api/2/issue/OPS-1/render"),
        ("GET", "/rest/api/2/issue/OPS-1?expand=renderedFields"),
        ("GET", "/rest/api/2/issue/OPS-1?expand=names,RENDEREDFIELDS,changelog"),
        ("GET", "/rest/api/2/issue/OPS-1/comment?expand=renderedBody"),
        ("GET", "/rest/api/2/issue/OPS-1/comment/10001?Expand=%72enderedBody"),
        ("GET", "/rest/api/3/search?jql=project%3DOPS&expand=renderedFields"),
        ("PUT", "/rest/api/3/issue/OPS-1?returnIssue=true&expand=renderedFields"),
        ("GET", "/rest/agile/1.0/issue/OPS-1?expand=renderedFields"),
        ("GET", "/rest/api/3/myself?expand[]=renderedFields"),
        ("GET", "/wiki/rest/api/content/30001?expand=body.editor"),
        ("GET", "/wiki/rest/api/content/30001?expand=body.editor2"),
        ("GET", "/wiki/api/v2/pages/30001?body-format=editor"),
        ("GET", "/wiki/rest/api/content/30001?expand=body.view"),
    ],
)
def test_finding_1_and_4_every_way_to_have_the_site_render_is_refused_for_any_bounded_client(method, path):
    """Rendering runs macros (Confluence) and titles issue keys with their summaries (Jira): it shows
    issues and pages of any project or space, whatever row the route is in and whichever bound the client has."""
    for client in BOUNDED:
        judgement = judge(method, path, client, b"{}", KNOWN)
        assert rendering_refused(judgement), (client.name, judgement)
    assert judge(method, path, FREE) is ALLOWED, "an unbounded client is not judged"


def test_rendering_is_refused_before_any_lookup_is_asked_for():
    path = "/wiki/rest/api/content/30001/history/1/macro/id/0f5a/convert/view"
    assert rendering_refused(judge("GET", path, WIKI_ONLY)), "no NeedsLookup: nothing is sent for it"
    assert rendering_refused(judge("GET", "/rest/api/2/issue/20001?expand=renderedFields", JIRA_ONLY))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/wiki/rest/api/content/30001/history/1/macro/id/0f5a"),
        ("GET", "/wiki/rest/api/content/30001?expand=body.storage,version,space"),
        ("GET", "/wiki/api/v2/pages/30001?body-format=atlas_doc_format"),
        ("GET", "/wiki/rest/api/space/VIEW/content"),
        ("GET", "/wiki/rest/api/space/Editor2"),
        ("GET", "/rest/api/2/issue/OPS-1?expand=names,schema,changelog,transitions"),
        ("GET", "/rest/api/3/project/RENDER"),
        ("GET", "/rest/api/3/project/VIEW/versions"),
    ],
)
def test_the_unrendered_source_and_keys_named_like_a_representation_pass(method, path):
    client = Client(
        "viewer",
        LOGIN,
        jira_projects=frozenset({"OPS", "RENDER", "VIEW"}),
        confluence_spaces=frozenset({"ENG", "VIEW", "EDITOR2"}),
    )
    assert judge(method, path, client, known=KNOWN) is ALLOWED, path


@pytest.mark.parametrize(
    "body",
    [
        {"jql": "project = OPS", "expand": ["renderedFields"]},
        {"jql": "project = OPS", "expand": "names,renderedFields"},
        {"jql": "project = OPS", "Expand": "RenderedFields"},
        {"jql": "", "fields": ["summary"], "expand": ["names", ["renderedBody"]]},
    ],
)
def test_finding_4_a_post_search_body_asking_for_rendered_fields_is_refused(body):
    path = "/rest/api/3/search/jql"
    assert judge("POST", path, JIRA_ONLY) is NEEDS_BODY
    judgement = judge("POST", path, JIRA_ONLY, json.dumps(body).encode())
    assert rendering_refused(judgement), judgement
    assert "the body's `expand`" in judgement.reason


def test_a_judged_body_of_a_create_asking_for_rendered_fields_is_refused():
    body = json.dumps({"fields": {"project": {"key": "OPS"}, "summary": "s"}, "expand": "renderedFields"}).encode()
    assert rendering_refused(judge("POST", "/rest/api/3/issue", JIRA_ONLY, body))
    fine = json.dumps({"jql": "project = OPS", "expand": ["names"]}).encode()
    assert isinstance(judge("POST", "/rest/api/3/search/jql", JIRA_ONLY, fine), Rewritten)


@pytest.mark.parametrize(
    "path",
    [
        "/rest/api/2/search?maxResults=50#&jql=project%3DSEC",
        "/wiki/rest/api/content?limit=100#&spaceKey=ENG",
        "/rest/api/2/search?maxResults=50;jql=project%3DSEC",
        "/rest/api/2/search?jql=project = SEC",
        "/rest/api/2/search?jql=%zz",
        "/rest/api/2/search?jql=\u00d6",
        "/rest/api/2/issue/OPS-1\t",
    ],
)
def test_finding_2_a_target_url_parsers_read_differently_is_refused_before_it_is_judged(path):
    for client in BOUNDED:
        judgement = judge("GET", path, client)
        assert bad(judgement), (client.name, judgement)
        assert "the request target holds" in judgement.reason


def test_the_confined_query_comes_first_in_the_rewritten_target():
    judgement = judge("GET", "/rest/api/3/search?maxResults=5&fields=key&jql=project%3DSEC", OPS_AGENT)
    assert isinstance(judgement, Rewritten)
    query = urlsplit(judgement.path).query
    assert query.startswith("jql=project%20in%20%28%22OPS%22%29%20AND%20"), query
    assert query.endswith("&maxResults=5&fields=key"), query


def test_on_data_center_jira_latest_is_judged_as_the_version_it_is_there():
    assert judge("GET", "/jira/rest/api/latest/issue/OPS-1", JIRA_ONLY, layout=DC_JIRA) is ALLOWED
    assert out_of_bounds(judge("GET", "/jira/rest/api/latest/issue/SEC-1", JIRA_ONLY, layout=DC_JIRA))
    assert out_of_bounds(judge("GET", "/jira/rest/agile/latest/issue/SEC-1", JIRA_ONLY, layout=DC_JIRA))
    assert judge("GET", "/jira/rest/agile/LATEST/issue/OPS-1", JIRA_ONLY, layout=DC_JIRA) is ALLOWED
    (ref,) = judge("GET", "/jira/rest/api/latest/issue/20002", JIRA_ONLY, layout=DC_JIRA).refs
    assert lookup_path(ref) == "/jira/rest/api/2/issue/20002?fields=project"
    search = judge("GET", "/jira/rest/api/latest/search?jql=project%3DSEC", JIRA_ONLY, layout=DC_JIRA)
    assert urlsplit(search.path).path == "/jira/rest/api/latest/search", "sent as the client asked"
    assert confined_parts(jql_of(search), "project")[0] == ["OPS"]
    for path in ["/jira/rest/api/latest/project/search", "/jira/rest/api/latest/filter/1"]:
        assert out_of_bounds(judge("GET", path, JIRA_ONLY, layout=DC_JIRA)), path


def test_on_cloud_latest_is_in_no_row():
    judgement = judge("GET", "/rest/api/latest/issue/OPS-1", JIRA_ONLY)
    assert out_of_bounds(judgement)
    assert "is in no Jira route family" in judgement.reason


# The boundary as a whole, property-tested against a model of the sites (issue 20).
#
# Generated requests of bounded and read-only clients, across both products and every layout
# (Cloud, a scoped site sent through the gateway, the gateway itself, Data Center Confluence and
# Jira at `/` or under a context path, a Data Center site that declares nothing): routes from the
# table and outside it, put under the right product's prefix or the wrong one, keys and ids in
# and out of bounds, query parameters, bodies and headers; routes, parameters and body fields
# that have the site render (macro conversions, Jira's render endpoint, rendered representations
# and fields), and targets with bytes URL parsers read in different ways (a fragment, a space or
# control character, `;`, a broken escape, non-ASCII) put anywhere in them. Each request goes the proxy's way,
# `facts_of` -> `decide` -> `judge` (its lookups answered from the model's data, its body given
# when asked for), and whatever would reach the site with the credential is put to
# `support.site_model`, which knows nothing of the route table: it must name no project or space
# outside the client's bounds, reach no product the client is bounded in without that bound judged,
# and, for a read-only client or site, run as no write.

CLOUD_ID = "c0ffee00-1234-4abc-9def-00000000beef"

QUERIES = ["project = SEC", "", "project = OPS) OR (project = SEC", "status = Done ORDER BY key", "space = HR", "x"]
JQL = [*(("jql", query) for query in QUERIES), ("JQL", "project = SEC"), ("Jql", "")]
CQL = [*(("cql", query) for query in QUERIES), ("Cql", "space = HR"), ("CQL", "")]
SPACE_KEYS = [("spaceKey", "ENG"), ("spaceKey", "ENG"), ("spaceKey", "HR"), ("SpaceKey", "HR"), ("spacekey", "HR")]
RENDERING = [
    ("expand", "body.storage"),
    ("expand", "body.view"),
    ("expand", "version,body.EXPORT_VIEW"),
    ("Expand", "content.body.styled_view"),
    ("expand", "body.editor2"),
    ("body-format", "storage"),
    ("body-format", "VIEW"),
    ("body_format", "atlas_doc_format"),
    ("expand", "renderedFields"),
    ("expand", "names,RENDEREDFIELDS,changelog"),
    ("EXPAND", "renderedBody"),
    ("expand[]", "renderedFields"),
    ("expand", "changelog,names"),
]
NOISE = [("_method", "DELETE"), ("maxResults", "5"), ("fields", "summary")]
SEARCH_BODY = [
    '"JQL": "project = SEC"',
    '"Jql": ""',
    '"jql": "project = SEC"',
    '"jql": ""',
    '"JQL": "project = SEC"',
    '"maxResults": 5',
    '"jql": 5',
    '"expand": ["renderedFields"]',
    '"expand": "names,renderedFields"',
    '"Expand": "RenderedBody"',
    '"expand": ["names"]',
]
ISSUE_BODY = [
    '"Fields": {"project": {"key": "SEC"}}',
    '"fields": {"Project": {"key": "SEC"}, "project": {"key": "OPS"}}',
    '"project": {"key": "SEC"}',
    '"fields": {"project": {"key": "OPS"}, "summary": "s"}',
    '"fields": {"project": {"key": "OPS"}, "summary": "s"}',
    '"fields": {"project": {"key": "SEC"}, "summary": "s"}',
    '"fields": {"project": {"id": "10002"}}',
    '"fields": {"project": {"id": 10001}, "parent": {"key": "SEC-1"}}',
    '"fields": {"project": {"key": "OPS", "id": "10002"}}',
    '"issueUpdates": [{"fields": {"project": {"key": "OPS"}}}, {"fields": {"project": {"key": "SEC"}}}]',
    '"issueUpdates": [{"fields": {"project": {"key": "OPS"}}}]',
    '"update": {"issuelinks": [{"add": {"outwardIssue": {"key": "SEC-1"}}}]}',
    '"transition": {"id": "31"}',
]
CONTENT_BODY = [
    '"spaceId": "40002"',
    '"metadata": {"space": {"key": "HR"}}',
    '"Space": {"key": "HR"}',
    '"space": {"key": "ENG"}',
    '"space": {"key": "ENG"}',
    '"space": {"key": "HR"}',
    '"space": {"key": "ENG", "id": 40002}',
    '"ancestors": [{"id": "30002"}]',
    '"ancestors": [{"id": "30001"}]',
    '"container": {"id": 30001}',
    '"title": "t", "type": "page"',
]
PAGE_BODY = [
    '"SpaceId": "40002"',
    '"space": {"key": "HR"}',
    '"spaceId": "40001"',
    '"spaceId": "40001"',
    '"spaceId": "40002"',
    '"parentId": "30002"',
    '"parentId": "30001"',
    '"title": "t"',
]
CONVERT_BODY = ['"value": "<ac:structured-macro ac:name=\\"jira\\"/>", "representation": "storage"']
EVERY_BODY = [*SEARCH_BODY, *ISSUE_BODY, *CONTENT_BODY, *PAGE_BODY, *CONVERT_BODY]
READ, WRITE, ANY = ("GET", "HEAD"), ("POST", "PUT", "DELETE"), ("GET", "POST", "PUT", "DELETE")
type Route = tuple[str, tuple[str, ...], list[tuple[str, str]], list[str]]
"""A route template, its likely methods, the parameters and the body fields it takes."""

JIRA_ROUTES = [
    ("/rest/api/{v}/issue/{issue}", ("GET", "PUT", "DELETE"), NOISE, ISSUE_BODY),
    (
        "/rest/api/1.0/render",
        ("POST",),
        NOISE,
        ['"rendererType": "atlassian-wiki-renderer"', '"unrenderedMarkup": "SEC-1"'],
    ),
    ("/rest/api/{v}/issue/{issue}/render", READ, NOISE, []),
    ("/rest/api/{v}/issue/{issue}/comment", ("GET", "POST"), NOISE, ISSUE_BODY),
    ("/rest/api/{v}/issue/{issue}/transitions", ("GET", "POST"), NOISE, ISSUE_BODY),
    ("/rest/api/{v}/issue", ("POST",), NOISE, ISSUE_BODY),
    ("/rest/api/{v}/issue/bulk", ("POST",), NOISE, ISSUE_BODY),
    ("/rest/api/{v}/issue/picker", READ, NOISE, []),
    ("/rest/api/{v}/issue/createmeta/{project}/issuetypes", READ, NOISE, []),
    ("/rest/api/{v}/project/{project}", ANY, NOISE, ISSUE_BODY),
    ("/rest/api/{v}/project/{project}/versions", READ, NOISE, []),
    ("/rest/api/{v}/project/search", READ, NOISE, []),
    ("/rest/api/{v}/search", ("GET", "POST"), JQL, SEARCH_BODY),
    ("/rest/api/{v}/search/jql", ("GET", "POST"), JQL, SEARCH_BODY),
    ("/rest/api/{v}/myself", READ, NOISE, []),
    ("/rest/api/{v}/filter/10000", ANY, JQL, SEARCH_BODY),
    ("/rest/api/{v}/expression/eval", ("POST",), NOISE, SEARCH_BODY),
    ("/rest/agile/1.0/issue/{issue}", ANY, NOISE, ISSUE_BODY),
    ("/rest/agile/1.0/board/1/issue", READ, JQL, []),
    ("/rest/servicedeskapi/request", ANY, NOISE, ISSUE_BODY),
    ("/rest/servicedeskapi/servicedesk/{desk}/knowledgebase/article", READ, [("query", "salary")], []),
    ("/rest/servicedeskapi/knowledgebase/article", READ, [("query", "salary")], []),
    ("/rest/greenhopper/1.0/rapidview", READ, NOISE, []),
    ("/rest/jiraanywhere/1.0/servers", READ, NOISE, []),
    ("/plugins/servlet/applinks/proxy", READ, [("path", "/rest/api/2/search?jql=project=SEC")], []),
    ("/graphql", ("POST",), NOISE, SEARCH_BODY),
    ("/gateway/api/graphql", ("POST",), NOISE, SEARCH_BODY),
    ("/browse/{issue}", READ, NOISE, []),
]
CONFLUENCE_ROUTES = [
    ("/rest/api/content/{content}", ("GET", "PUT", "DELETE"), RENDERING, CONTENT_BODY),
    ("/rest/api/content/{content}/child/page", READ, RENDERING, []),
    ("/rest/api/content/{content}/history/1/macro/id/{macro}/convert/{format}", READ, RENDERING, []),
    ("/rest/api/content/{content}/history/1/macro/hash/{macro}/convert/async/{format}", READ, NOISE, []),
    ("/rest/api/content/{content}/history/1/macro/id/{macro}", READ, RENDERING, []),
    ("/rest/api/content/{content}/child/attachment/att1", ("GET", "PUT"), NOISE, CONTENT_BODY),
    ("/rest/api/content", ("GET", "POST"), SPACE_KEYS + RENDERING, CONTENT_BODY),
    ("/rest/api/content/{content}/move/append/{content}", ("PUT",), NOISE, []),
    ("/rest/api/content/{content}/copy", ("POST",), NOISE, CONTENT_BODY),
    ("/rest/api/content/search", READ, CQL + RENDERING, []),
    ("/rest/api/search", READ, CQL + RENDERING, []),
    ("/rest/api/space/{space}", READ, RENDERING, []),
    ("/rest/api/space/{space}/content", READ, RENDERING, []),
    ("/rest/api/space", READ, NOISE, []),
    ("/rest/api/contentbody/convert/{format}", ("POST",), RENDERING, CONVERT_BODY),
    ("/rest/api/user/current", READ, RENDERING, []),
    ("/rest/api/template/1", READ, RENDERING, []),
    ("/api/v2/pages/{content}", ("GET", "PUT"), RENDERING, PAGE_BODY),
    ("/api/v2/pages", ("GET", "POST"), RENDERING, PAGE_BODY),
    ("/api/v2/blogposts/{content}", ("GET", "PUT"), RENDERING, PAGE_BODY),
    ("/api/v2/spaces/{spaceid}/pages", READ, RENDERING, []),
    ("/api/v2/footer-comments/{content}", READ, RENDERING, []),
    ("/download/attachments/{content}/x.pdf", READ, NOISE, []),
    ("/plugins/servlet/applinks/proxy", READ, [("path", "/rest/api/2/search?jql=project=SEC")], []),
    ("/spaces/{space}/pages/{content}", READ, NOISE, []),
]
ROUTES = [*((JIRA, route) for route in JIRA_ROUTES), *((CONFLUENCE, route) for route in CONFLUENCE_ROUTES)]
FOCUS = {
    "every route": ROUTES,
    "rendering": [(product, route) for product, route in ROUTES if "{format}" in route[0] or "render" in route[0]],
    "searches": [(product, route) for product, route in ROUTES if route[2] in (JQL, CQL + RENDERING)],
    "bodies": [(product, route) for product, route in ROUTES if route[3] in (ISSUE_BODY, CONTENT_BODY, PAGE_BODY)],
    "listings": [(product, route) for product, route in ROUTES if route[2] == SPACE_KEYS + RENDERING],
}
"""Every route, and groups of them drawn alone so that each kind of request is tried often."""
VALUES = {
    "{v}": ["2", "3", "latest"],
    "{issue}": ["OPS-1", "OPS-1", "SEC-1", "ops-2", "20001", "20001", "20002", "29999", "picker", "X"],
    "{project}": ["OPS", "OPS", "SEC", "ops", "10001", "10002", "19999", "search"],
    "{content}": ["30001", "30001", "30003", "30002", "39999", "abc"],
    "{space}": ["ENG", "ENG", "HR", "eng", "~user"],
    "{spaceid}": ["40001", "40001", "40002", "49999"],
    "{desk}": ["1", "projectKey:ITS"],
    "{format}": ["view", "export_view", "storage", "VIEW", "anonymous_export_view", "editor2", "atlas_doc_format"],
    "{macro}": ["0f5a-jira-macro", "view"],
}
ODD = ["#", "#&", "#&jql=project%3DSEC", " ", "\t", ";", ";jql=project%3DSEC", "%", "%zz", "\\", "é", "%23", "?x#"]
"""Put anywhere in a target, mostly at a parameter's edge: bytes URL parsers read in different ways (and `%23`,
which they all read alike)."""
HEADERS = [
    ("X-HTTP-Method-Override", "DELETE"),
    ("x-http-method-override", "PUT"),
    ("X-HTTP-Method", "DELETE"),
    ("X-METHOD-OVERRIDE", "POST"),
    ("X-Requested-With", "XMLHttpRequest"),
    ("Accept", "application/json"),
]


USER = "me@x.test"
CLIENTS = [
    Client(f"agent-{index}", LOGIN, None, read_only, jira, wiki)
    for index, (jira, wiki, read_only) in enumerate(
        (jira, wiki, read_only)
        for jira in (None, frozenset(), frozenset({"OPS"}))
        for wiki in (None, frozenset(), frozenset({"ENG"}))
        for read_only in (False, True)
    )
    if jira is not None or wiki is not None or read_only
]
"""Every kind of restricted client; each generated request is tried as each of them."""


@dataclass(frozen=True)
class Place:
    """Where a request goes: the host, how its site is configured, and where each product really is."""

    kind: str
    host: str
    truth: Truth
    prefixes: tuple[tuple[str, str], ...]
    """(product whose routes to use, the path prefix to put them under): the right ones, and wrong ones."""
    layout: Prefixes | None = None

    def policy(self, read_only: bool) -> Policy:
        if self.kind not in ("cloud", "scoped", "gateway"):
            site = Site(self.kind, (HostPattern.parse(self.host),), USER, Scheme.BEARER, read_only, layout=self.layout)
            return Policy(SiteTable.of([site]), Gateway())
        scoped = Site("scoped", (HostPattern.parse("scoped.atlassian.net"),), USER, read_only=read_only, scoped=True)
        cloud = Site("cloud", (HostPattern.parse("acme.atlassian.net"),), USER, read_only=read_only)
        gateway = Gateway()
        gateway.add(scoped, CLOUD_ID)
        return Policy(SiteTable.of([scoped, cloud]), gateway)


CLOUD_TRUTH = Truth(jira="", confluence="/wiki")
CLOUD_PREFIXES = (
    (JIRA, ""),
    (JIRA, ""),
    (CONFLUENCE, "/wiki"),
    (CONFLUENCE, "/wiki"),
    (CONFLUENCE, ""),
    (JIRA, "/wiki"),
)


@st.composite
def places(draw: st.DrawFn) -> Place:
    kind = draw(st.sampled_from(["cloud", "cloud", "scoped", "gateway", "dc-wiki", "dc-jira", "unknown"]))
    if kind == "cloud":
        return Place(kind, "acme.atlassian.net", CLOUD_TRUTH, (*CLOUD_PREFIXES, (CONFLUENCE, "/WIKI")))
    if kind == "scoped":
        return Place(kind, "scoped.atlassian.net", CLOUD_TRUTH, CLOUD_PREFIXES)
    if kind == "gateway":
        prefixes = (
            (JIRA, f"/ex/jira/{CLOUD_ID}"),
            (CONFLUENCE, f"/ex/confluence/{CLOUD_ID}/wiki"),
            (CONFLUENCE, f"/ex/confluence/{CLOUD_ID}"),
            (JIRA, f"/ex/confluence/{CLOUD_ID}"),
            (JIRA, f"/ex/bitbucket/{CLOUD_ID}"),
        )
        return Place(kind, GATEWAY, Truth(gateway=True), prefixes)
    context = draw(st.sampled_from(["", "/jira", "/confluence"]))
    product = {"dc-wiki": CONFLUENCE, "dc-jira": JIRA}.get(kind) or draw(st.sampled_from([JIRA, CONFLUENCE]))
    layout = declared(Product.JIRA if product == JIRA else Product.CONFLUENCE, context or "/")
    truth = Truth(jira=context) if product == JIRA else Truth(confluence=context)
    other = CONFLUENCE if product == JIRA else JIRA
    prefixes = ((product, context), (product, context), (other, context), (product, ""), (CONFLUENCE, "/wiki"))
    return Place(kind, f"{kind}.corp.example", truth, prefixes, None if kind == "unknown" else layout)


@dataclass(frozen=True)
class Request:
    """A generated request: what a client sends, before the proxy judges it."""

    method: str
    path: str
    body: bytes | None


@st.composite
def requests(draw: st.DrawFn, place: Place, routes: list[tuple[str, Route]]) -> Request:
    """A route, mostly under a prefix of its product on this site (right or wrong), with its likely methods,
    parameters and body."""
    product, (route, methods, parameters, fields) = draw(st.sampled_from(routes))
    own = [prefix for owner, prefix in place.prefixes if owner == product]
    prefix = draw(st.sampled_from([*own, *own, *own, *(prefix for _, prefix in place.prefixes)]))
    for name, values in VALUES.items():
        while name in route:
            route = route.replace(name, draw(st.sampled_from(values)), 1)
    method = draw(st.one_of(st.sampled_from(methods), st.sampled_from(methods), st.sampled_from(["GET", *WRITE])))
    chosen = draw(st.lists(st.sampled_from([*parameters, *parameters, *NOISE, *RENDERING]), max_size=4))
    query = "&".join(f"{name}={value.replace(' ', '%20').replace('=', '%3D')}" for name, value in chosen)
    body = None
    if method in ("POST", "PUT"):
        listed = st.lists(st.sampled_from([*fields, *fields, *fields, *EVERY_BODY]), min_size=1, max_size=3)
        odd = st.sampled_from([b"jql=project%3DSEC", b"[]", b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}"])
        objects = listed.map(lambda items: ("{" + ", ".join(items) + "}").encode())
        body = draw(st.one_of(objects, objects, objects, objects, st.none(), odd))
    path = prefix + route + (f"?{query}" if query else "")
    if draw(st.integers(0, 3)) == 0:
        edges = [i for i, c in enumerate(path) if c in "?&"] + [i + 1 for i, c in enumerate(path) if c in "?&"]
        at = draw(st.one_of(st.sampled_from([*edges, len(path)]), st.integers(len(prefix), len(path))))
        path = path[:at] + draw(st.sampled_from(ODD)) + path[at:]
    return Request(method, path, body)


def answer(ref: Ref, truth: Truth) -> str | None:
    """The site's answer to the proxy's lookup: the key the id belongs to, None for an unknown id.

    The lookup must go to the site's own paths for the id's product, or it would ask something else.
    """
    expected = JIRA if ref.kind in (RefKind.ISSUE, RefKind.PROJECT) else CONFLUENCE
    placed = truth.place(lookup_path(ref).partition("?")[0])
    assert placed is not None, lookup_path(ref)
    assert placed[0] == expected, lookup_path(ref)
    table = {
        RefKind.ISSUE: site_model.ISSUES,
        RefKind.PROJECT: site_model.PROJECTS,
        RefKind.CONTENT: site_model.CONTENT,
        RefKind.SPACE: site_model.SPACES,
    }
    return table[ref.kind].get(ref.id)


def sent(
    method: str, path: str, client: Client, body: bytes | None, layout: Layout, truth: Truth
) -> tuple[str, bytes | None] | None:
    """What the boundary lets reach the site, as the hook drives `judge`: (path, body), or None when refused."""
    for offered in (None, body):
        known: dict[Ref, str | None] = {}
        judgement = judge(method, path, client, offered, known, layout)
        while isinstance(judgement, NeedsLookup):
            known.update({ref: answer(ref, truth) for ref in judgement.refs})
            judgement = judge(method, path, client, offered, known, layout)
        if isinstance(judgement, NeedsBody) and offered is None:
            continue
        if isinstance(judgement, Allowed):
            return path, body
        if isinstance(judgement, Rewritten):
            return judgement.path or path, judgement.body if judgement.body is not None else body
        return None
    return None


@pytest.mark.parametrize("focus", FOCUS)
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_request_the_boundary_lets_through_reaches_data_outside_the_bounds(focus, data):
    place = data.draw(places())
    generated = data.draw(requests(place, FOCUS[focus]))
    method, path, body = generated.method, generated.path, generated.body
    headers = data.draw(st.one_of(st.just([]), st.just([]), st.lists(st.sampled_from(HEADERS), max_size=2)))
    raw_headers = [(b"host", place.host.encode()), *((n.encode(), v.encode()) for n, v in headers)]
    request = tutils.treq(
        method=method.encode(), host=place.host, port=443, scheme=b"https", authority=b"", path=path.encode(),
        headers=tuple(raw_headers), content=body or b"",
    )  # fmt: skip
    flow = tflow.tflow(req=request)
    flow.client_conn.sni = place.host
    for read_only_site in (False, True):
        policy = place.policy(read_only_site)
        for client in CLIENTS:
            verdict = decide(facts_of(flow, client), policy, TokenHealth(), 0.0)
            if verdict.decision is not Decision.INJECT:
                continue
            assert verdict.site is not None
            moved_to = verdict.moved_to
            host, truth = (GATEWAY, Truth(gateway=True)) if moved_to else (place.host, place.truth)
            target = moved_to.path if moved_to else path
            layout = layout_of(normalize_host(host), verdict.site.layout)
            result = sent(method, target, client, body, layout, truth) if client.bounded else (target, body)
            if result is None:
                continue
            sent_path, sent_body = result
            site = site_model.Site(truth)
            why = (client, method, sent_path, sent_body, headers)
            for product, key in site.reached(method, sent_path, headers, sent_body):
                bound = client.jira_projects if product == JIRA else client.confluence_spaces
                assert bound is None or (key != ALL and key in bound), (product, key, *why)
            if client.read_only or read_only_site:
                assert not site.writes(method, sent_path, headers), why


def test_the_model_sees_the_attacks_of_the_review():
    """The oracle itself: each finding of issue 20 reaches data outside the bounds in the model."""
    cloud, dc_wiki = site_model.Site(Truth(jira="", confluence="/wiki")), site_model.Site(Truth(confluence=""))
    kb = cloud.reached("GET", "/rest/servicedeskapi/servicedesk/1/knowledgebase/article?query=x", [], None)
    assert (CONFLUENCE, ALL) in kb
    assert (JIRA, ALL) in cloud.reached("POST", "/wiki/rest/api/contentbody/convert/view", [], b"{}")
    assert (JIRA, ALL) in cloud.reached("GET", "/wiki/plugins/servlet/applinks/proxy?path=/rest/api/2/search", [], None)
    assert (JIRA, ALL) in cloud.reached("GET", "/wiki/rest/api/content/30001?expand=body.view", [], None)
    assert (CONFLUENCE, "HR") in dc_wiki.reached("GET", "/rest/api/content/30002", [], None)
    assert (CONFLUENCE, ALL) in dc_wiki.reached("GET", "/rest/api/search?cql=x", [], None)
    body = json.dumps({"jql": 'project in ("OPS") AND (x)', "JQL": "project = SEC"}).encode()
    assert (JIRA, ALL) in cloud.reached("POST", "/rest/api/3/search/jql", [], body)
    override = [("X-HTTP-Method-Override", "GET")]
    create = json.dumps({"type": "page", "space": {"key": "ENG"}}).encode()
    assert (CONFLUENCE, ALL) in cloud.reached("POST", "/wiki/rest/api/content", override, create)
    assert cloud.reached("GET", "/rest/api/3/issue/OPS-1", [], None) == {(JIRA, "OPS")}


def test_the_model_sees_the_red_teams_findings():
    """The oracle itself: findings 1, 2 and 4 of the red team after issue 20 reach data outside the bounds."""
    cloud, dc_jira = site_model.Site(CLOUD_TRUTH), site_model.Site(Truth(jira="/jira"))
    macro = "/wiki/rest/api/content/30001/history/1/macro/id/0f5a/convert/"
    for to in ("view", "export_view", "styled_view", "anonymous_export_view", "async/view", "editor2"):
        assert cloud.reached("GET", macro + to, [], None) >= site_model.EVERYTHING, to
    assert cloud.reached("GET", macro + "storage", [], None) == {(CONFLUENCE, "ENG")}
    confined = "jql=project%20in%20%28%22OPS%22%29%20AND%20%28project%3DSEC%29"
    assert (JIRA, ALL) in cloud.reached("GET", f"/rest/api/2/search?maxResults=50#&{confined}", [], None)
    assert (JIRA, ALL) not in cloud.reached("GET", f"/rest/api/2/search?{confined}&maxResults=50#", [], None)
    assert (CONFLUENCE, ALL) in cloud.reached("GET", "/wiki/rest/api/content?limit=100#&spaceKey=ENG", [], None)
    assert (JIRA, ALL) in cloud.reached("GET", f"/rest/api/2/search?maxResults=5;{confined}&jql=x", [], None)
    assert cloud.writes("GET", "/rest/api/3/issue/OPS-1?a=1;_method=DELETE", [])
    assert cloud.reached("GET", "/rest/api/3/issue/OPS-1 HTTP/1.1", [], None) == site_model.EVERYTHING
    for path in [
        "/rest/api/2/issue/OPS-1?expand=renderedFields",
        "/rest/api/2/issue/OPS-1/comment?Expand=renderedBody",
    ]:
        assert (JIRA, ALL) in dc_jira.reached("GET", "/jira" + path, [], None), path
    search = json.dumps({"jql": 'project in ("OPS")', "expand": ["renderedFields"]}).encode()
    assert (JIRA, ALL) in dc_jira.reached("POST", "/jira/rest/api/2/search", [], search)
    assert (JIRA, ALL) in dc_jira.reached("POST", "/jira/rest/api/1.0/render", [], b"{}")
    assert dc_jira.reached("GET", "/jira/rest/api/latest/issue/OPS-1", [], None) == {(JIRA, "OPS")}
    assert not dc_jira.writes("POST", "/jira/rest/api/latest/search", [])

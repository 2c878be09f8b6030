"""The route table and the judgement of a bounded client's requests (pure; the e2e tests prove the wire)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.boundaries.judge import judge
from proxy_addon.policy.boundaries.judgements import ALLOWED, NEEDS_BODY, NeedsLookup, Refused, Rewritten
from proxy_addon.policy.boundaries.lookups import LookupFailed, Ref, RefKind, key_of, lookup_path
from proxy_addon.policy.boundaries.routes import ALL, ROUTES, Action, Renders, Route
from proxy_addon.policy.clients import Client
from proxy_addon.policy.layouts import ON_GATEWAY, UNKNOWN, Product, declared
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision

from support.query_shape import confined_parts

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


def test_lookup_answers():
    issue, content = Ref(RefKind.ISSUE, "1"), Ref(RefKind.CONTENT, "1")
    assert key_of(issue, 200, {"fields": {"project": {"key": "ops"}}}) == "OPS"
    assert key_of(content, 200, {"space": {"key": "ENG"}}) == "ENG"
    assert key_of(issue, 404, {}) is None
    for status, body in [(500, {}), (401, {}), (429, {}), (200, {}), (200, {"fields": {"project": {"key": 1}}})]:
        with pytest.raises(LookupFailed):
            key_of(issue, status, body)


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


def example_path(template: str) -> str:
    return re.sub(r"\{[a-z*]+\}", "X1", template.replace("{v}", "3").replace("/**", ""))


def test_no_refusal_in_the_table_is_shadowed_by_an_earlier_row():
    for route in ROUTES:
        if route.action is Action.REFUSE:
            path = example_path(route.template)
            for method in route.methods:
                first = next(r for r in ROUTES if r.product is route.product and r.allows(method, path))
                assert first is route, (method, route.template, first.template)


README = Path(__file__).resolve().parents[2] / "README.md"


def table_row(route: Route) -> str:
    methods = (
        "any" if route.methods == ALL else ", ".join(sorted(route.methods, key=["GET", "HEAD", "POST", "PUT"].index))
    )
    reaches = ", ".join(p for p in (Product.JIRA, Product.CONFLUENCE) if p in route.reaches) or "nothing"
    return f"| {route.product} | {methods} | `{route.template}` | {reaches} | {route.renders} | {route.action} |"


def test_the_readme_route_table_is_the_modules():
    text = README.read_text()
    start = text.index("| product | methods | route | reaches | renders | what the boundary does |")
    table = text[start:].split("\n\n")[0].splitlines()[2:]
    assert table == [table_row(route) for route in ROUTES]


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


def test_every_row_judges_at_most_the_product_it_reaches():
    for route in ROUTES:
        judged = route.action.judges
        if route.action is Action.NEUTRAL:
            assert route.reaches == frozenset(), route.template
        elif judged is None:
            assert route.action in (Action.REFUSE, Action.UNJUDGED), route.template
        else:
            assert judged in route.reaches, route.template
        assert route.template.startswith("/wiki/" if route.product is Product.CONFLUENCE else "/rest/"), route.template


def test_no_family_shadows_a_judged_row():
    for index, route in enumerate(ROUTES):
        if route.action.judges is None:
            continue
        path = example_path(route.template)
        for method in route.methods:
            first = next(r for r in ROUTES if r.product is route.product and r.allows(method, path))
            assert first.action.judges is route.action.judges, (method, route.template, first.template)
            assert ROUTES.index(first) <= index


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
        "which reaches Jira but does not judge jira_projects (see README, Agents and boundaries)"
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


def test_every_row_says_when_it_renders_and_the_rows_that_always_render_judge_nothing():
    for route in ROUTES:
        assert route.renders in Renders, route.template
        if route.renders is Renders.ALWAYS:
            assert route.action is Action.REFUSE, route
            assert route.reaches == {Product.JIRA, Product.CONFLUENCE}, route
    always = {route.template for route in ROUTES if route.renders is Renders.ALWAYS}
    assert always == {
        "/rest/api/1.0/render",
        "/wiki/rest/api/content/{content}/history/{*}/macro/**/convert/**",
        "/wiki/rest/api/contentbody/**",
    }


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

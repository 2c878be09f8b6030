"""A judged body: strict JSON, read only where its route's fields are, each reference it names checked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy_addon.policy.boundaries.body import check_body, json_object
from proxy_addon.policy.boundaries.judgements import Malformed, OutOfBounds
from proxy_addon.policy.boundaries.lookups import Ref, RefKind
from proxy_addon.policy.boundaries.references import ReferenceCheck
from proxy_addon.policy.boundaries.routes import Action
from proxy_addon.policy.clients import Client
from proxy_addon.policy.proxy_login import ProxyLogin

BOUNDED = Client(
    "agent",
    ProxyLogin.parse("agent:Pr0xy-pa55word-9f3e"),
    jira_projects=frozenset({"OPS"}),
    confluence_spaces=frozenset({"ENG"}),
)


def check(action: Action, document: dict[str, Any], route: str = "/rest/api/3/issue") -> ReferenceCheck:
    refs = ReferenceCheck(BOUNDED, "/wiki", "3", {})
    check_body(action, route, document, refs)
    return refs


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        (b"\xff{}", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"a": 1, "a": 2}', "repeats a key"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_only_a_json_object_without_a_repeated_key_is_read(body, why):
    with pytest.raises(Malformed, match=why):
        json_object(body)


def test_an_issue_created_in_the_bound_passes_and_one_elsewhere_is_out_of_bounds():
    check(Action.CREATE_ISSUES, {"fields": {"project": {"key": "OPS"}, "summary": "x"}})
    with pytest.raises(OutOfBounds, match="project SEC is not in its Jira projects"):
        check(Action.CREATE_ISSUES, {"fields": {"project": {"key": "SEC"}}})


def test_an_id_the_bound_may_hold_is_collected_for_a_lookup():
    refs = check(Action.CREATE_ISSUES, {"fields": {"project": {"id": "10001"}}})
    assert refs.missing == {Ref(RefKind.PROJECT, "10001", "/wiki", "3")}


def test_a_bulk_create_checks_every_issue_and_needs_some():
    bulk = {"issueUpdates": [{"fields": {"project": {"key": "OPS"}}}, {"fields": {"project": {"key": "SEC"}}}]}
    with pytest.raises(OutOfBounds, match="SEC"):
        check(Action.CREATE_ISSUES, bulk, "/rest/api/3/issue/bulk")
    with pytest.raises(OutOfBounds, match="non-empty `issueUpdates`"):
        check(Action.CREATE_ISSUES, {"issueUpdates": []}, "/rest/api/3/issue/bulk")


@pytest.mark.parametrize(
    "document",
    [
        {"fields": {"project": {"key": "OPS"}}, "extra": {"project": {"key": "SEC"}}},
        {"fields": {"project": {"key": "OPS"}, "Project": {"key": "SEC"}}},
        {"fields": {"project": {"key": "OPS", "id": "10002"}}},
        {"fields": {"project": {"key": "OPS"}}, "update": {"issuelinks": []}},
    ],
    ids=["elsewhere", "another-case", "key-and-id", "links"],
)
def test_a_reference_anywhere_the_route_does_not_read_it_is_refused(document):
    with pytest.raises(OutOfBounds):
        check(Action.CREATE_ISSUES, document)


def test_content_is_judged_by_its_space_key_and_its_ancestors():
    refs = check(
        Action.CREATE_CONTENT, {"space": {"key": "ENG"}, "ancestors": [{"id": "30001"}]}, "/wiki/rest/api/content"
    )
    assert refs.missing == {Ref(RefKind.CONTENT, "30001", "/wiki")}
    with pytest.raises(OutOfBounds, match="space HR"):
        check(Action.CREATE_CONTENT, {"space": {"key": "HR"}}, "/wiki/rest/api/content")


def test_a_page_is_judged_by_its_space_id():
    refs = check(Action.CREATE_PAGE, {"spaceId": "40001", "title": "x"}, "/wiki/api/v2/pages")
    assert refs.missing == {Ref(RefKind.SPACE, "40001", "/wiki")}
    with pytest.raises(OutOfBounds, match="`spaceId` names no space id"):
        check(Action.CREATE_PAGE, {"title": "x"}, "/wiki/api/v2/pages")


def test_the_json_read_is_the_json_judged():
    document = json_object(json.dumps({"fields": {"project": {"key": "OPS"}}}).encode())
    check(Action.EDIT_ISSUE, document, "/rest/api/3/issue/OPS-1")

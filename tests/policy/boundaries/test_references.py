"""Each reference a request makes, checked against the client's bound: keys at once, ids by their lookup."""

from __future__ import annotations

import pytest

from proxy_addon.policy.boundaries.judgements import OutOfBounds
from proxy_addon.policy.boundaries.lookups import Ref, RefKind
from proxy_addon.policy.boundaries.references import ReferenceCheck
from proxy_addon.policy.clients import Client
from proxy_addon.policy.proxy_login import ProxyLogin

LOGIN = ProxyLogin.parse("agent:Pr0xy-pa55word-9f3e")
BOUNDED = Client("agent", LOGIN, jira_projects=frozenset({"OPS"}), confluence_spaces=frozenset({"ENG"}))
KNOWN = {Ref(RefKind.ISSUE, "20001", "", "3"): "OPS", Ref(RefKind.ISSUE, "20002", "", "3"): "SEC"}


def refs(client: Client = BOUNDED) -> ReferenceCheck:
    return ReferenceCheck(client, "", "3", KNOWN)


def test_keys_inside_the_bound_pass_in_any_case():
    check = refs()
    check.issue("ops-1", "the path")
    check.project("OPS", "the path")
    check.space_key("eng", "the path")
    assert check.missing == set()


def test_an_id_is_judged_by_the_key_its_lookup_answered_or_collected_for_one():
    check = refs()
    check.issue("20001", "the path")
    check.issue(20003, "the path")
    assert check.missing == {Ref(RefKind.ISSUE, "20003", "", "3")}
    with pytest.raises(OutOfBounds, match="issue 20002 is not in its Jira projects"):
        check.issue("20002", "the path")


def test_elsewhere_and_nowhere_read_the_same():
    known = {**KNOWN, Ref(RefKind.ISSUE, "29999", "", "3"): None}
    with pytest.raises(OutOfBounds) as elsewhere:
        ReferenceCheck(BOUNDED, "", "3", known).issue("20002", "the path")
    with pytest.raises(OutOfBounds) as nowhere:
        ReferenceCheck(BOUNDED, "", "3", known).issue("29999", "the path")
    assert str(elsewhere.value).replace("20002", "N") == str(nowhere.value).replace("29999", "N")
    assert "SEC" not in str(elsewhere.value)


@pytest.mark.parametrize("value", [True, None, 1.5, "", "OPS 1", {"key": "OPS"}])
def test_a_value_that_names_nothing_judgeable_is_refused(value):
    with pytest.raises(OutOfBounds, match="names no issue key or id"):
        refs().issue(value, "`fields.parent`")


def test_an_empty_bound_refuses_ids_without_asking_for_a_lookup():
    nothing = Client("nothing", LOGIN, jira_projects=frozenset({"OPS"}), confluence_spaces=frozenset())
    check = refs(nothing)
    with pytest.raises(OutOfBounds, match=r"its Confluence spaces \(none\)"):
        check.content("30001", "the path")
    assert check.missing == set()

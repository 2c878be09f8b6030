"""A request path as the boundaries judge it: canonical form only; its query decoded as a servlet does."""

from __future__ import annotations

import pytest

from proxy_addon.policy.boundaries.paths import Unjudgeable, parameters, raw_parameters, split_path


def test_a_canonical_path_is_decoded_and_split_from_its_query():
    assert split_path("/rest/api/3/issue/OPS-1?fields=summary") == (
        "/rest/api/3/issue/OPS-1",
        "/rest/api/3/issue/OPS-1",
        "fields=summary",
    )
    assert split_path("/wiki/spaces/%7Eabc/") == ("/wiki/spaces/~abc", "/wiki/spaces/%7Eabc/", "")


@pytest.mark.parametrize(
    "path",
    [
        "rest/api/3/issue",
        "/rest/api/3/../issue",
        "/rest/api/3/./issue",
        "/rest//api",
        "/rest/api;x=1/issue",
        "/rest\\api",
        "/rest/%2e%2e/api",
        "/rest/a%2Fb",
        "/rest/%zz",
        "/rest/ä",
        "/rest/%0a",
    ],
)
def test_anything_but_canonical_form_is_unjudgeable(path):
    with pytest.raises(Unjudgeable):
        split_path(path)


def test_a_segment_that_is_not_utf8_raises_what_the_judge_reads_as_unjudgeable():
    with pytest.raises(UnicodeDecodeError):
        split_path("/rest/%ff")


def test_parameters_are_decoded_with_plus_as_a_space_and_empty_parts_dropped():
    assert raw_parameters("a=1&&b=x+y&") == ["a=1", "b=x+y"]
    assert parameters("jql=project+%3D+OPS&flag&x=") == [("jql", "project = OPS"), ("flag", ""), ("x", "")]


def test_a_query_that_is_not_utf8_is_unjudgeable():
    with pytest.raises(Unjudgeable, match="not UTF-8"):
        parameters("jql=%ff")

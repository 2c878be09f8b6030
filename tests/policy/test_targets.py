"""Request targets URL parsers read in different ways: what each refusal names, and what passes.
policy/test_verdict.py checks that such a target never gets credentials, boundaries/test_judge.py that a
bounded client's is refused before it is judged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.targets import ambiguous_target


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("/rest/api/2/search?maxResults=50#&jql=project%3DSEC", "a raw `#`"),
        ("/rest/api/3/search?jql=project = SEC", "a space"),
        ("/rest/api/3/search?jql=x\tproject", "a control character"),
        ("/rest/api/3/search?jql=\x7f", "a control character"),
        ("/rest/api/3/search?jql=\u00d6PS", "a non-ASCII character"),
        ("/rest/api/3/issue\\..\\search", "a backslash"),
        ("/rest/api/3/search?jql=100%", "a `%` without two hex digits"),
        ("/rest/api/3/search?jql=%zz", "a `%` without two hex digits"),
        ("/rest/api/3/search?jql=%2", "a `%` without two hex digits"),
    ],
)
def test_each_ambiguous_byte_is_named_for_every_request(target, named):
    for judged in (False, True):
        found = ambiguous_target(target, judged)
        assert found is not None, target
        assert found.startswith(named), found


def test_a_semicolon_counts_only_where_a_rule_reads_the_target():
    target = "/rest/api/3/issue/OPS-1?a=1;_method=DELETE"
    assert ambiguous_target(target, judged=False) is None
    assert (
        ambiguous_target(target, judged=True) == "a `;` (servlets cut paths at it, some parsers split parameters on it)"
    )


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "*",
        "/rest/api/3/search?jql=project%20%3D%20OPS%23x&fields=summary,key",
        "/rest/api/2/search?jql=summary~%22100%25%22",
        "/rest/agile/1.0/board?name=a[1]|{b}^`<>\"'!$()*,:@~",
    ],
)
def test_ordinary_percent_encoded_targets_pass(target):
    assert ambiguous_target(target, judged=True) is None


PRINTABLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#\\%;")
ESCAPE = st.from_regex(r"\A%[0-9A-Fa-f]{2}\Z")


@given(st.lists(st.one_of(PRINTABLE, ESCAPE)).map("".join))
def test_printable_ascii_with_whole_escapes_always_passes(target):
    assert ambiguous_target("/" + target, judged=True) is None


@given(st.text(min_size=1), st.sampled_from(["#", "\\", " ", "\x00", "\x7f", "\u00e9", "%", "%g0"]))
def test_one_ambiguous_byte_anywhere_is_always_found(text, odd):
    at = len(text) // 2
    assert ambiguous_target(text[:at] + odd + text[at:], judged=False) is not None

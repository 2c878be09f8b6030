"""The JQL/CQL tokenizer and the wrapping: a client's query never gets outside its parentheses."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from proxy_addon.policy.query_language import BadQuery, TokenKind, confine, split, tokenize

from support.query_shape import confined_parts, top_level

OPS = frozenset({"OPS"})
SPACES = frozenset({"ENG", "~ME"})


def test_strings_of_both_quote_kinds_keep_their_escapes_and_parentheses():
    tokens = tokenize("""summary ~ "a \\" ) b" OR text ~ 'it\\'s (x' AND (x)""")
    assert [t.kind for t in tokens] == [
        TokenKind.WORD, TokenKind.WORD, TokenKind.STRING, TokenKind.WORD, TokenKind.WORD, TokenKind.WORD,
        TokenKind.STRING, TokenKind.WORD, TokenKind.OPEN, TokenKind.WORD, TokenKind.CLOSE,
    ]  # fmt: skip
    assert tokens[2].text == '"a \\" ) b"'


def test_a_quote_of_the_other_kind_is_plain_text_inside_a_string():
    assert [t.text for t in tokenize("""a = "it's" """)] == ["a", "=", '"it\'s"']


@pytest.mark.parametrize(
    ("query", "condition", "ordering"),
    [
        ("assignee = currentUser() ORDER BY created DESC", "assignee = currentUser()", "created DESC"),
        ("status = Done order   by priority, key", "status = Done", "priority, key"),
        ("ORDER BY rank", "", "rank"),
        ('summary ~ "order by" AND x = 1', 'summary ~ "order by" AND x = 1', ""),
        ("   ", "", ""),
    ],
)
def test_split_finds_the_top_level_order_by(query, condition, ordering):
    parts = split(query)
    assert (parts.condition, parts.ordering) == (condition, ordering)


@pytest.mark.parametrize(
    "query",
    [
        "project = OPS) OR (project = SEC",
        "project = OPS) OR project = SEC OR (x = 1",
        "(project = OPS",
        "project = OPS)",
        'summary ~ "unclosed',
        "summary ~ 'unclosed",
        'summary ~ "ends in backslash\\',
        "summary ~ a\\) OR project = SEC OR summary ~ \\(b",
        "x = 1 ORDER BY key AND project = SEC",
        "x = 1 ORDER BY key) OR (project = SEC",
        "(x = 1 ORDER BY key)",
        "x = 1 ORDER BY a ORDER BY b",
        "x = 1 ORDER BY",
        "x = 1 ORDER BY key DESC ASC",
        "x = 1 ORDER BY key, ",
        "x = 1 \x00 OR project = SEC",
        'summary ~ "line\nbreak"',
        "x = 1\u2028) OR (y",
    ],
)
def test_what_could_escape_or_cannot_be_read_is_refused(query):
    with pytest.raises(BadQuery):
        confine(query, "project", OPS)


def test_confine_wraps_and_keeps_the_ordering_last():
    confined = confine("status = Done ORDER BY created DESC", "project", {"SEC", "OPS"})
    assert confined == 'project in ("OPS", "SEC") AND (status = Done) ORDER BY created DESC'


def test_an_empty_query_becomes_the_restriction_alone():
    assert confine("", "space", {"ENG"}) == 'space in ("ENG")'
    assert confine("ORDER BY created", "space", {"ENG"}) == 'space in ("ENG") ORDER BY created'


FRAGMENTS = st.sampled_from(
    [
        "(", ")", '"', "'", "\\", "\\\"", "\\'", " ", ",", "ORDER", "BY", "order by", "AND", "OR", "NOT",
        "project", "=", "SEC", "in", "~", "x", "\n", "\t", "\u00a0", "currentUser()", "cf[10010]", "!=", "é",
    ]
)  # fmt: skip
QUERIES = st.one_of(st.lists(FRAGMENTS, max_size=25).map("".join), st.text(max_size=60))


@given(QUERIES)
@example("project = OPS) OR (project = SEC")
@example('x = ")" OR (y = "(")')
@example("x = '(' ) OR project = SEC OR ( ')'")
@example("a = 1 ORDER BY b")
@pytest.mark.parametrize(("field", "keys"), [("project", OPS), ("space", SPACES)], ids=["jql", "cql"])
def test_no_generated_query_ever_leaves_the_wrapping(field, keys, query):
    """Either refused, or the site reads: the restriction, AND one group holding all the client's condition."""
    try:
        confined = confine(query, field, keys)
    except BadQuery:
        return
    restricted, condition, ordering = confined_parts(confined, field)
    assert restricted == sorted(keys)
    parts = split(query)
    assert (condition or "") == parts.condition
    if condition:
        assert [t.text for t in tokenize(condition)] == [t.text for t in tokenize(parts.condition)]
    assert " ".join(ordering) == " ".join(top_level(parts.ordering))


@given(QUERIES)
def test_tokens_read_back_the_same(query):
    """Tokens joined by spaces tokenize to the same tokens: a token's text is all of it, and nothing else."""
    try:
        tokens = tokenize(query)
    except BadQuery:
        return
    again = tokenize(" ".join(t.text for t in tokens))
    assert [(t.kind, t.text) for t in again] == [(t.kind, t.text) for t in tokens]

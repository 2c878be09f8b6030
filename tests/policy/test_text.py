"""Text a client chose, made safe to print; header bytes other parsers could read differently."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.text import ambiguous_head, escape_controls


def test_control_characters_become_escapes_and_a_line_break_stays():
    assert escape_controls("a\x1b[31mred\x07") == "a\\x1b[31mred\\x07"
    assert escape_controls("forged\rline") == "forged\\x0dline"
    assert escape_controls("one\u2028two\x85") == "one\\u2028two\\x85"
    assert escape_controls("Traceback\n  line") == "Traceback\n  line"


@given(st.text(max_size=60))
def test_no_escaped_text_holds_a_control_character_but_a_line_break(text):
    escaped = escape_controls(text)
    assert all(c in "\t\n" or unicodedata.category(c) != "Cc" for c in escaped)
    assert "\u2028" not in escaped
    assert "\u2029" not in escaped


def test_nul_cr_or_lf_in_a_header_name_or_value_is_ambiguous():
    assert not ambiguous_head(((b"host", b"acme.atlassian.net"), (b"x-a", b"tab\there")))
    assert ambiguous_head(((b"x-a", b"bare\rcr"),))
    assert ambiguous_head(((b"x-a", b"folded\r\n value"),))
    assert ambiguous_head(((b"x\x00a", b"v"),))

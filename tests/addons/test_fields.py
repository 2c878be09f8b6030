"""The one-pass header helpers give what mitmproxy's own `Headers` mapping gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from mitmproxy.http import Headers

from proxy_addon.addons import fields

NAMES = [b"Authorization", b"cookie", b"Set-Cookie", b"X-Seraph-LoginReason", b"content-length", b"Host"]
header_fields = st.lists(st.tuples(st.sampled_from(NAMES), st.binary(max_size=8)), max_size=8)
wanted = frozenset({b"authorization", b"cookie", b"x-seraph-loginreason"})


@given(header_fields)
def test_values_and_present_agree_with_headers_get(raw):
    headers = Headers(raw)
    found = fields.values(headers, wanted)
    for name in wanted:
        text = name.decode()
        assert found.get(text) == headers.get(text)
        assert fields.present(headers, name) == (text in headers)


@given(header_fields)
def test_drop_and_replace_agree_with_popping_each_name(raw):
    expected = Headers(raw)
    for name in wanted:
        expected.pop(name.decode(), None)
    dropped = Headers(raw)
    fields.drop(dropped, wanted)
    assert dropped.fields == expected.fields
    replaced = Headers(raw)
    fields.replace(replaced, wanted, b"authorization", b"placeholder")
    expected["authorization"] = "placeholder"
    assert replaced.fields == expected.fields

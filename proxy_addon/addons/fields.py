"""Reading and editing header fields in one pass over mitmproxy's raw `(name, value)` tuples.

mitmproxy's `Headers` is a full mapping: each `get`, `in` or `pop` walks the fields through
several layers of Python calls, and a `pop` of an absent name raises and catches a KeyError.
On the per-request path, where a request or response is looked at by several hooks, those
lookups were most of the addon's own cost (bench/README.md); these helpers do the same in one
loop over `headers.fields`. Names are given in lower case, as bytes.
"""

from __future__ import annotations

from mitmproxy.http import Headers

CREDENTIALS = frozenset({b"authorization", b"cookie", b"proxy-authorization"})
"""The request fields that carry a credential: the client's, or the placeholder the injector puts there."""


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")  # as mitmproxy's Headers decodes


def present(headers: Headers, name: bytes) -> bool:
    return name in [key.lower() for key, _ in headers.fields]  # a list comprehension runs inline, no generator


def values(headers: Headers, names: frozenset[bytes]) -> dict[str, str]:
    """Each of `names` present, keyed by its lower-case name as text, with its value as
    `Headers.get` gives it (several fields of one name joined with ", ")."""
    found: dict[str, str] = {}
    for key, value in headers.fields:
        name = key.lower()
        if name in names:
            text = _text(name)
            found[text] = f"{found[text]}, {_text(value)}" if text in found else _text(value)
    return found


def drop(headers: Headers, names: frozenset[bytes]) -> None:
    """Remove every field named in `names`, leaving the fields' order; no-op when none is there."""
    fields = headers.fields
    kept = [field for field in fields if field[0].lower() not in names]
    if len(kept) != len(fields):
        headers.fields = tuple(kept)


def replace(headers: Headers, names: frozenset[bytes], name: bytes, value: bytes) -> None:
    """Remove every field named in `names`, then add `name: value` at the end, in one rebuild."""
    kept = [field for field in headers.fields if field[0].lower() not in names]
    kept.append((name, value))
    headers.fields = tuple(kept)

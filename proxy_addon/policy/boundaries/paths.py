"""A request path as the boundaries judge it: decoded, in canonical form only, and its query's parameters.

Paths are judged in canonical form only (no dot segments, empty segments, `;` parameters,
backslashes or encoded separators); anything else is refused rather than normalized, because
the site might normalize it differently. A site's layout (`policy.layouts`) then places the
path in the canonical form of Cloud, which the route table is written in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from proxy_addon.policy.layouts import Product

ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
UNSAFE_DECODED = frozenset("/\\;%?#")


@dataclass(frozen=True, slots=True)
class CanonicalPath:
    """A request path in canonical form, split for judging."""

    product: Product
    route: str
    """Decoded and placed in canonical form (`/rest/...`, `/wiki/...`) by the site's layout."""
    base: str
    """Where the product lives on the site (`Placed.base`): lookups go there."""
    raw: str
    """The path as sent, without its query: a confined query is appended to it."""
    query: str


class Unjudgeable(ValueError):
    """The path or its query cannot be read as the boundaries read it; the message says what is wrong."""


def split_path(path: str) -> tuple[str, str, str]:
    """`(route, raw, query)` of a request path: the route decoded and checked; raises `Unjudgeable`."""
    raw, _, query = path.partition("?")
    if not raw.startswith("/") or not raw.isascii() or "\\" in raw or ";" in raw or ESCAPE.search(raw):
        raise Unjudgeable("the path is not a plain ASCII path without `;` or `\\`")
    segments = raw.split("/")[1:]
    if segments and segments[-1] == "" and len(segments) > 1:
        segments.pop()
    decoded = []
    for segment in segments:
        text = unquote(segment, errors="strict")
        if text in ("", ".", "..") or any(c in UNSAFE_DECODED or not c.isprintable() for c in text):
            raise Unjudgeable("the path has an empty, dot or encoded-separator segment")
        decoded.append(text)
    return "/" + "/".join(decoded), raw, query


def raw_parameters(query: str) -> list[str]:
    return [part for part in query.split("&") if part]


def parameters(query: str) -> list[tuple[str, str]]:
    """`(name, value)` pairs, decoded the way a servlet does (`+` is a space); raises `Unjudgeable` on bad UTF-8."""
    pairs = []
    for part in raw_parameters(query):
        name, _, value = part.partition("=")
        try:
            pairs.append((unquote_plus(name, errors="strict"), unquote_plus(value, errors="strict")))
        except UnicodeDecodeError:
            raise Unjudgeable("the query string is not UTF-8") from None
    return pairs

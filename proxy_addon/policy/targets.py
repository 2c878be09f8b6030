"""Request targets that URL parsers read in different ways, refused before a credential goes with them.

The proxy judges a request by its target: the site, a read-only rule, a client's bounds, the
scoped gateway's prefix. Whatever reaches the site must read as the same target there, in every
parser on the way: a front proxy, the site's own URL parser, its servlet container. Some bytes
do not: a raw `#` starts a fragment an RFC 3986 or WHATWG parser drops (with every parameter
after it), a space or control character splits a request line or is stripped, non-ASCII is
re-encoded in one charset or another, a backslash is a `/` to WHATWG, and a `%` without two hex
digits is kept, dropped or refused. None belongs in a request target (RFC 9112, RFC 3986), and
clients percent-encode them, so they are refused rather than guessed at.

A `;` is valid, but servlet containers cut a path at it (`;jsessionid=`) and some query parsers
split parameters on it; it is refused where a rule reads the target's parameters or segments:
for a bounded or read-only client and on a read-only site.
"""

from __future__ import annotations

import re

_ANYWHERE = re.compile(r"[^!-\"$-\[\]-~]")
"""Anything but printable ASCII without `#` and `\\` (one character class: a fast scan of every target)."""
_JUDGED = re.compile(r"[^!-\"$-:<-\[\]-~]")
"""The same without `;`."""
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_NAMES = {
    "#": "a raw `#` (a fragment, which URL parsers drop with everything after it)",
    "\\": "a backslash",
    ";": "a `;` (servlets cut paths at it, some parsers split parameters on it)",
    "%": "a `%` without two hex digits after it",
    " ": "a space",
}


def ambiguous_target(target: str, judged: bool) -> str | None:
    """What in `target` URL parsers read in different ways (for the refusal's text), or None.

    `judged`: a rule reads the target's segments or parameters (a bounded or read-only client,
    a read-only site), so a `;` counts too.
    """
    found = (_JUDGED if judged else _ANYWHERE).search(target) or _BROKEN_ESCAPE.search(target)
    if found is None:
        return None
    char = found[0][0]
    if char in _NAMES:
        return _NAMES[char]
    return "a control character" if char < " " or char == "\x7f" else "a non-ASCII character"

"""Text a client chose, made safe to print: no terminal escapes, no forged log lines."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """Control characters as `\\xNN` escapes, so ESC/BEL reach no terminal and CR/LF forge no line.

    A line break inside a message (a traceback) is kept; a bare CR is not.
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


_AMBIGUOUS = re.compile(rb"[\x00\r\n]")


def ambiguous_head(fields: tuple[tuple[bytes, bytes], ...]) -> bool:
    """A header name or value holding NUL, CR or LF: a bare CR, or an obs-fold mitmproxy kept as
    `\\r\\n `, which servers and proxies on the way may split into headers of their own."""
    return any(_AMBIGUOUS.search(name) or _AMBIGUOUS.search(value) for name, value in fields)

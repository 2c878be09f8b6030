"""An independent reading of a JQL/CQL string's top level, to check what the site received.

Deliberately separate from `proxy_addon.policy.query_language`: a test that reads the proxy's
output with the proxy's own tokenizer would share its mistakes.
"""

from __future__ import annotations


def top_level(query: str) -> list[str]:
    """The top-level items: words and quoted strings as written, each parenthesised group whole.

    Raises ValueError on an unclosed quote or unbalanced parentheses.
    """
    items: list[str] = []
    current = ""
    depth = 0
    quote = None
    index = 0
    while index < len(query):
        char = query[index]
        if quote is not None:
            current += char
            if char == "\\":
                current += query[index + 1]
                index += 1
            elif char == quote:
                quote = None
                if depth == 0:
                    items.append(current)
                    current = ""
        elif char in "\"'":
            if depth == 0 and current:
                items.append(current)
                current = ""
            quote = char
            current += char
        elif char == "(":
            if depth == 0 and current:
                items.append(current)
                current = ""
            depth += 1
            current += char
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced")
            current += char
            if depth == 0:
                items.append(current)
                current = ""
        elif depth == 0 and (char.isspace() or char == ","):
            if current:
                items.append(current)
            current = ""
        else:
            current += char
        index += 1
    if quote is not None or depth:
        raise ValueError("unclosed")
    if current:
        items.append(current)
    return items


def confined_parts(query: str, field: str) -> tuple[list[str], str | None, list[str]]:
    """`(keys, condition, ordering)` of `field in (keys) [AND (condition)] [ORDER BY ordering]`.

    Fails (AssertionError) when the query has any other top-level shape: then something the
    client wrote stands outside the parentheses.
    """
    items = top_level(query)
    assert items[:2] == [field, "in"], items
    assert is_group(items[2]), items
    keys = [k.strip().strip('"') for k in items[2][1:-1].split(",")]
    rest = items[3:]
    condition = None
    if rest[:1] == ["AND"]:
        assert len(rest) >= 2, items
        assert is_group(rest[1]), items
        condition = rest[1][1:-1]
        rest = rest[2:]
    ordering: list[str] = []
    if rest:
        assert [r.upper() for r in rest[:2]] == ["ORDER", "BY"], items
        ordering = rest[2:]
        assert ordering, items
        assert not any(is_group(item) for item in ordering), items
    return keys, condition, ordering


def is_group(item: str) -> bool:
    return item.startswith("(") and item.endswith(")")

"""JQL and CQL, as far as confining a query needs: strings, parentheses and a trailing ORDER BY.

A bounded client's search goes to the site as `project in ("OPS") AND (<its query>)`. That
holds only if the site sees the same parentheses and the same string boundaries the proxy
sees, so this tokenizer is strict rather than clever: strings in double or single quotes with
backslash escapes, no raw control characters inside them, no backslash outside them; every
other character outside a string either is a parenthesis or a comma or belongs to a word.
Whatever it cannot make sense of (an unterminated string, unbalanced parentheses, an ORDER BY
that is not last at the top level) is refused, never guessed at.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

WHITESPACE = frozenset(" \t\r\n")
QUOTES = frozenset("\"'")
SINGLE = {"(": "(", ")": ")", ",": ","}
KEYWORDS = frozenset({"AND", "OR", "NOT", "ORDER", "BY", "IN", "IS", "WAS", "CHANGED", "EMPTY", "NULL", "ASC", "DESC"})
DIRECTIONS = frozenset({"ASC", "DESC"})


class BadQuery(ValueError):
    """The query cannot be confined; the message says why, without quoting the query."""


class TokenKind(StrEnum):
    WORD = "word"
    STRING = "string"
    OPEN = "("
    CLOSE = ")"
    COMMA = ","


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    start: int
    end: int

    def is_word(self, word: str) -> bool:
        return self.kind is TokenKind.WORD and self.text.upper() == word


def tokenize(text: str) -> list[Token]:
    """The tokens of `text`; raises `BadQuery` for anything the site might read otherwise."""
    tokens: list[Token] = []
    position, end = 0, len(text)
    while position < end:
        char = text[position]
        if char in WHITESPACE:
            position += 1
        elif not char.isprintable():
            raise BadQuery(f"it holds a control or invisible character (U+{ord(char):04X})")
        elif char in QUOTES:
            stop = _string_end(text, position)
            tokens.append(Token(TokenKind.STRING, text[position:stop], position, stop))
            position = stop
        elif char in SINGLE:
            tokens.append(Token(TokenKind(char), char, position, position + 1))
            position += 1
        elif char == "\\":
            raise BadQuery("it has a backslash outside a quoted string")
        else:
            stop = position
            while stop < end and _in_word(text[stop]):
                stop += 1
            tokens.append(Token(TokenKind.WORD, text[position:stop], position, stop))
            position = stop
    return tokens


def _in_word(char: str) -> bool:
    return char not in WHITESPACE and char not in QUOTES and char not in SINGLE and char != "\\" and char.isprintable()


def _string_end(text: str, start: int) -> int:
    """The index just past the string opened at `start`."""
    quote, position = text[start], start + 1
    while position < len(text):
        char = text[position]
        if char == "\\":
            if position + 1 >= len(text) or not text[position + 1].isprintable():
                raise BadQuery("a quoted string ends in a backslash or escapes a control character")
            position += 2
        elif char == quote:
            return position + 1
        elif not char.isprintable():
            raise BadQuery(f"a quoted string holds a control or invisible character (U+{ord(char):04X})")
        else:
            position += 1
    raise BadQuery("a quoted string is not closed")


@dataclass(frozen=True, slots=True)
class Split:
    """A query cut at its top-level ORDER BY: the condition, and the ordering (empty when none)."""

    condition: str
    ordering: str


def split(text: str) -> Split:
    """Check that parentheses balance and that an ORDER BY, if any, is last and at the top level."""
    tokens = tokenize(text)
    depth = 0
    order_at: int | None = None
    for index, token in enumerate(tokens):
        if token.kind is TokenKind.OPEN:
            depth += 1
        elif token.kind is TokenKind.CLOSE:
            depth -= 1
            if depth < 0:
                raise BadQuery("a closing parenthesis has no opening one")
        elif _order_by(tokens, index):
            if depth or order_at is not None:
                raise BadQuery("ORDER BY appears inside parentheses or twice")
            order_at = index
    if depth:
        raise BadQuery("an opening parenthesis is not closed")
    if order_at is None:
        return Split(text.strip(), "")
    ordering = tokens[order_at + 2 :]
    if not _field_list(ordering):
        raise BadQuery("ORDER BY must be last and list only fields, each with an optional ASC or DESC")
    return Split(text[: tokens[order_at].start].strip(), text[ordering[0].start :].strip())


def _field_list(tokens: list[Token]) -> bool:
    """`field [ASC|DESC] (, field [ASC|DESC])*`, a field being a word that is no keyword, or a string."""
    expect_field = True
    for token in tokens:
        if expect_field:
            plain_word = token.kind is TokenKind.WORD and token.text.upper() not in KEYWORDS
            if not (token.kind is TokenKind.STRING or plain_word):
                return False
            expect_field, directed = False, False
        elif token.kind is TokenKind.COMMA:
            expect_field = True
        elif token.kind is TokenKind.WORD and token.text.upper() in DIRECTIONS and not directed:
            directed = True
        else:
            return False
    return bool(tokens) and not expect_field


def _order_by(tokens: list[Token], index: int) -> bool:
    return tokens[index].is_word("ORDER") and index + 1 < len(tokens) and tokens[index + 1].is_word("BY")


def quoted(value: str) -> str:
    """A double-quoted string literal for `value`."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def confine(query: str, field: str, keys: Iterable[str]) -> str:
    """`field in ("K1", "K2") AND (<query>) ORDER BY ...`; the restriction alone for an empty query."""
    parts = split(query)
    restriction = f"{field} in ({', '.join(quoted(key) for key in sorted(keys))})"
    confined = f"{restriction} AND ({parts.condition})" if parts.condition else restriction
    return f"{confined} ORDER BY {parts.ordering}" if parts.ordering else confined

"""Looking an id up: which project or space a numeric id in a path or body belongs to.

The judge asks for lookups (`NeedsLookup` of `Ref`s) and is called again with the keys they
answered (`Known`); the caller sends them, with the site's credentials, to `lookup_path` in the
site's own layout and reads the key with `key_of`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class RefKind(StrEnum):
    """What a key names; with an id, what is looked up."""

    ISSUE = "issue"
    PROJECT = "project"
    CONTENT = "content"
    SPACE = "space"


ISSUE_KEY = re.compile(r"(?P<project>[A-Z][A-Z0-9_]*)-[0-9]+", re.IGNORECASE | re.ASCII)
PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]*", re.IGNORECASE | re.ASCII)
SPACE_KEY = re.compile(r"[A-Z0-9]+|~[A-Z0-9:_-]+", re.IGNORECASE | re.ASCII)
NUMBER = re.compile(r"[0-9]{1,18}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Ref:
    """Something an id names, to be looked up: the kind, the id, and where the site's API is."""

    kind: RefKind
    id: str
    prefix: str = ""
    """Where the id's product lives on the site, in the site's own layout (`Placed.base`): `/wiki` for
    Cloud's Confluence, `/ex/jira/{cloudId}` on the gateway, a Data Center context path."""
    version: str = "3"
    """The Jira REST version of the request (lookups use the same)."""


type Known = Mapping[Ref, str | None]
"""Looked-up keys: the key an id belongs to, None when the site does not know the id."""


class LookupFailed(Exception):
    """The site did not say which project or space an id belongs to; the message says how it failed."""


def lookup_path(ref: Ref) -> str:
    """Where the site tells the project or space of an id, in the site's own layout (`Ref.prefix`)."""
    if ref.kind is RefKind.ISSUE:
        return f"{ref.prefix}/rest/api/{ref.version}/issue/{ref.id}?fields=project"
    if ref.kind is RefKind.PROJECT:
        return f"{ref.prefix}/rest/api/{ref.version}/project/{ref.id}"
    if ref.kind is RefKind.CONTENT:
        return f"{ref.prefix}/rest/api/content/{ref.id}?expand=space"
    return f"{ref.prefix}/api/v2/spaces/{ref.id}"


def key_of(ref: Ref, status: int, document: Mapping[str, Any]) -> str | None:
    """The key a lookup answered, None for an id the site does not know (404); raises `LookupFailed`."""
    if status == 404:
        return None
    if status != 200:
        raise LookupFailed(f"HTTP {status}")
    if ref.kind is RefKind.ISSUE:
        key = _dig(document, "fields", "project", "key")
    elif ref.kind is RefKind.CONTENT:
        key = _dig(document, "space", "key")
    else:
        key = document.get("key")
    pattern = PROJECT_KEY if ref.kind in (RefKind.ISSUE, RefKind.PROJECT) else SPACE_KEY
    if not isinstance(key, str) or not pattern.fullmatch(key):
        raise LookupFailed("the answer names no key")
    return key.upper()


def _dig(document: Mapping[str, Any], *names: str) -> Any:
    value: Any = document
    for name in names:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value

"""A judged body: read as strict JSON, then walked for every project, issue, space or page it names.

A route judged by its body (a create, an edit, a POST search) reads it only where its action's
fields are (`READ_WHERE`); a body naming one anywhere else is refused, since the site might read
it there too. Each reference found is checked by the request's `ReferenceCheck`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from proxy_addon.policy.boundaries.judgements import Malformed, OutOfBounds
from proxy_addon.policy.boundaries.references import ReferenceCheck
from proxy_addon.policy.boundaries.routes import Action

MAX_BODY = 1 << 20
"""Bodies judged by a boundary are buffered up to this size; larger ones get 413."""
REFERENCES = frozenset({"project", "parent", "issuelinks", "space", "spaceid", "parentid", "ancestors", "container"})
"""Body keys, in lower case, that name a project, an issue, a space or a page."""
_ISSUE_FIELDS = frozenset({("fields", "project"), ("fields", "parent")})
_CONTENT_FIELDS = frozenset({("space",), ("ancestors",), ("container",)})
_PAGE_FIELDS = frozenset({("spaceId",), ("parentId",)})
_BULK_FIELDS = frozenset(("issueUpdates", "*", *where) for where in _ISSUE_FIELDS)
READ_WHERE: dict[Action, frozenset[tuple[str, ...]]] = {
    Action.CREATE_ISSUES: _ISSUE_FIELDS,
    Action.EDIT_ISSUE: _ISSUE_FIELDS,
    Action.CREATE_CONTENT: _CONTENT_FIELDS,
    Action.EDIT_CONTENT: _CONTENT_FIELDS,
    Action.CREATE_PAGE: _PAGE_FIELDS,
    Action.EDIT_PAGE: _PAGE_FIELDS,
}
"""Where a judged body may name one (`*`: any list item), spelt exactly so: the fields the route reads and the
proxy judges (a bulk create: `_BULK_FIELDS` instead). Anywhere else, or in another case, the site might read it
too, so it is refused."""


def check_body(action: Action, route: str, document: dict[str, Any], refs: ReferenceCheck) -> None:
    """Check every reference the body of a request to `route` (canonical) makes, where `action` reads it."""
    bulk = action is Action.CREATE_ISSUES and route.lower().endswith("/bulk")
    _only_where_read(document, _BULK_FIELDS if bulk else READ_WHERE[action])
    if action is Action.CREATE_ISSUES:
        if bulk:
            updates = document.get("issueUpdates")
            if not isinstance(updates, list) or not updates:
                raise OutOfBounds("a bulk create needs a non-empty `issueUpdates` list")
        else:
            updates = [document]
        for update in updates:
            _issue_fields(update, refs, create=True)
    elif action is Action.EDIT_ISSUE:
        _issue_fields(document, refs, create=False)
    elif action in (Action.CREATE_CONTENT, Action.EDIT_CONTENT):
        _content_fields(document, refs, create=action is Action.CREATE_CONTENT)
    else:
        _page_fields(document, refs, create=action is Action.CREATE_PAGE)


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object in which no key repeats (the site would read one of them); raises `Malformed`."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise Malformed("the JSON body repeats a key")
        return dict(pairs)

    try:
        document = json.loads(body.decode("utf-8"), object_pairs_hook=unique)
    except (UnicodeDecodeError, ValueError):
        raise Malformed("the body is not JSON") from None
    except RecursionError:
        raise Malformed("the JSON body is nested too deeply to judge") from None
    if not isinstance(document, dict):
        raise Malformed("the body is not a JSON object")
    return document


def _only_where_read(document: Any, where: frozenset[tuple[str, ...]]) -> None:
    """Refuse a body naming a project, issue, space or page anywhere but `where` (see `READ_WHERE`)."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, list):
            stack += [((*path, "*"), item) for item in value]
        elif isinstance(value, dict):
            for key, item in value.items():
                if key.lower() in REFERENCES and (*path, key) not in where:
                    raise OutOfBounds(f"the body names `{'.'.join((*path, key))}`, which this route is not judged by")
                stack.append(((*path, key), item))


def _issue_fields(update: Any, refs: ReferenceCheck, create: bool) -> None:
    fields = update.get("fields") if isinstance(update, dict) else None
    if not isinstance(fields, dict) and (create or (isinstance(update, dict) and "fields" in update)):
        raise OutOfBounds("an issue in the body has no `fields` object")
    fields = fields or {}
    changes = update.get("update") or {}
    if not isinstance(changes, dict) or any(k in changes for k in ("project", "parent", "issuelinks")):
        raise OutOfBounds("`update` may not set the project, the parent or issue links (they cross projects)")
    if "issuelinks" in fields:
        raise OutOfBounds("`fields.issuelinks` is not judged (links cross projects)")
    if "project" in fields or create:
        _reference(fields.get("project"), refs.project, "`fields.project`")
    if "parent" in fields:
        _reference(fields.get("parent"), refs.issue, "`fields.parent`")


def _reference(value: Any, check: Callable[[Any, str], None], where: str) -> None:
    """A `{"key": ...}` or `{"id": ...}` object, judged by its key or looked-up id."""
    if not isinstance(value, dict) or len(value) != 1 or not value.keys() <= {"key", "id"}:
        raise OutOfBounds(f"{where} must be an object with exactly one key or id, and nothing else that could name one")
    check(value.get("key", value.get("id")), where)


def _content_fields(document: dict[str, Any], refs: ReferenceCheck, create: bool) -> None:
    space = document.get("space")
    if space is not None or create:
        if not isinstance(space, dict) or space.keys() != {"key"}:
            raise OutOfBounds("the body's `space` must name a key, and nothing else that could name a space")
        refs.space_key(space["key"], "`space.key`")
    ancestors = document.get("ancestors", [])
    if not isinstance(ancestors, list):
        raise OutOfBounds("the body's `ancestors` must be a list")
    for ancestor in ancestors:
        refs.content(ancestor.get("id") if isinstance(ancestor, dict) else None, "`ancestors`")
    if "container" in document:
        container = document["container"]
        refs.content(container.get("id") if isinstance(container, dict) else None, "`container`")


def _page_fields(document: dict[str, Any], refs: ReferenceCheck, create: bool) -> None:
    if "spaceId" in document or create:
        refs.space_id(document.get("spaceId"), "`spaceId`")
    if document.get("parentId") is not None:
        refs.content(document["parentId"], "`parentId`")

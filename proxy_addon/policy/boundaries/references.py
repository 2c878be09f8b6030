"""One request's references to issues, projects, pages and spaces, each checked against the client's bound.

A key is judged at once; an id by the key a lookup answered (`Known`), or it is collected in
`missing` for the judge to ask for.
"""

from __future__ import annotations

from typing import Any

from proxy_addon.policy.boundaries.judgements import OutOfBounds
from proxy_addon.policy.boundaries.lookups import ISSUE_KEY, NUMBER, PROJECT_KEY, SPACE_KEY, Known, Ref, RefKind
from proxy_addon.policy.clients import Client


class ReferenceCheck:
    """Checks each reference a request makes; raises `OutOfBounds` for one outside the bound or not judgeable."""

    def __init__(self, client: Client, base: str, version: str, known: Known) -> None:
        self.client = client
        self.base = base
        """Where the product lives on the site (`CanonicalPath.base`): lookups go there."""
        self.version = version
        """The Jira REST version of the request (lookups use the same)."""
        self.known = known
        self.missing: set[Ref] = set()
        """Ids `known` does not answer yet: the judge asks for their lookup before it decides."""

    def issue(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if key := ISSUE_KEY.fullmatch(text):
            self._check(RefKind.PROJECT, key["project"], f"issue {text}")
        elif NUMBER.fullmatch(text):
            self._by_id(Ref(RefKind.ISSUE, text, self.base, self.version), f"issue {text}", RefKind.PROJECT)
        else:
            raise OutOfBounds(f"{where} names no issue key or id it can judge")

    def project(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if NUMBER.fullmatch(text):
            self._by_id(Ref(RefKind.PROJECT, text, self.base, self.version), f"project {text}", RefKind.PROJECT)
        elif PROJECT_KEY.fullmatch(text):
            self._check(RefKind.PROJECT, text, f"project {text}")
        else:
            raise OutOfBounds(f"{where} names no project key or id it can judge")

    def content(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not NUMBER.fullmatch(text):
            raise OutOfBounds(f"{where} names no content id it can judge")
        self._by_id(Ref(RefKind.CONTENT, text, self.base), f"content {text}", RefKind.SPACE)

    def space_key(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or not SPACE_KEY.fullmatch(value):
            raise OutOfBounds(f"{where} names no space key it can judge")
        self._check(RefKind.SPACE, value, f"space {value}")

    def space_id(self, value: Any, where: str) -> None:
        text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
        if not NUMBER.fullmatch(text):
            raise OutOfBounds(f"{where} names no space id it can judge")
        self._by_id(Ref(RefKind.SPACE, text, self.base), f"space {text}", RefKind.SPACE)

    def _by_id(self, ref: Ref, what: str, kind: RefKind) -> None:
        if not self.bound(kind):  # nothing is inside an empty bound: no lookup spends the token on it
            raise OutOfBounds(f"{what} is not in {self.bound_text(kind)}, or does not exist")
        if ref not in self.known:
            self.missing.add(ref)
            return
        key = self.known[ref]
        if key is None:
            raise OutOfBounds(f"{what} is not in {self.bound_text(kind)}, or does not exist")
        self._check(kind, key, what)

    def _check(self, kind: RefKind, key: str, what: str) -> None:
        if key.upper() not in self.bound(kind):
            # The same words for "elsewhere" and "nowhere", and no key learned from a lookup.
            raise OutOfBounds(f"{what} is not in {self.bound_text(kind)}, or does not exist")

    def bound(self, kind: RefKind) -> frozenset[str]:
        bound = self.client.jira_projects if kind is RefKind.PROJECT else self.client.confluence_spaces
        return bound or frozenset()

    def bound_text(self, kind: RefKind) -> str:
        name = "Jira projects" if kind is RefKind.PROJECT else "Confluence spaces"
        return f"its {name} ({', '.join(sorted(self.bound(kind))) or 'none'})"

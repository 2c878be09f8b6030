"""Which project or space an id belongs to: where the lookup asks, and what its answer says."""

from __future__ import annotations

import pytest

from proxy_addon.policy.boundaries.lookups import LookupFailed, Ref, RefKind, key_of


def test_lookup_answers():
    issue, content = Ref(RefKind.ISSUE, "1"), Ref(RefKind.CONTENT, "1")
    assert key_of(issue, 200, {"fields": {"project": {"key": "ops"}}}) == "OPS"
    assert key_of(content, 200, {"space": {"key": "ENG"}}) == "ENG"
    assert key_of(issue, 404, {}) is None
    for status, body in [(500, {}), (401, {}), (429, {}), (200, {}), (200, {"fields": {"project": {"key": 1}}})]:
        with pytest.raises(LookupFailed):
            key_of(issue, status, body)

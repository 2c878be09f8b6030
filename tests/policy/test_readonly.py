"""What a read-only site lets through: reads, and the POSTs that only search."""

from __future__ import annotations

import pytest

from proxy_addon.policy.readonly import read_only_allows


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/rest/api/3/issue/X-1", True),
        ("HEAD", "/", True),
        ("OPTIONS", "/rest/api/3/issue", True),
        ("POST", "/rest/api/3/search", True),
        ("POST", "/rest/api/2/search?fields=summary", True),
        ("POST", "/rest/api/3/search/jql", True),
        ("POST", "/rest/api/3/expression/eval", True),
        ("POST", "/wiki/rest/api/search", True),
        ("POST", "/wiki/rest/api/content/search", True),
        ("POST", "/rest/api/3/issue", False),
        ("PUT", "/rest/api/3/issue/X-1", False),
        ("DELETE", "/rest/api/3/issue/X-1", False),
        ("PATCH", "/rest/api/3/search", False),
        ("POST", "/rest/api/3/search/../issue", False),
        ("POST", "/rest/api/3/%73earch", False),
        ("POST", "//rest/api/3/search", False),
    ],
)
def test_read_only_policy(method, path, allowed):
    assert read_only_allows(method, path) is allowed

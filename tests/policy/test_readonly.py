"""What a read-only site lets through: reads, and the POSTs that only search."""

from __future__ import annotations

import pytest

from proxy_addon.policy.layouts import CLOUD, ON_GATEWAY, UNKNOWN, Product, declared
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
        ("POST", "/rest/api/3/%73earch", True),  # decoded as the site decodes it, as the boundaries do
        ("POST", "/rest/api/3/search%2Fjql", False),
        ("POST", "//rest/api/3/search", False),
        ("POST", "/rest/api/content/search", False),  # Confluence's search, but on Cloud that is Jira's path
        ("POST", "/wiki/rest/api/2/search", False),
    ],
)
def test_read_only_policy(method, path, allowed):
    assert read_only_allows(method, path, CLOUD) is allowed


DC_JIRA = declared(Product.JIRA, "/jira")
DC_WIKI = declared(Product.CONFLUENCE, "/confluence")


@pytest.mark.parametrize(
    ("layout", "path", "allowed"),
    [
        (DC_JIRA, "/jira/rest/api/2/search", True),
        (DC_JIRA, "/JIRA/rest/api/2/search?fields=key", True),
        (DC_JIRA, "/jira/rest/api/latest/search", True),
        (DC_JIRA, "/rest/api/2/search", False),
        (DC_JIRA, "/jira/rest/api/content/search", False),
        (DC_JIRA, "/jira/wiki/rest/api/search", False),
        (DC_WIKI, "/confluence/rest/api/search", True),
        (DC_WIKI, "/confluence/rest/api/content/search", True),
        (DC_WIKI, "/confluence/rest/api/2/search", False),
        (DC_WIKI, "/wiki/rest/api/search", False),
        (declared(Product.CONFLUENCE, "/"), "/rest/api/content/search", True),
        (ON_GATEWAY, "/ex/jira/c0ffee/rest/api/3/search/jql", True),
        (ON_GATEWAY, "/ex/confluence/c0ffee/wiki/rest/api/search", True),
        (ON_GATEWAY, "/ex/confluence/c0ffee/rest/api/search", True),
        (ON_GATEWAY, "/rest/api/3/search", False),
        (UNKNOWN, "/rest/api/2/search", False),
        (UNKNOWN, "/wiki/rest/api/search", False),
    ],
)
def test_read_only_posts_are_judged_in_the_sites_layout(layout, path, allowed):
    assert read_only_allows("POST", path, layout) is allowed
    assert read_only_allows("GET", path, layout), "a GET is a read on any layout"

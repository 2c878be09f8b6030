"""What a `read_only = true` site lets through. The one documented list; docs/how-to/sites.md points here.

Reads are GET, HEAD and OPTIONS. A few POST endpoints only read (they take a query in the body
because it can be long), and are allowed too, where the site serves them: the path is judged in
the site's layout (`policy.layouts`), as the boundaries judge it, so a search under a Data
Center context path (`/jira/rest/api/2/search`) is a read and Confluence's search on a Jira site
is not. On a site whose product is not known no POST is a read. Everything else is answered
locally with 403.
"""

from __future__ import annotations

import re

from proxy_addon.policy.boundaries.paths import Unjudgeable, split_path
from proxy_addon.policy.layouts import Layout, Product

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

READ_ONLY_POSTS = {
    # Jira: JQL search (v2, v3, the newer /search/jql and its count), and Jira expressions (Cloud).
    Product.JIRA: re.compile(r"/rest/api/(2|3)/search(/jql|/approximate-count)?|/rest/api/3/expression/eval"),
    # Confluence: CQL search.
    Product.CONFLUENCE: re.compile(r"/wiki/rest/api(/content)?/search"),
}
"""In the canonical (Cloud) form a layout places a site's path in; see `policy.layouts`."""


def read_only_allows(method: str, path: str, layout: Layout) -> bool:
    """True if a read-only site of this `layout` may send this request. `path` may carry a query."""
    method = method.upper()
    if method in READ_METHODS:
        return True
    if method != "POST":
        return False
    try:
        route, _, _ = split_path(path)
    except (Unjudgeable, UnicodeDecodeError):
        return False
    placed = layout.place(route)
    return placed is not None and READ_ONLY_POSTS[placed.product].fullmatch(placed.route) is not None

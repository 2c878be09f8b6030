"""What a `read_only = true` site lets through. The one documented list; README links here.

Reads are GET, HEAD and OPTIONS. A few POST endpoints only read (they take a query in the body
because it can be long), and are allowed too. Everything else is answered locally with 403.
"""

from __future__ import annotations

import re

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

READ_ONLY_POSTS = (
    # Jira Cloud: JQL search (v2, v3, and the newer /search/jql), and Jira expressions.
    re.compile(r"/rest/api/(2|3)/search(/jql)?"),
    re.compile(r"/rest/api/3/expression/eval"),
    # Confluence Cloud: CQL search (the site's /wiki prefix, and the API gateway's form without it).
    re.compile(r"(/wiki)?/rest/api/search"),
    re.compile(r"(/wiki)?/rest/api/content/search"),
)


def read_only_allows(method: str, path: str) -> bool:
    """True if a read-only site may send this request. `path` may carry a query."""
    method = method.upper()
    if method in READ_METHODS:
        return True
    route = path.partition("?")[0]
    return method == "POST" and any(p.fullmatch(route) for p in READ_ONLY_POSTS)

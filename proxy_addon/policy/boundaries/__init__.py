"""Jira-project and Confluence-space boundaries: which routes a bounded client may use, and how each is judged.

- `routes`: the route table, what each row reaches and what judges it;
- `paths`: a request path in canonical form, and its query's parameters;
- `judge`: the judgement of one request (`judge()`), pure; `judgements`: what it answers;
- `references` and `body`: each issue, project, page or space a path, query or body names, checked
  against the client's bound;
- `lookups`: which project or space an id belongs to, asked of the site.
"""

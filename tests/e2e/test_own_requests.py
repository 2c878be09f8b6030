"""The proxy's own credentialed requests obey the clients' rules (issue 20 #6, #7): real proxy, curl, the TLS stand-in.

The boundaries' lookups of which project an id belongs to carry the site's token. They are
not sent while the token is paused, their 401 is read (and confirmed) like a client's, and
each one counts against the client's `requests_per_minute`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.clients import curl
from support.proxy import EMAIL, TOKEN_24, TOKEN_192, Proxy, basic, wait_for

SITE = "https://acme.atlassian.net"
REVOKED, GOOD = basic(EMAIL, TOKEN_24), basic(EMAIL, TOKEN_192)
PASSWORD = "ops-Pa55word-31c8"
CLIENT = """
[[clients]]
name = "ops-agent"
password_env = "OPS_AGENT_PASSWORD"
jira_projects = ["OPS"]
{extra}
"""


@pytest.fixture
def rejecting(site):
    site.record.rejected.add(REVOKED)
    yield
    site.record.rejected.clear()


def bounded_proxy(make_proxy, tmp_path: Path, token: str, extra: str = "") -> Proxy:
    config = tmp_path / "clients.toml"
    config.write_text(CLIENT.format(extra=extra))
    return make_proxy(ATLASSIAN_PROXY_CONFIG=str(config), ATLASSIAN_PROXY_API_TOKEN=token, OPS_AGENT_PASSWORD=PASSWORD)


def call(proxy: Proxy, method: str, path: str, data: object | None = None) -> tuple[int, str, str]:
    """One request as ops-agent: the status, the headers and the body."""
    extra = ["-X", method, "--proxy-user", f"ops-agent:{PASSWORD}", "-D", "-", "-w", "\n%{http_code}"]
    if data is not None:
        extra += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(data)]
    result = curl(proxy.url, SITE + path, proxy.ca_file, *extra)
    assert result.returncode == 0, result.stderr
    reply, _, status = result.stdout.rpartition("\n")
    head, _, body = reply.rpartition("\n\n")  # after the CONNECT reply's head, the response's
    return int(status), head.lower(), body


def carrying(site, authorization: str) -> int:
    """How many requests reached the site with these credentials."""
    with site.record.lock:
        return sum(1 for r in site.record.requests if r.header("Authorization") == authorization)


def bulk(*project_ids: int) -> dict:
    return {"issueUpdates": [{"fields": {"project": {"id": str(i)}, "summary": "s"}} for i in project_ids]}


def test_with_a_revoked_token_lookups_send_it_no_more_than_a_plain_request_and_their_401_starts_the_pause(
    make_proxy, site, tmp_path, rejecting
):
    proxy = bounded_proxy(make_proxy, tmp_path, TOKEN_24)
    before = carrying(site, REVOKED)
    for issue_id in range(21001, 21021):  # a fresh id each time: each needs a lookup
        status, head, body = call(proxy, "GET", f"/rest/api/3/issue/{issue_id}")
        assert status == 401, body
        assert '"token_rejected"' in body, "the local 401 of a paused token, not a 502"
        assert "retry-after:" in head
    for first in (22001, 22051):
        status, _, body = call(proxy, "POST", "/rest/api/3/issue/bulk", bulk(*range(first, first + 50)))
        assert (status, '"token_rejected"' in body) == (401, True)
    # A plain request with an ambiguous 401 costs two attempts: it and the confirmation. A lookup, no more.
    assert carrying(site, REVOKED) - before <= 3
    wait_for(lambda: "rejected the API token of site default" in proxy.output, what="the rejection log line")
    assert proxy.output.count("rejected the API token") == 1
    status, _, body = call(proxy, "GET", "/rest/api/3/myself")
    assert (status, '"token_rejected"' in body) == (401, True), "the lookup's 401 paused the host for everyone"


def test_lookups_count_against_the_clients_requests_per_minute_and_the_429_is_local(make_proxy, site, tmp_path):
    proxy = bounded_proxy(make_proxy, tmp_path, TOKEN_192, "requests_per_minute = 3")
    before = carrying(site, GOOD)
    fresh = iter(range(23001, 23500))
    status, head, body = call(proxy, "POST", "/rest/api/3/issue/bulk", bulk(*(next(fresh) for _ in range(50))))
    assert status == 429, "the request and its 50 lookups do not fit in 3 a minute"
    assert "retry-after:" in head
    assert body.startswith("atlassian-auth-proxy: client ops-agent is past its limit of 3 requests per minute")
    assert carrying(site, GOOD) == before, "nothing was sent"
    status, _, body = call(proxy, "POST", "/rest/api/3/issue/bulk", bulk(next(fresh)))
    assert status == 403, "the second request and its one lookup fit: the site does not know the project"
    for _ in range(4):
        status, _, _ = call(proxy, "POST", "/rest/api/3/issue/bulk", bulk(*(next(fresh) for _ in range(50))))
        assert status == 429
    assert carrying(site, GOOD) - before <= 3, "no more than 3 credentialed requests a minute, lookups included"
    wait_for(lambda: proxy.output.count("credentials=refused-rate-limited") == 5, what="five 429s in the log")

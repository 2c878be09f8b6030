"""A `[[clients]]` client's sites and read-only bound, judged by the one verdict."""

from __future__ import annotations

import pytest

from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision
from proxy_addon.policy.refusals import REFUSALS, Refusal, message
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Site, SiteTable
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.policy.verdict import Policy, RequestFacts, decide, refusal

from support.proxy import basic

ACME, GLOBEX = "acme.atlassian.net", "globex.atlassian.net"
SITES = SiteTable.of(
    [
        Site("acme", (HostPattern.parse(ACME),), "a@example.test"),
        Site("globex", (HostPattern.parse(GLOBEX),), "g@example.test", read_only=True),
    ]
)
PASSWORD = "s3cret-of-agent-7d"


def client(name: str = "agent", **bounds) -> Client:
    return Client(name, ProxyLogin.of(name, PASSWORD), **bounds)


def facts(host: str = ACME, method: str = "GET", path: str = "/rest/api/3/issue", **changes) -> RequestFacts:
    fields = {"scheme": "https", "method": method, "path": path, "host": host, "port": 443, "sni": host}
    return RequestFacts(**fields, names=(host,), **changes)


def judged(request: RequestFacts) -> Decision:
    return decide(request, Policy(SITES, Gateway()), TokenHealth(), 0.0).decision


@pytest.mark.parametrize(
    ("who", "host", "method", "expected"),
    [
        (None, ACME, "POST", Decision.INJECT),
        (client(), ACME, "POST", Decision.INJECT),
        (client(sites=frozenset({"acme"})), ACME, "POST", Decision.INJECT),
        (client(sites=frozenset({"acme"})), GLOBEX, "GET", Decision.CLIENT_SITE),
        (client(sites=frozenset({"globex"})), ACME, "GET", Decision.CLIENT_SITE),
        (client(read_only=True), ACME, "GET", Decision.INJECT),
        (client(read_only=True), ACME, "POST", Decision.CLIENT_READ_ONLY),
        (client(read_only=True), ACME, "DELETE", Decision.CLIENT_READ_ONLY),
        (client(read_only=True), GLOBEX, "POST", Decision.READ_ONLY),
        (client(sites=frozenset({"acme"}), read_only=True), GLOBEX, "POST", Decision.CLIENT_SITE),
        (client(sites=frozenset({"acme"})), "example.test", "POST", Decision.PASS),
    ],
    ids=[
        "no-client",
        "unbounded",
        "own-site",
        "other-site",
        "other-site-2",
        "read-only-read",
        "read-only-write",
        "read-only-delete",
        "read-only-site-too",
        "site-before-read-only",
        "no-site-no-credentials",
    ],
)
def test_a_clients_bounds_can_only_take_credentials_away(who, host, method, expected):
    assert judged(facts(host, method, client=who)) is expected


def test_a_read_only_client_may_still_search():
    assert judged(facts(method="POST", path="/rest/api/3/search/jql", client=client(read_only=True))) is Decision.INJECT


def text_of(refused: tuple[Refusal, dict[str, object]] | None) -> tuple[int, str]:
    assert refused is not None
    which, named = refused
    return REFUSALS[which].status, message(which, **named)


def test_refusals_name_the_client_and_the_bound_never_the_password():
    bounded = client("agent-a", sites=frozenset({"acme", "beta"}))
    request = facts(GLOBEX, client=bounded)
    verdict = decide(request, Policy(SITES, Gateway()), TokenHealth(), 0.0)
    assert text_of(refusal(verdict, request)) == (
        403,
        "client agent-a may not use site globex: its sites are acme, beta",
    )
    request = facts(method="PUT", path="/rest/api/3/issue/X-1?notify=false", client=client("agent-b", read_only=True))
    status, message = text_of(refusal(decide(request, Policy(SITES, Gateway()), TokenHealth(), 0.0), request))
    assert (status, message) == (
        403,
        "client agent-b is read-only: PUT /rest/api/3/issue/X-1 is not a read (see docs/how-to/sites.md, Read-only)",
    )
    assert PASSWORD not in repr(bounded) + message


def test_the_table_authenticates_each_client_by_its_own_password_only():
    a, b = client("a"), Client("b", ProxyLogin.of("b", "other-password"))
    table = ClientTable.of([a, b])
    assert table.authenticate(basic("a", PASSWORD)) is a
    assert table.authenticate(basic("b", PASSWORD)) is None
    assert table.authenticate(basic("c", PASSWORD)) is None
    assert table.get("b") is b
    assert table.get(None) is None
    assert not ClientTable()

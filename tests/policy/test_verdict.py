"""The injection verdict as a pure function of where the connection really goes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.clients import Client
from proxy_addon.policy.hosts import HostPattern, is_loopback_address, normalize_host
from proxy_addon.policy.layouts import Product, declared
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision
from proxy_addon.policy.refusals import REFUSALS, Refusal, message
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.token_health import TokenHealth
from proxy_addon.policy.verdict import (
    Policy,
    RequestFacts,
    Verdict,
    decide,
    from_browser,
    moved_to_gateway,
    refusal,
    should_intercept,
)

ACME = "acme.atlassian.net"


def site(name: str, *patterns: str, **options) -> Site:
    return Site(name, tuple(HostPattern.parse(p) for p in patterns), f"{name}@example.test", **options)


WILDCARD = site("all", "*.atlassian.net")
TABLE = SiteTable.of([WILDCARD])


def verdict(table: SiteTable = TABLE, browser: bool = False, **changes) -> Decision:
    facts = {"scheme": "https", "method": "GET", "path": "/", "host": ACME, "port": 443, "sni": ACME, "names": [ACME]}
    facts.update(changes)
    facts["names"] = tuple(facts["names"])
    origin = "https://page.example" if browser else None
    return decide(RequestFacts(**facts, origin=origin), Policy(table, Gateway()), TokenHealth(), 0.0).decision


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, Decision.INJECT),
        ({"names": ["ACME.atlassian.net:443"]}, Decision.INJECT),
        ({"names": []}, Decision.INJECT),
        ({"host": "example.test", "sni": "example.test", "names": [ACME]}, Decision.PASS),
        ({"scheme": "http", "port": 80, "sni": None}, Decision.CLEARTEXT),
        ({"scheme": "http", "host": "example.test", "port": 80, "sni": None}, Decision.PASS),
        ({"port": 8443}, Decision.PASS),
        ({"sni": None}, Decision.MISDIRECTED),
        ({"sni": "other.atlassian.net"}, Decision.MISDIRECTED),
        ({"names": ["other.atlassian.net"]}, Decision.MISDIRECTED),
        ({"names": [ACME, "evil.test"]}, Decision.MISDIRECTED),
        ({"names": [f"{ACME}:8443"]}, Decision.MISDIRECTED),
        ({"names": [f"{ACME}:nope"]}, Decision.BAD_AUTHORITY),
        ({"names": [f"{ACME}:²"]}, Decision.BAD_AUTHORITY),
        ({"names": [f"{ACME}:0"]}, Decision.BAD_AUTHORITY),
        ({"names": [f"{ACME}:", ACME]}, Decision.BAD_AUTHORITY),
        ({"names": ["[::1"]}, Decision.BAD_AUTHORITY),
        ({"path": "https://globex.atlassian.net/x"}, Decision.MISDIRECTED),
        ({"path": f"https://{ACME}/x"}, Decision.INJECT),
        ({"path": f"https://u@{ACME}:8443/x"}, Decision.MISDIRECTED),
        ({"path": "rest/api"}, Decision.BAD_AUTHORITY),
        ({"path": "*"}, Decision.INJECT),
        ({"host": "api.media.atlassian.com", "sni": "api.media.atlassian.com", "names": []}, Decision.PASS),
        ({"plain_hop": True, "client_loopback": True}, Decision.INJECT),
        ({"plain_hop": True, "client_loopback": False}, Decision.CLEARTEXT_HOP),
        ({"plain_hop": True, "client_loopback": True, "names": [ACME, "other.example.test"]}, Decision.MISDIRECTED),
        ({"plain_hop": True, "client_loopback": True, "scheme": "http", "port": 80}, Decision.CLEARTEXT),
        ({"plain_hop": True, "client_loopback": False, "host": "example.test", "sni": "example.test"}, Decision.PASS),
    ],
)
def test_decide(changes, expected):
    assert verdict(**changes) is expected


@given(host=st.text(max_size=30), sni=st.one_of(st.none(), st.text(max_size=30)), names=st.lists(st.text(max_size=30)))
def test_only_a_matching_destination_can_ever_inject(host, sni, names):
    if verdict(host=host, sni=sni, names=names) is Decision.INJECT:
        assert TABLE.lookup(normalize_host(host), 443) is WILDCARD
        assert TABLE.lookup(normalize_host(sni), 443) is WILDCARD


DC_JIRA = declared(Product.JIRA, "/jira")


def test_a_read_only_data_center_site_reads_under_its_context_path_and_writes_nothing():
    dc = site("dc", "jira.corp.example", read_only=True, layout=DC_JIRA)
    table = SiteTable.of([dc])
    host = {"host": "jira.corp.example", "sni": "jira.corp.example", "names": ["jira.corp.example"]}
    assert verdict(table=table, method="POST", path="/jira/rest/api/2/search", **host) is Decision.INJECT
    assert verdict(table=table, method="POST", path="/jira/rest/api/2/issue", **host) is Decision.READ_ONLY
    assert verdict(table=table, method="POST", path="/jira/rest/api/content/search", **host) is Decision.READ_ONLY
    undeclared = SiteTable.of([site("dc", "jira.corp.example", read_only=True)])
    assert verdict(table=undeclared, method="POST", path="/rest/api/2/search", **host) is Decision.READ_ONLY


def test_read_only_site_refuses_writes():
    table = SiteTable.of([site("ro", ACME, read_only=True)])
    assert verdict(table=table, method="POST", path="/rest/api/3/issue") is Decision.READ_ONLY
    assert verdict(table=table, method="POST", path="/rest/api/3/search") is Decision.INJECT


@pytest.mark.parametrize(
    ("host", "port", "sni", "expected"),
    [
        (ACME, 443, ACME, True),
        (ACME, 443, "ACME.atlassian.net", True),
        (ACME, 8443, ACME, False),
        (ACME, 443, None, False),
        (ACME, 443, ACME + ".", False),
        ("example.test", 443, ACME, False),
        (ACME, 443, "example.test", False),
        (None, None, ACME, False),
    ],
)
def test_should_intercept(host, port, sni, expected):
    assert should_intercept(Policy(TABLE, Gateway()), host, port, sni) is expected


@pytest.mark.parametrize(
    ("origin", "fetch_site", "expected"),
    [
        (None, None, False),
        (None, "none", False),
        (None, " None ", False),
        ("https://evil.example", None, True),
        ("", None, True),
        (None, "cross-site", True),
        (None, "same-site", True),
        (None, "", True),
    ],
)
def test_from_browser(origin, fetch_site, expected):
    assert from_browser(origin, fetch_site) is expected


@given(origin=st.one_of(st.none(), st.text(max_size=20)), fetch_site=st.one_of(st.none(), st.text(max_size=20)))
def test_a_browser_request_never_gets_credentials(origin, fetch_site):
    browser = from_browser(origin, fetch_site)
    decision = verdict(browser=browser)
    assert (decision is Decision.INJECT) is not browser


def test_the_browser_guard_never_turns_a_refusal_into_credentials():
    assert verdict(scheme="http", port=80, sni=None, names=[], browser=True) is Decision.CLEARTEXT


def text_of(refused: tuple[Refusal, dict[str, object]] | None) -> tuple[int, str]:
    assert refused is not None
    which, facts = refused
    return REFUSALS[which].status, message(which, **facts)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"sni": None}, "no TLS server name (SNI)"),
        ({"sni": "other.atlassian.net"}, "the TLS server name (SNI) is other.atlassian.net"),
        ({"names": [ACME, "evil.test:443"]}, "the request names evil.test:443"),
    ],
)
def test_a_misdirected_refusal_says_what_differed(changes, named):
    facts = {"scheme": "https", "method": "GET", "path": "/", "host": ACME, "port": 443, "sni": ACME, "names": (ACME,)}
    facts.update(changes)
    request = RequestFacts(**facts)
    result = decide(request, Policy(TABLE, Gateway()), TokenHealth(), 0.0)
    status, message = text_of(refusal(result, request))
    assert status == 421
    assert message.startswith(f"this connection goes to {ACME}; ")
    assert named in message


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        *[("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("::ffff:127.0.0.1", True)],
        *[("192.0.2.2", False), ("::ffff:10.0.0.1", False), ("fd00::2", False), ("", False), (None, False)],
    ],
)
def test_loopback_peers(address, loopback):
    assert is_loopback_address(address) is loopback


LOGIN = ProxyLogin.parse("agent:Pr0xy-pa55word-9f3e")
BOUNDED = Client("bounded", LOGIN, jira_projects=frozenset({"OPS"}))
READER = Client("reader", LOGIN, read_only=True)
WRITER = Client("writer", LOGIN)


@pytest.mark.parametrize(
    ("client", "read_only_site", "expected"),
    [
        (BOUNDED, False, Decision.METHOD_OVERRIDE),
        (READER, False, Decision.METHOD_OVERRIDE),
        (WRITER, True, Decision.METHOD_OVERRIDE),
        (None, True, Decision.METHOD_OVERRIDE),
        (WRITER, False, Decision.INJECT),
        (None, False, Decision.INJECT),
    ],
)
def test_a_method_override_is_refused_wherever_a_rule_judges_the_method(client, read_only_site, expected):
    table = SiteTable.of([site("all", "*.atlassian.net", read_only=read_only_site)])
    for override in ({"method_override": "X-HTTP-Method-Override"}, {"path": "/rest/api/3/issue/OPS-1?_method=DELETE"}):
        assert verdict(table=table, client=client, **override) is expected, override
    assert verdict(table=table, client=client, path="/rest/api/3/issue/OPS-1?method=x") is Decision.INJECT


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"method_override": "x-method-override"}, "x-method-override would let the site run this GET as another"),
        ({"path": "/rest/api/3/myself?%5Fmethod=PUT"}, "the query parameter _method would let the site"),
        ({"path": "/rest/api/3/myself?a=1&_METHOD=PUT"}, "the query parameter _method would let the site"),
    ],
)
def test_the_method_override_refusal_names_the_override(changes, named):
    facts = RequestFacts("https", "GET", "/", ACME, 443, ACME, (ACME,), client=BOUNDED)
    for name, value in changes.items():
        setattr(facts, name, value)
    result = decide(facts, Policy(TABLE, Gateway()), TokenHealth(), 0.0)
    assert result.decision is Decision.METHOD_OVERRIDE
    status, message = text_of(refusal(result, facts))
    assert status == 400
    assert message.startswith("client bounded has bounds: " + named), message


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"])
def test_the_methods_atlassians_apis_use_carry_the_credential(method):
    assert verdict(method=method) is Decision.INJECT


@pytest.mark.parametrize("method", ["TRACE", "TRACK", "CONNECT", "PROPFIND", "DEBUG", "get", "Trace", "BREW"])
@pytest.mark.parametrize("client", [None, WRITER, BOUNDED])
def test_any_other_method_to_a_credential_host_is_405_for_every_client(method, client):
    """A TRACE is echoed with its headers by servers that implement it: the credential would come back."""
    assert verdict(method=method, client=client) is Decision.METHOD_NOT_ALLOWED


def test_other_methods_elsewhere_are_none_of_the_proxys_business_and_cleartext_stays_refused():
    assert verdict(method="TRACE", host="example.test", sni="example.test", names=[]) is Decision.PASS
    assert verdict(method="TRACE", scheme="http", port=80, sni=None) is Decision.CLEARTEXT


def test_the_405_names_the_method_and_the_allowed_ones_in_allow():
    facts = RequestFacts("https", "TRACE", "/", ACME, 443, ACME, (ACME,))
    result = decide(facts, Policy(TABLE, Gateway()), TokenHealth(), 0.0)
    refused, named = refusal(result, facts)
    reply = REFUSALS[refused]
    assert (reply.status, reply.decision) == (405, Decision.METHOD_NOT_ALLOWED)
    assert dict((name, value.format(**named)) for name, value in reply.headers) == {
        "Allow": "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"
    }
    assert message(refused, **named).startswith("TRACE is never sent to acme.atlassian.net with credentials")


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/rest/api/2/search?maxResults=50#&jql=project%3DSEC", "a raw `#`"),
        ("/rest/api/3/issue/OPS-1#", "a raw `#`"),
        ("/rest/api/3/search?jql=project = SEC", "a space"),
        ("/rest/api/3/search?jql=x\tproject", "a control character"),
        ("/rest/api/3/search?jql=x\r\nX-Injected: 1", "a control character"),
        ("/rest/api/3/search?jql=\x7f", "a control character"),
        ("/rest/api/3/search?jql=ÖPS", "a non-ASCII character"),
        ("/rest/api/3/search?jql=\udcff", "a non-ASCII character"),
        ("/rest/api/3/issue\\..\\search", "a backslash"),
        ("/rest/api/3/search?jql=100%", "a `%` without two hex digits"),
        ("/rest/api/3/search?jql=%zzx", "a `%` without two hex digits"),
    ],
)
def test_a_target_url_parsers_read_differently_never_gets_credentials(path, named):
    """Refused for every client, bounded or not: no valid request target holds these bytes, and a front
    proxy or the site's own URL parser would read another request than the one judged."""
    for client in (None, WRITER, READER, BOUNDED):
        facts = RequestFacts("https", "GET", path, ACME, 443, ACME, (ACME,), client=client)
        result = decide(facts, Policy(TABLE, Gateway()), TokenHealth(), 0.0)
        assert result.decision is Decision.AMBIGUOUS_TARGET, (client, path)
        status, message = text_of(refusal(result, facts))
        assert status == 400
        who = f"client {client.name}: " if client is not None else ""
        assert message.startswith(f"{who}the request target holds {named}"), message
        assert "SEC" not in message, "the text names no part of the target"
        assert "OPS" not in message


def test_a_semicolon_is_refused_only_where_a_rule_reads_the_target():
    path = "/rest/api/3/issue/OPS-1?a=1;_method=DELETE"
    assert verdict(client=BOUNDED, path=path) is Decision.AMBIGUOUS_TARGET
    assert verdict(client=READER, path=path) is Decision.AMBIGUOUS_TARGET
    read_only = SiteTable.of([site("all", "*.atlassian.net", read_only=True)])
    assert verdict(table=read_only, client=WRITER, path=path) is Decision.AMBIGUOUS_TARGET
    assert verdict(client=WRITER, path=path) is Decision.INJECT, "an unbounded client: no rule reads it"
    assert verdict(client=WRITER, path="/rest/api/3/issue/OPS-1;jsessionid=1") is Decision.INJECT


@pytest.mark.parametrize(
    "path",
    [
        "/rest/api/3/search?jql=project%20%3D%20OPS%23x&fields=summary,key",
        "/wiki/rest/api/content?spaceKey=ENG&expand=body.storage&title=a+b",
        "/rest/api/2/search?jql=summary~%22100%25%22",
        "/rest/agile/1.0/board?name=a[1]|{b}^`<>\"'!$()*,:@~",
        "/",
    ],
)
def test_an_ordinary_percent_encoded_target_passes(path):
    for client in (None, WRITER, READER, BOUNDED):
        assert verdict(client=client, path=path) is Decision.INJECT, (client, path)


def test_a_target_is_not_looked_at_for_a_request_that_gets_no_credential():
    assert verdict(host="example.test", sni="example.test", names=["example.test"], path="/a b#c") is Decision.PASS


GATEWAY = "api.atlassian.com"
SCOPED = site("acme", ACME, scoped=True)
MINTED = site("bot", "bot.atlassian.net", scheme=Scheme.CLIENT_CREDENTIALS)
CLASSIC = site("globex", "globex.atlassian.net", cloud_id="c1a551c0")


def gateway_policy() -> Policy:
    gateway = Gateway()
    gateway.add(SCOPED, "5c0bed00")
    gateway.add(MINTED, "b0b0b0b0")
    gateway.add(CLASSIC, "c1a551c0")
    return Policy(SiteTable.of([SCOPED, MINTED, CLASSIC]), gateway)


def decided(host: str, path: str, method: str = "GET", policy: Policy | None = None) -> Verdict:
    facts = RequestFacts("https", method, path, host, 443, host, (host,))
    return decide(facts, policy or gateway_policy(), TokenHealth(), 0.0)


@pytest.mark.parametrize(
    ("host", "path", "site_name", "verdict_host", "moved_to"),
    [
        (ACME, "/rest/api/3/myself", "acme", ACME, (GATEWAY, "/ex/jira/5c0bed00/rest/api/3/myself")),
        (
            "bot.atlassian.net",
            "/wiki/api/v2/pages",
            "bot",
            "bot.atlassian.net",
            (GATEWAY, "/ex/confluence/b0b0b0b0/wiki/api/v2/pages"),
        ),
        (GATEWAY, "/ex/jira/5c0bed00/rest/api/3/myself", "acme", GATEWAY, None),
        (GATEWAY, "/ex/confluence/b0b0b0b0/wiki/rest/api/space", "bot", GATEWAY, None),
        (
            GATEWAY,
            "/ex/jira/c1a551c0/rest/api/3/myself",
            "globex",
            "globex.atlassian.net",
            ("globex.atlassian.net", "/rest/api/3/myself"),
        ),
        (
            GATEWAY,
            "/ex/confluence/c1a551c0/rest/api/space?x=1",
            "globex",
            "globex.atlassian.net",
            ("globex.atlassian.net", "/wiki/rest/api/space?x=1"),
        ),
        ("globex.atlassian.net", "/rest/api/3/myself", "globex", "globex.atlassian.net", None),
    ],
)
def test_the_gateway_form_gets_the_credentials_of_the_site_that_owns_the_cloud_id(
    host, path, site_name, verdict_host, moved_to
):
    result = decided(host, path)
    assert result.decision is Decision.INJECT
    assert result.site is not None
    assert result.site.name == site_name
    assert result.host == verdict_host
    assert result.moved_to == moved_to


@pytest.mark.parametrize(
    ("host", "path"),
    [
        (GATEWAY, "/ex/jira/0dd00dd0/rest/api/3/myself"),
        (GATEWAY, "/ex/jira/c1a551c0/wiki/rest/api/content"),
        (GATEWAY, "/ex/jira/c1a551c0/../5c0bed00/rest"),
        (GATEWAY, "/oauth/token"),
        ("bot.atlassian.net", "/secure/Dashboard.jspa"),
    ],
)
def test_a_gateway_request_no_site_owns_is_passed_as_sent(host, path):
    assert decided(host, path).decision is Decision.PASS


def test_a_minted_site_without_a_cloud_id_never_sends_its_token_to_its_own_host():
    result = decided("bot.atlassian.net", "/rest/api/3/myself", policy=Policy(SiteTable.of([MINTED]), Gateway()))
    assert result.decision is Decision.PASS


def test_the_gateway_is_decrypted_only_when_a_site_has_a_cloud_id():
    assert should_intercept(gateway_policy(), GATEWAY, 443, GATEWAY)
    assert not should_intercept(Policy(TABLE, Gateway()), GATEWAY, 443, GATEWAY)


def test_a_read_only_classic_site_judges_its_gateway_form_on_the_gateways_paths():
    read_only = site("globex", "globex.atlassian.net", cloud_id="c1a551c0", read_only=True)
    gateway = Gateway()
    gateway.add(read_only, "c1a551c0")
    policy = Policy(SiteTable.of([read_only]), gateway)
    assert decided(GATEWAY, "/ex/jira/c1a551c0/rest/api/3/issue", "POST", policy).decision is Decision.READ_ONLY
    assert decided(GATEWAY, "/ex/jira/c1a551c0/rest/api/3/search", "POST", policy).decision is Decision.INJECT


def test_only_the_own_host_of_a_gateway_site_with_a_cloud_id_moves_every_request():
    policy = gateway_policy()
    assert moved_to_gateway(policy, "bot.atlassian.net", 443)
    assert moved_to_gateway(policy, "ACME.atlassian.net.", 443)
    assert not moved_to_gateway(policy, "globex.atlassian.net", 443), "a classic site stays where it is"
    assert not moved_to_gateway(policy, GATEWAY, 443)
    assert not moved_to_gateway(Policy(SiteTable.of([MINTED]), Gateway()), "bot.atlassian.net", 443)


@pytest.mark.parametrize("hosts", [("*.atlassian.net",), (ACME, "globex.atlassian.net")])
def test_only_the_tenants_own_host_goes_to_its_cloud_id_on_the_gateway(hosts):
    """Another host of a scoped site (a wildcard's, a second name) is another tenant: sending its requests under the
    site's cloudId would answer them with, and write them to, the wrong site's data."""
    several = Site("acme", tuple(HostPattern.parse(h) for h in hosts), "me@acme.example", scoped=True)
    gateway = Gateway()
    gateway.add(several, "5c0bed00", "ACME.atlassian.net")
    policy = Policy(SiteTable.of([several]), gateway)
    own = decided(ACME, "/rest/api/3/issue", "POST", policy)
    assert (own.decision, own.moved_to) == (Decision.INJECT, (GATEWAY, "/ex/jira/5c0bed00/rest/api/3/issue"))
    other = decided("globex.atlassian.net", "/rest/api/3/issue", "POST", policy)
    assert (other.decision, other.moved_to) == (Decision.PASS, None)
    assert moved_to_gateway(policy, ACME, 443)
    assert not moved_to_gateway(policy, "globex.atlassian.net", 443)

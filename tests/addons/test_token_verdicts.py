"""The answer to an injected credential: Set-Cookie removed, the token's verdict acted on, scope misses and
renamed sites logged once. addons/test_injector.py runs it beside the injector that sent the credential.

Then token verdicts by design (red-team findings 3, 8, 11), through the injector, the token verdicts and
`Outbound`, called directly with mitmproxy's test flows and a stand-in for the proxy's own requests:

- A rejection is the token's, not a host's: confirmed at the site's home when it has one, it pauses
  every host of the site; a host the home contradicts pauses alone.
- No answer to a client's request pauses by itself, a failed-login header included; a login of the
  client's own in the query is refused.
- The identity page follows the site's layout, and only its 2xx accepts the token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils
from pydantic import SecretStr

from proxy_addon.addons import injector as injector_module
from proxy_addon.addons.injector import CredentialInjector, WireSource
from proxy_addon.addons.token_verdicts import TokenVerdicts
from proxy_addon.credentials import outbound as outbound_module
from proxy_addon.credentials.http_client import Unreachable
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.layouts import Product, declared
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.scoped import Gateway
from proxy_addon.policy.sites import Scheme, Site, SiteTable
from proxy_addon.policy.token_health import FIRST_PAUSE, RECHECK_SECONDS, Scope, TokenHealth
from proxy_addon.policy.verdict import Policy

from support.prepared import prepared
from support.service_account import ServiceAccount

ACME = "acme.atlassian.net"
SITE = Site("acme", (HostPattern.parse("*.atlassian.net"),), "me@example.test")


def verdicts() -> TokenVerdicts:
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    credentials.adopt(SITE, Credentials.of(SITE.user, SecretStr("tok3n-for-verdicts"), "test"))
    configured = prepared([SITE])
    outbound = Outbound(health, credentials)
    outbound.use(configured.policy, configured.reach, outbound.timeout)
    addon = TokenVerdicts(outbound, credentials)
    addon.use(configured)
    return addon


def answered(addon: TokenVerdicts, status: int, decision: Decision = Decision.INJECT, **headers: str) -> http.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(host=ACME, port=443, scheme=b"https", path=b"/rest/api/3/issue/OPS-1"))
    record = FlowRecord.of(f.metadata)
    record.decision, record.site, record.host, record.stamp = decision, "acme", ACME, addon.outbound.health.stamp()
    fields = {name.replace("_", "-"): value for name, value in headers.items()}
    f.response = http.Response.make(status, b"{}", {"set-cookie": "cloud.session.token=x", **fields})
    addon.responseheaders(f)
    return f


def paused(addon: TokenVerdicts) -> bool:
    return addon.outbound.health.admit("acme", ACME, time.monotonic()) is not None


def test_a_rejection_the_identity_page_confirms_pauses_the_host_and_the_sites_session_never_reaches_the_client(own):
    own.status[(ACME, "/rest/api/3/myself")] = 401
    addon = verdicts()

    async def scenario() -> None:
        f = answered(addon, 401, x_seraph_loginreason="AUTHENTICATED_FAILED")
        assert "set-cookie" not in f.response.headers
        assert FlowRecord.of(f.metadata).auth_failed
        assert not paused(addon), "not before the identity page confirms it"
        await asyncio.gather(*addon.outbound._flights.values())
        assert paused(addon)

    asyncio.run(scenario())
    assert own.asked == [(ACME, "/rest/api/3/myself")]


def test_a_scope_miss_goes_to_the_client_keeps_the_token_and_is_logged_once(caplog):
    addon = verdicts()
    for _ in range(2):
        f = answered(addon, 401, x_failure_category="FAILURE_CLIENT_SCOPE_CHECK")
    assert not FlowRecord.of(f.metadata).auth_failed
    assert not paused(addon)
    assert caplog.text.count("lacks the scope for GET /rest/api/3/issue/OPS-1") == 1


def test_a_redirect_to_another_site_name_is_logged_once_as_a_rename(caplog):
    caplog.set_level(logging.WARNING)
    addon = verdicts()
    for _ in range(2):
        answered(addon, 301, location="https://new-acme.atlassian.net/browse/X-1")
    assert caplog.text.count(f"{ACME} redirects to new-acme.atlassian.net (HTTP 301)") == 1
    assert "already gets the credentials of site acme" in caplog.text


def test_an_answer_to_a_request_without_our_credential_is_left_alone():
    addon = verdicts()
    f = answered(addon, 401, Decision.PASS, x_seraph_loginreason="AUTHENTICATED_FAILED")
    assert "set-cookie" in f.response.headers
    assert not paused(addon)


ISSUE = "/rest/api/3/issue/OPS-1"
MYSELF = "/rest/api/3/myself"
SERAPH = {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"}
WILDCARD = Site("acme", (HostPattern.parse("*.atlassian.net"),), "me@example.test")
HOMED = Site("acme", (HostPattern.parse(ACME), HostPattern.parse("*.atlassian.net")), "me@example.test")
DC = Site(
    "dc",
    (HostPattern.parse("tracker.corp.example"),),
    "",
    scheme=Scheme.BEARER,
    layout=declared(Product.JIRA, "/jira"),
)


class OwnRequests:
    """Stands in for `http_client.fetch`: each identity page answers its status (default 200), or no answer."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.status: dict[tuple[str, str], int] = {}
        self.unreachable: set[str] = set()

    def __call__(self, host, port, path, credentials, reach):
        self.asked.append((host, path))
        if host in self.unreachable:
            raise Unreachable(f"cannot reach {host}: the connection was refused")
        return self.status.get((host, path), 200), {}, b"{}"


@pytest.fixture
def own(monkeypatch) -> OwnRequests:
    fake = OwnRequests()
    monkeypatch.setattr(outbound_module, "fetch", fake)
    return fake


class Proxy:
    """The injector, the token verdicts and the wire source over one site, as the root hands them out."""

    def __init__(self, site: Site, named_site: str | None = None) -> None:
        self.health = TokenHealth()
        self.credentials = CredentialRegistry(self.health)
        self.credentials.adopt(site, Credentials.of(site.user, SecretStr("tok3n-for-hook-tests"), "test", site.scheme))
        self.outbound = Outbound(self.health, self.credentials)
        configured = prepared([site], policy=Policy(SiteTable.of([site]), Gateway(), named_site=named_site))
        self.outbound.use(configured.policy, configured.reach, self.outbound.timeout)
        self.injector = CredentialInjector(self.health, self.outbound)
        self.injector.use(configured)
        self.verdicts = TokenVerdicts(self.outbound, self.credentials)
        self.verdicts.use(configured)
        self.wire = WireSource(self.health, self.credentials)
        self.sent: list[tuple[str, str]] = []
        """Every client request that went out with the credential: (host, path)."""

    async def request(
        self, host: str, path: str = ISSUE, status: int = 200, fields: Mapping[str, str] | None = None
    ) -> http.HTTPFlow:
        """One client request to `host`; if it goes out, the site answers `status` with `fields`."""
        f = flow(host, path)
        waiting = self.injector.requestheaders(f)
        if waiting is not None:
            await waiting
        if f.response is None and FlowRecord.of(f.metadata).decision is Decision.INJECT:
            self.wire(f)
            self.sent.append((host, path))
            f.response = http.Response.make(status, b"{}", dict(fields or {}))
            self.verdicts.responseheaders(f)
        return f

    async def settled(self) -> None:
        """Until every confirmation and check in the background has landed."""
        while flights := [task for task in self.outbound._flights.values() if not task.done()]:
            await asyncio.gather(*flights)

    def backdate(self, seconds: float) -> None:
        """Every pause began `seconds` earlier (the clock is the real monotonic one)."""
        for backoff in (*self.health.sites.values(), *self.health.hosts.values()):
            backoff.until -= seconds


def flow(host: str, path: str) -> http.HTTPFlow:
    request = tutils.treq(host=host, port=443, scheme=b"https", authority=b"", path=path.encode())
    request.headers.clear()
    request.headers["host"] = host
    f = tflow.tflow(req=request)
    f.client_conn.sni = host
    return f


def decision(f: http.HTTPFlow) -> Decision:
    return FlowRecord.of(f.metadata).decision


def run(proxy: Proxy, scenario) -> None:
    with taddons.context(proxy.injector):
        asyncio.run(scenario())


def run_bare(scenario) -> None:
    """Without mitmproxy's test master, whose log handler outlives the loop of one Hypothesis example."""
    asyncio.run(scenario())


# -- finding 3: a rejection is the token's --------------------------------------------------------------------


def test_a_confirmed_rejection_on_one_host_of_a_wildcard_site_pauses_every_host(own, caplog):
    """No home: the host's own identity page confirms, and the verdict holds for the whole site."""
    caplog.set_level(logging.INFO, "proxy_addon")
    proxy = Proxy(WILDCARD)
    own.status[("t0.atlassian.net", MYSELF)] = 401

    async def scenario() -> None:
        await proxy.request("t0.atlassian.net", status=401)
        await proxy.settled()
        for n in range(1, 20):
            assert decision(await proxy.request(f"t{n}.atlassian.net", status=401)) is Decision.BACKED_OFF

    run(proxy, scenario)
    assert proxy.sent == [("t0.atlassian.net", ISSUE)]
    assert own.asked == [("t0.atlassian.net", MYSELF)]
    assert caplog.text.count("rejected the API token of site acme") == 1
    assert "requests to every host of the site (*.atlassian.net)" in caplog.text


def test_a_rejection_on_a_wildcard_host_is_confirmed_at_the_home_and_the_check_goes_there_too(own):
    proxy = Proxy(HOMED)
    own.status[(ACME, MYSELF)] = 401

    async def scenario() -> None:
        await proxy.request("t0.atlassian.net", status=401)
        await proxy.settled()
        assert proxy.health.scope("acme", ACME) is Scope.SITE, "the home rejects it: the token is bad"
        assert decision(await proxy.request(ACME)) is Decision.BACKED_OFF
        proxy.backdate(FIRST_PAUSE)
        del own.status[(ACME, MYSELF)]  # a new day: the site accepts the token again
        assert decision(await proxy.request("t5.atlassian.net")) is Decision.INJECT

    run(proxy, scenario)
    assert own.asked == [(ACME, MYSELF), (ACME, MYSELF)], "the confirmation and the check, both at the home"
    assert proxy.sent == [("t0.atlassian.net", ISSUE), ("t5.atlassian.net", ISSUE)]


def test_a_host_that_refuses_a_token_the_home_accepts_pauses_alone_and_no_client_pauses_the_others(own, caplog):
    """Another tenant a client names under the wildcard may refuse even a valid token: it pauses alone."""
    proxy = Proxy(WILDCARD, named_site=ACME)

    async def scenario() -> None:
        await proxy.request("evil.atlassian.net", status=401, fields=SERAPH)
        await proxy.settled()
        assert decision(await proxy.request("evil.atlassian.net")) is Decision.BACKED_OFF
        assert decision(await proxy.request(ACME)) is Decision.INJECT
        assert decision(await proxy.request("t1.atlassian.net")) is Decision.INJECT
        proxy.backdate(FIRST_PAUSE)
        assert decision(await proxy.request("evil.atlassian.net")) is Decision.INJECT, "the home accepts it again"

    run(proxy, scenario)
    assert own.asked == [(ACME, MYSELF), (ACME, MYSELF)], "confirmed and checked at the home, never at evil"
    assert "rejected the API token" not in caplog.text
    assert (
        f"evil.atlassian.net refused the API token of site acme (X-Seraph-LoginReason AUTHENTICATED_FAILED to "
        f"GET {ISSUE}), which {ACME} accepts" in caplog.text
    )


def test_one_confirmation_runs_per_site_and_answers_every_401_waiting_for_it(own):
    proxy = Proxy(HOMED)
    own.status[(ACME, MYSELF)] = 401

    async def scenario() -> None:
        await asyncio.gather(*(proxy.request(f"t{n}.atlassian.net", status=401) for n in range(20)))
        await proxy.settled()
        assert decision(await proxy.request("t20.atlassian.net")) is Decision.BACKED_OFF

    run(proxy, scenario)
    assert len(proxy.sent) == 20, "all twenty were on their way before any answer came"
    assert own.asked == [(ACME, MYSELF)], "one confirmation, not twenty"


def test_the_hosts_a_client_names_leave_bounded_state(own):
    proxy = Proxy(WILDCARD, named_site=ACME)
    proxy.health.hosts_remembered = 5

    async def scenario() -> None:
        for n in range(12):
            await proxy.request(f"t{n}.atlassian.net", status=401)
            await proxy.settled()

    run(proxy, scenario)
    assert len(proxy.health.hosts) == 5
    assert not proxy.health.sites
    assert len(proxy.outbound._waiting["acme"]) == 0


# -- finding 11: no client's answer pauses by itself -----------------------------------------------------------


def test_a_failed_login_header_on_a_clients_answer_is_confirmed_before_anything_pauses(own, caplog):
    proxy = Proxy(DC)

    async def scenario() -> None:
        first = await proxy.request("tracker.corp.example", "/jira/rest/api/2/issue/OPS-1", 401, SERAPH)
        assert first.response is not None
        assert first.response.status_code == 401, "the client gets the site's own answer"
        await proxy.settled()
        assert decision(await proxy.request("tracker.corp.example", "/jira/rest/api/2/issue/OPS-2")) is Decision.INJECT

    run(proxy, scenario)
    assert own.asked == [("tracker.corp.example", "/jira/rest/api/2/myself")]
    assert not proxy.health.backing_off
    assert "the token stays in use" in caplog.text


@pytest.mark.parametrize(
    ("path", "confirmations"),
    [("/jira/rest/api/2/myself", 0), ("/jira/rest/api/2/myself?expand=groups", 1)],
    ids=["exactly-the-page", "with-a-query"],
)
def test_only_the_identity_page_asked_as_the_proxy_asks_it_is_its_own_confirmation(own, path, confirmations):
    proxy = Proxy(DC)
    own.status[("tracker.corp.example", "/jira/rest/api/2/myself")] = 401

    async def scenario() -> None:
        await proxy.request("tracker.corp.example", path, 401, SERAPH)
        await proxy.settled()

    run(proxy, scenario)
    assert len(own.asked) == confirmations
    assert proxy.health.scope("dc", "tracker.corp.example") is Scope.SITE


@pytest.mark.parametrize(
    "query",
    ["os_username=nobody&os_password=x", "OS_PASSWORD=x", "expand=x&os%5FauthType=basic", "Os_Cookie=1"],
)
def test_a_login_of_the_clients_own_in_the_query_is_refused_before_anything_is_sent(own, query):
    proxy = Proxy(DC)

    async def scenario() -> None:
        f = await proxy.request("tracker.corp.example", f"/jira/rest/api/2/myself?{query}")
        assert f.response is not None
        assert f.response.status_code == 400
        assert b"a login of the client's own" in f.response.content
        assert decision(f) is Decision.QUERY_LOGIN

    run(proxy, scenario)
    assert proxy.sent == []


# -- finding 8: the identity page of the site's layout, and only its 2xx accepts -----------------------------


@pytest.mark.parametrize("answer", [404, 302, 500, "unreachable"])
def test_an_identity_page_that_tells_nothing_leaves_a_401_unconfirmed_and_a_check_keeps_the_pause(own, caplog, answer):
    proxy = Proxy(DC)
    page = ("tracker.corp.example", "/jira/rest/api/2/myself")
    if answer == "unreachable":
        own.unreachable.add(page[0])
    else:
        own.status[page] = answer

    async def scenario() -> None:
        await proxy.request("tracker.corp.example", "/jira/rest/api/2/issue/OPS-1", 401)
        await proxy.settled()
        assert proxy.health.scope("dc", page[0]) is Scope.SITE, "unconfirmed, the 401 counts as a rejection"
        proxy.backdate(FIRST_PAUSE)
        f = await proxy.request(page[0], "/jira/rest/api/2/issue/OPS-1")
        assert decision(f) is Decision.BACKED_OFF
        assert f.response.headers["retry-after"] == str(round(RECHECK_SECONDS)), "kept a short while, not doubled"
        assert proxy.health.pause("dc", page[0]) == FIRST_PAUSE

    run(proxy, scenario)
    assert own.asked == [page, page]
    assert "could not check the API token of site dc" in caplog.text


# -- properties: whatever hosts and answers clients choose -----------------------------------------------------

HOSTS = [ACME, *(f"t{n}.atlassian.net" for n in range(8))]
AGAINST = [(401, {}), (401, SERAPH), (200, SERAPH), (403, {"X-Seraph-LoginReason": "AUTHENTICATION_DENIED"})]
"""What a site may answer a revoked token: never a plain success."""
NO_VERDICT = [401, 404, 302, 500, "unreachable", "seraph"]
"""What an identity page a client chose may answer a revoked token."""
STEPS = st.lists(
    st.tuples(st.sampled_from(HOSTS), st.sampled_from(AGAINST), st.sampled_from([0.0, 1.0, 5.0, 30.0, 61.0, 300.0])),
    max_size=25,
)
LAYOUTS = st.sampled_from([(WILDCARD, None), (HOMED, None), (WILDCARD, ACME)])


class Clock:
    """The monotonic clock of the injector and `Outbound`, moved by the test alone."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now


@contextmanager
def clocked(fetch: object) -> Iterator[Clock]:
    """The proxy's own requests answered by `fetch`, and time moving only when the test says."""
    clock = Clock()
    with (
        mock.patch.object(outbound_module, "fetch", fetch),
        mock.patch.object(outbound_module, "time", clock),
        mock.patch.object(injector_module, "time", clock),
    ):
        yield clock


class Pages:
    """The identity pages of a revoked token: the home's rejects it; every other answers what a client chose."""

    def __init__(self, home: str | None, answers: dict[str, object], clock: Clock | None = None) -> None:
        self.home, self.answers = home, answers
        self.clock = clock
        self.asked: list[float] = []

    def __call__(self, host, port, path, credentials, reach):
        self.asked.append(self.clock.now if self.clock else 0.0)
        answer = 401 if host == self.home else self.answers.get(host, 401)
        if answer == "unreachable":
            raise Unreachable(f"cannot reach {host}: the connection was refused")
        if answer == "seraph":
            return 200, {"x-seraph-loginreason": "AUTHENTICATED_FAILED"}, b"{}"
        return answer, {}, b"{}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layout=LAYOUTS, steps=STEPS, answers=st.dictionaries(st.sampled_from(HOSTS), st.sampled_from(NO_VERDICT)))
def test_no_sequence_of_hosts_and_answers_sends_a_revoked_token_more_than_once_per_pause(layout, steps, answers):
    """The revoked token reaches a client-chosen host once; then only the proxy's own requests carry it: the
    confirmation, and one check each time a pause (at least RECHECK_SECONDS) is over."""
    site, named_site = layout
    home = ACME if site is HOMED or named_site else None
    pages = Pages(home, answers)
    proxy = Proxy(site, named_site)

    async def scenario() -> None:
        for host, (status, fields), elapsed in steps:
            clock.now += elapsed
            await proxy.request(host, status=status, fields=fields)
            await proxy.settled()

    with clocked(pages) as clock:
        pages.clock = clock
        run_bare(scenario)
    assert len(proxy.sent) <= 1, proxy.sent
    confirmation, *checks = pages.asked or [0.0]
    spacing = [later - earlier for earlier, later in zip([confirmation, *checks], checks, strict=False)]
    assert all(gap >= RECHECK_SECONDS for gap in spacing), pages.asked


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(named=st.booleans(), steps=STEPS)
def test_with_a_home_that_accepts_the_token_no_client_pauses_it_for_the_others(named, steps):
    """Whatever hosts clients name and whatever those hosts answer, the home keeps serving, and the hosts
    paused alone stay within their bound."""
    site, named_site = (WILDCARD, ACME) if named else (HOMED, None)
    proxy = Proxy(site, named_site)
    proxy.health.hosts_remembered = 3
    pages = Pages(None, dict.fromkeys(HOSTS, 200))

    async def scenario() -> None:
        for host, (status, fields), elapsed in steps:
            clock.now += elapsed
            await proxy.request(host, status=status, fields=fields)
            await proxy.settled()
            assert proxy.health.admit("acme", ACME, clock.now) is None
            assert not proxy.health.sites
            assert len(proxy.health.hosts) <= 3

    with clocked(pages) as clock:
        run_bare(scenario)


# -- service accounts: a gateway 401 mints a new access token; a GET or HEAD goes again with it ----------------


def test_a_get_refused_by_the_gateway_is_sent_again_with_a_new_token_and_its_answer_replaces_the_401(monkeypatch):
    bot = ServiceAccount(monkeypatch)

    async def scenario() -> http.HTTPFlow:
        f, credential = await bot.decide()
        assert credential == "Bearer minted-1"
        return await bot.answered(f, 401)

    f = bot.run(scenario)
    assert bot.endpoint.calls == 2
    assert f.response is not None
    assert f.response.status_code == 200
    assert f.response.content == b'{"sent": "again", "path": "/ex/jira/b0b0c0de/rest/api/3/issue/OPS-1"}'
    assert f.response.headers["content-length"] == str(len(f.response.content))
    assert "set-cookie" not in f.response.headers
    assert "connection" not in f.response.headers
    ((host, method, path, headers),) = bot.gateway.sent
    assert (host, method, path) == ("api.atlassian.com", "GET", "/ex/jira/b0b0c0de/rest/api/3/issue/OPS-1")
    assert headers == [("accept", "application/json"), ("Authorization", "Bearer minted-2")]
    record = FlowRecord.of(f.metadata)
    assert not record.auth_failed
    assert not record.replay
    assert not bot.health.backing_off, "a minted token's 401 never pauses"
    assert f.request.headers["authorization"] != "Bearer minted-2", "the flow never holds a token"


def test_a_head_is_sent_again_too_and_keeps_its_answers_length(monkeypatch):
    bot = ServiceAccount(monkeypatch)

    async def scenario() -> http.HTTPFlow:
        f, _ = await bot.decide("HEAD")
        return await bot.answered(f, 401)

    f = bot.run(scenario)
    assert f.response is not None
    assert (f.response.status_code, f.response.content) == (200, b"")
    assert "content-length" not in f.response.headers


def test_a_post_refused_by_the_gateway_keeps_its_401_and_a_new_token_is_minted(monkeypatch):
    bot = ServiceAccount(monkeypatch)

    async def scenario() -> http.HTTPFlow:
        f, _ = await bot.decide("POST", path="/rest/api/3/issue")
        return await bot.refused(f)

    f = bot.run(scenario)
    assert f.response is not None
    assert f.response.status_code == 401
    assert FlowRecord.of(f.metadata).auth_failed
    assert bot.endpoint.calls == 2
    assert bot.gateway.sent == []
    assert bot.credentials["bot"].authorization.get_secret_value() == "Bearer minted-2"


@pytest.mark.parametrize(
    ("path", "override"),
    [
        ("/rest/api/3/issue/OPS-1", {"X-HTTP-Method-Override": "DELETE"}),
        ("/rest/api/3/issue/OPS-1", {"X-Method-Override": "PUT"}),
        ("/rest/api/3/issue/OPS-1?_method=DELETE", {}),
        ("/rest/api/3/issue/OPS-1?%5Fmethod=DELETE", {}),
    ],
)
def test_a_get_a_method_override_may_make_a_write_keeps_its_401_and_is_not_sent_again(monkeypatch, path, override):
    bot = ServiceAccount(monkeypatch)

    async def scenario() -> http.HTTPFlow:
        f, _ = await bot.decide(path=path)
        f.request.headers.update(override)
        return await bot.refused(f)

    f = bot.run(scenario)
    assert f.response is not None
    assert f.response.status_code == 401
    assert bot.gateway.sent == [], "a write is never sent twice, whatever its request line says"
    assert bot.endpoint.calls == 2, "the new token is minted all the same"


def test_two_gets_refused_together_mint_once_and_both_go_again(monkeypatch):
    bot = ServiceAccount(monkeypatch)

    async def scenario() -> list[http.HTTPFlow]:
        first, _ = await bot.decide(path="/rest/api/3/issue/OPS-1")
        second, _ = await bot.decide(path="/rest/api/3/issue/OPS-2")
        return list(await asyncio.gather(bot.answered(first, 401), bot.answered(second, 401)))

    flows = bot.run(scenario)
    assert bot.endpoint.calls == 2
    assert [f.response.status_code for f in flows if f.response is not None] == [200, 200]


def test_a_scope_miss_or_a_success_from_the_gateway_mints_nothing(monkeypatch):
    bot = ServiceAccount(monkeypatch)

    async def scenario() -> None:
        for status, fields in ((401, {"X-Failure-Category": "FAILURE_CLIENT_SCOPE_CHECK"}), (200, {})):
            f, _ = await bot.decide()
            await bot.answered(f, status, fields)
            assert f.response is not None
            assert f.response.status_code == status

    bot.run(scenario)
    assert bot.endpoint.calls == 1
    assert bot.gateway.sent == []

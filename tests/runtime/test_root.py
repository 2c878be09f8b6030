"""The root addon: its chain is the documented hook order, settings reach its children through `use` only,
and `[[clients]]` apply in that chain, each client's login naming it and its bounds and rate applying to it alone.

The clients' tests run through mitmproxy's own dispatch (`AddonManager`) on the root addon's real
children, so the order in which the login, the rate limit, the verdict and the fail-closed check
run is the one `run` uses.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from mitmproxy import http
from mitmproxy.proxy.layers.http import HttpConnectHook, HttpRequestHeadersHook
from mitmproxy.test import taddons, tflow, tutils
from prometheus_client import generate_latest

from proxy_addon.addons.prepared import DEFAULTS
from proxy_addon.addons.request_log import describe
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.sites import Site
from proxy_addon.runtime import root as root_module
from proxy_addon.runtime.root import HOOK_ORDER, AtlassianAuthProxy
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.model import Settings

from support.prepared import prepared
from support.proxy import REPO, basic

ACME, GLOBEX = "acme.atlassian.net", "globex.atlassian.net"
SITES = [
    Site("acme", (HostPattern.parse(ACME),), "a@example.test"),
    Site("globex", (HostPattern.parse(GLOBEX),), "g@x.test"),
]
TOKEN = "tok3n-for-client-hook-tests"
CLIENTS = ClientTable.of(
    [
        Client("agent-a", ProxyLogin.of("agent-a", "pw-a"), sites=frozenset({"acme"})),
        Client("agent-b", ProxyLogin.of("agent-b", "pw-b"), read_only=True),
        Client("agent-c", ProxyLogin.of("agent-c", "pw-c"), requests_per_minute=2),
    ]
)


def root_with_clients() -> AtlassianAuthProxy:
    """The root addon as `configure` leaves it with these sites and `[[clients]]`."""
    root = AtlassianAuthProxy()
    root.apply(prepared(SITES, TOKEN, clients=CLIENTS))
    return root


def request(host: str = ACME, method: str = "GET", login: str | None = None) -> http.HTTPFlow:
    """A plain-text `https://` request from loopback (a plain hop), carrying `login` as Proxy-Authorization."""
    req = tutils.treq(host=host, port=443, scheme=b"https", authority=b"", method=method.encode(), path=b"/rest/x")
    req.headers.clear()
    req.headers["host"] = host
    if login is not None:
        req.headers["proxy-authorization"] = basic(*login.split(":"))
    f = tflow.tflow(req=req)
    f.client_conn.tls = False
    f.client_conn.sni = None
    f.client_conn.peername = ("127.0.0.1", 50000)
    return f


LOOP = asyncio.new_event_loop()
"""One loop for every test: mitmproxy's log handler outlives a test master and needs its loop open."""


def through(root: AtlassianAuthProxy, *flows: http.HTTPFlow) -> None:
    """Each flow's CONNECT or request-headers hook, in order, on one master."""

    async def dispatch() -> None:
        with taddons.context() as tctx:
            tctx.master.addons.add(root)
            for f in flows:
                hook = HttpConnectHook(f) if f.request.method == "CONNECT" else HttpRequestHeadersHook(f)
                await tctx.master.addons.handle_lifecycle(hook)

    LOOP.run_until_complete(dispatch())


def sent_with_credentials(root: AtlassianAuthProxy, f: http.HTTPFlow) -> bool:
    """Would the copy of the request the wire gets carry the site's credentials? (see addons/wire.py)"""
    return f.response is None and (root.wire_source(f) or "").startswith("Basic ")


def test_each_client_gets_its_own_bounds_in_one_chain():
    root = root_with_clients()
    flows = {
        "a-acme": request(ACME, "POST", "agent-a:pw-a"),
        "a-globex": request(GLOBEX, "GET", "agent-a:pw-a"),
        "b-globex-read": request(GLOBEX, "GET", "agent-b:pw-b"),
        "b-acme-write": request(ACME, "POST", "agent-b:pw-b"),
        "b-with-a-password": request(ACME, "GET", "agent-b:pw-a"),
        "nobody": request(ACME, "GET"),
    }
    through(root, *flows.values())
    outcome = {
        name: (FlowRecord.of(f.metadata).decision, f.response and f.response.status_code) for name, f in flows.items()
    }
    assert outcome == {
        "a-acme": (Decision.INJECT, None),
        "a-globex": (Decision.CLIENT_SITE, 403),
        "b-globex-read": (Decision.INJECT, None),
        "b-acme-write": (Decision.CLIENT_READ_ONLY, 403),
        "b-with-a-password": (Decision.PROXY_AUTH, 407),
        "nobody": (Decision.PROXY_AUTH, 407),
    }
    assert [sent_with_credentials(root, f) for f in flows.values()] == [True, False, True, False, False, False]
    assert b"client agent-a may not use site globex: its sites are acme" in flows["a-globex"].response.content
    assert FlowRecord.of(flows["b-acme-write"].metadata).user == "agent-b"


def test_past_its_rate_a_client_gets_429_with_retry_after_and_others_go_on():
    root = root_with_clients()
    mine = [request(ACME, "GET", "agent-c:pw-c") for _ in range(3)]
    other = request(ACME, "GET", "agent-a:pw-a")
    through(root, *mine, other)
    assert [f.response is None for f in mine] == [True, True, False]
    refused = mine[2].response
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert b"client agent-c is past its limit of 2 requests per minute" in refused.content
    assert FlowRecord.of(mine[2].metadata).decision is Decision.RATE_LIMITED
    assert "authorization" not in mine[2].request.headers, "nothing of ours was added"
    assert sent_with_credentials(root, other)


def test_requests_inside_a_tunnel_count_the_connect_does_not():
    root = root_with_clients()
    connect = request(ACME, "CONNECT", "agent-c:pw-c")
    inside = [request(ACME, "GET") for _ in range(3)]
    for f in inside:
        f.client_conn = connect.client_conn
        f.client_conn.tls = True
        f.client_conn.sni = ACME
    through(root, connect, *inside)
    assert connect.response is None
    assert [FlowRecord.of(f.metadata).decision for f in inside] == [
        Decision.INJECT,
        Decision.INJECT,
        Decision.RATE_LIMITED,
    ]


def test_metrics_label_each_request_with_its_client_and_none_without_a_login():
    root = root_with_clients()
    flows = [request(ACME, "GET", "agent-a:pw-a"), request(GLOBEX, "GET", "agent-a:pw-a"), request(ACME, "GET")]
    through(root, *flows)
    for f in flows:
        f.response = f.response or http.Response.make(200)
        root.metrics.response(f)
    exposition = generate_latest(root.metrics.registry).decode()
    assert 'client="agent-a",decision="injected",site="acme",status_class="2xx"} 1.0' in exposition
    assert 'client="agent-a",decision="refused",site="globex",status_class="4xx"} 1.0' in exposition
    assert 'client="none",decision="refused",site="other",status_class="4xx"} 1.0' in exposition
    assert "pw-a" not in exposition


def test_a_tunnel_nobody_decrypts_is_counted_for_the_client_whose_connect_opened_it():
    root = root_with_clients()
    connect = request("example.test", "CONNECT", "agent-b:pw-b")
    through(root, connect)
    hello = SimpleNamespace(ignore_connection=True, context=SimpleNamespace(client=connect.client_conn))
    root.metrics.tls_clienthello(hello)  # the two fields the hook reads of a ClientHelloData
    exposition = generate_latest(root.metrics.registry).decode()
    assert 'client="agent-b",decision="tunnelled",site="other",status_class="none"} 1.0' in exposition


def test_the_text_log_names_the_client():
    f = request(GLOBEX, "GET", "agent-a:pw-a")
    through(root_with_clients(), f)
    assert describe(f).endswith("user=agent-a credentials=refused-client-site")


def test_the_root_addon_reports_missing_credentials():
    proxy = AtlassianAuthProxy()
    with taddons.context(proxy):
        assert proxy.readiness.problem() == "no credentials loaded"


# The chain as docs/architecture.md lists it, and how settings reach the children: through `use` only.

DOC = REPO / "docs" / "architecture.md"
ROW = re.compile(r"\| (\d+) \| `(\w+)` \| `([\w.]+)` \| (.+) \|")


def documented_order() -> list[tuple[str, str, str]]:
    section = DOC.read_text().partition("## The hook order")[2].partition("\n## ")[0]
    rows = [ROW.fullmatch(line) for line in section.splitlines() if line.startswith("| ")]
    found = [row for row in rows if row is not None]
    assert [int(row[1]) for row in found] == list(range(1, len(found) + 1)), "numbered 1, 2, 3, ..."
    return [(row[2], row[3], row[4]) for row in found]


def test_the_document_lists_exactly_the_chain_in_the_codes_order():
    code = [(link.addon.__name__, link.addon.__module__.removeprefix("proxy_addon."), link.role) for link in HOOK_ORDER]
    assert documented_order() == code


def test_the_root_chains_one_child_of_each_class_in_that_order():
    root = AtlassianAuthProxy()
    assert [type(child) for child in root.children] == [link.addon for link in HOOK_ORDER]


@pytest.fixture
def settings(monkeypatch, tmp_path) -> Settings:
    for name in list(os.environ):
        if name.startswith("ATLASSIAN_PROXY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return load_settings(
        None,
        email="me@example.test",
        api_token="tok3n-for-hook-tests",
        upstream_timeout=7,
        client_timeout=9,
        log_format="json",
        proxy_auth="ci:Pr0xy-pa55word-9f3e",
    )


def test_each_child_holds_the_models_defaults_until_configure_hands_it_the_settings(settings):
    root = AtlassianAuthProxy(settings)
    before = (root.faults.timeout, root.client_limits.head_timeout, root.outbound.timeout)
    assert before == (DEFAULTS.upstream_timeout, DEFAULTS.client_timeout, DEFAULTS.upstream_timeout)
    with taddons.context(root) as tctx:
        tctx.configure(root, atlassian_proxy_config=None)
        assert (root.faults.timeout, root.client_limits.head_timeout, root.outbound.timeout) == (7, 9, 7)
        assert root.request_log.json
        assert root.fail_closed.login_required
        assert root.safe_options.proxy_auth
        assert root.proxy_auth.login == settings.proxy_login
        assert root.readiness.problem() is None, "the credentials are loaded"


def test_the_root_writes_into_no_child():
    """Settings reach a child through its `use` only: no `self.<child>.<name> = ...` in the root."""
    tree = ast.parse(Path(root_module.__file__).read_text())
    written = [
        ast.unparse(target)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute)
    ]
    assert written == []


def test_the_gateway_knows_every_configured_cloud_id_and_looks_up_the_rest(monkeypatch):
    from mitmproxy.exceptions import OptionsError

    from proxy_addon.credentials.http_client import Reach
    from proxy_addon.policy.sites import Scheme

    looked_up: list[str] = []

    def cloud_id(host: str, reach: Reach) -> str:
        looked_up.append(host)
        return f"c0{len(looked_up)}"

    monkeypatch.setattr(root_module, "cloud_id", cloud_id)

    def one(name: str, host: str, **options) -> Site:
        return Site(name, (HostPattern.parse(host),), "me@example.test", **options)

    plain = one("plain", "plain.atlassian.net")
    classic = one("classic", "classic.atlassian.net", cloud_id="0c1a")
    scoped = one("scoped", "scoped.atlassian.net", scoped=True)
    bot = one("bot", "bot.atlassian.net", scheme=Scheme.CLIENT_CREDENTIALS, cloud_id="b07")
    resolved = tuple(entry for entry in prepared([plain, classic, scoped, bot]).resolved)
    gateway = root_module.known_gateway(resolved, Settings(), Reach())
    assert looked_up == ["scoped.atlassian.net"], "only a scoped or minted site without cloud_id is looked up"
    assert {name: (t.cloud_id, t.host) for name, t in gateway.tenants.items()} == {
        "classic": ("0c1a", "classic.atlassian.net"),
        "scoped": ("c01", "scoped.atlassian.net"),
        "bot": ("b07", "bot.atlassian.net"),
    }
    looked_up.clear()
    both = tuple(prepared([scoped, one("twin", "twin.atlassian.net", cloud_id="c01")]).resolved)
    with pytest.raises(OptionsError, match="sites scoped and twin are both cloudId c01"):
        root_module.known_gateway(both, Settings(), Reach())


def test_a_bitbucket_site_whose_user_is_no_email_gets_one_warning_naming_it():
    sites = [
        Site("bb-api", (HostPattern.parse("api.bitbucket.org"),), "acme-user"),
        Site("bb-git", (HostPattern.parse("bitbucket.org"),), "x-bitbucket-api-token-auth"),
        Site(
            "bb-ok",
            (
                HostPattern.parse(
                    "api.bitbucket.org",
                ),
            ),
            "me@acme.example",
        ),
    ]
    warnings = root_module.start_warnings(tuple(prepared(sites[:2]).resolved)) + root_module.start_warnings(
        tuple(prepared(sites[2:]).resolved)
    )
    assert len(warnings) == 1
    assert warnings[0].startswith("site bb-api: its email 'acme-user' has no @")
    assert "removed app passwords on 2026-07-28" in warnings[0]

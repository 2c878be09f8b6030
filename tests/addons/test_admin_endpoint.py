"""Readiness and the admin endpoint's answers, from the state the hooks keep (the e2e tests ask a real proxy)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from proxy_addon.addons.admin_endpoint import AdminEndpoint, Readiness
from proxy_addon.addons.metrics import Metrics
from proxy_addon.credentials.minted import Mints
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import Scope, TokenHealth

from support.prepared import prepared, resolved
from support.proxy import EMAIL, TOKEN_192


def test_a_credential_problem_makes_healthz_503_with_its_reason():
    """The hook the rejected-token back-off plugs into: any reason of Readiness is a 503."""
    reason: list[str | None] = [None]
    admin = AdminEndpoint(SimpleNamespace(problem=lambda: reason[0], paused=tuple), Metrics().registry)
    admin._listening = lambda: True  # type: ignore[method-assign]
    status, content_type, body = admin.reply("GET", "/healthz")
    assert (status, content_type, body) == (200, "application/json", b'{"status": "ok"}\n')
    reason[0] = "the site rejected the token; retrying in 60 s"
    status, _, body = admin.reply("GET", "/healthz")
    assert status == 503
    assert body == b'{"status": "unavailable", "reason": "the site rejected the token; retrying in 60 s"}\n'


def test_a_paused_host_no_setting_names_is_reported_but_leaves_healthz_ready_and_livez_follows_listening():
    paused: list[str] = ["x.atlassian.net"]
    admin = AdminEndpoint(SimpleNamespace(problem=lambda: None, paused=lambda: tuple(paused)), Metrics().registry)
    listening = [True]
    admin._listening = lambda: listening[0]  # type: ignore[method-assign]
    assert admin.reply("GET", "/healthz") == (
        200,
        "application/json",
        b'{"status": "ok", "paused": ["x.atlassian.net"]}\n',
    )
    assert admin.reply("GET", "/livez") == (200, "application/json", b'{"status": "ok"}\n')
    listening[0] = False
    assert admin.reply("GET", "/livez")[0] == 503
    assert admin.reply("GET", "/healthz")[0] == 503


def test_readiness_counts_a_paused_host_only_where_the_settings_name_it():
    """/healthz's reason, from the credentials registry and token health the root hands it."""
    named = Site("acme", (HostPattern.parse("acme.atlassian.net"), HostPattern.parse("*.atlassian.net")), EMAIL)
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    readiness = Readiness(credentials, health, Mints(health, credentials))
    readiness.use(prepared([named], TOKEN_192))
    assert readiness.problem() == "no credentials loaded"
    credentials.adopt(named, resolved(named, TOKEN_192).credentials)
    assert (readiness.problem(), readiness.paused()) == (None, ())
    now = time.monotonic()
    health.judge("acme", "other.atlassian.net", health.stamp(), "HTTP 401", now, Scope.HOST)
    assert (readiness.problem(), readiness.paused()) == (None, ("other.atlassian.net",)), "a host paused alone"
    health.judge("acme", "other.atlassian.net", health.stamp(), "HTTP 401", now)
    assert readiness.problem() == (
        "acme.atlassian.net rejected the API token; requests are answered locally until it is replaced"
    ), "the site's pause, seen on another host, pauses the named one too"
    assert readiness.paused() == ("other.atlassian.net",)


def test_readiness_lists_the_pause_of_a_site_of_wildcards_only_but_stays_ready():
    wildcard = Site("acme", (HostPattern.parse("*.atlassian.net"),), EMAIL)
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    readiness = Readiness(credentials, health, Mints(health, credentials))
    readiness.use(prepared([wildcard], TOKEN_192))
    credentials.adopt(wildcard, resolved(wildcard, TOKEN_192).credentials)
    health.judge("acme", "t3.atlassian.net", health.stamp(), "HTTP 401", time.monotonic())
    assert (readiness.problem(), readiness.paused()) == (None, ("t3.atlassian.net",))


def test_rejected_client_credentials_make_healthz_503_naming_the_site():
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    mints = Mints(health, credentials)
    readiness = Readiness(credentials, health, mints)
    bot = Site("bot", (HostPattern.parse("bot.atlassian.net"),), "")
    credentials.register(bot)
    assert readiness.problem() is None
    mints._mints["bot"] = SimpleNamespace(rejected="HTTP 401 invalid_client")  # type: ignore[assignment]
    assert readiness.problem() == (
        "auth.atlassian.com rejected the client credentials of site bot; requests are answered locally until they "
        "are replaced"
    )

"""The answer to an injected credential: Set-Cookie removed, the token's verdict acted on, scope misses and
renamed sites logged once. addons/test_injector.py runs it beside the injector that sent the credential."""

from __future__ import annotations

import logging
import time

from mitmproxy import http
from mitmproxy.test import tflow, tutils
from pydantic import SecretStr

from proxy_addon.addons.token_verdicts import TokenVerdicts
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.sites import Site
from proxy_addon.policy.token_health import TokenHealth

from support.prepared import prepared

ACME = "acme.atlassian.net"
SITE = Site("acme", (HostPattern.parse("*.atlassian.net"),), "me@example.test")


def verdicts() -> TokenVerdicts:
    health = TokenHealth()
    credentials = CredentialRegistry(health)
    credentials.adopt(SITE, Credentials.of(SITE.user, SecretStr("tok3n-for-verdicts"), "test"))
    addon = TokenVerdicts(Outbound(health, credentials), credentials)
    addon.use(prepared([SITE]))
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


def test_a_rejection_pauses_the_host_and_the_sites_session_never_reaches_the_client():
    addon = verdicts()
    f = answered(addon, 401, x_seraph_loginreason="AUTHENTICATED_FAILED")
    assert "set-cookie" not in f.response.headers
    assert FlowRecord.of(f.metadata).auth_failed
    assert paused(addon)


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

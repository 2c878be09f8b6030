"""A request a boundary holds for its body never leaves before its verdict (issue 20 #4), at the hooks:
SafeOptions refuses a `stream_large_bodies` below what the boundaries read, and the boundary marks
the flow `held` while it waits for the body, which the wire layer reads (tests/test_held_bodies.py
proves both end to end under mitmdump)."""

from __future__ import annotations

import json

import pytest
from mitmproxy import exceptions, http
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.test import taddons, tflow, tutils
from mitmproxy.utils import human
from pydantic import SecretStr

from proxy_addon.addons.boundaries import Boundaries
from proxy_addon.addons.prepared import Prepared
from proxy_addon.addons.safe_options import STREAM_LARGE_BODIES, SafeOptions
from proxy_addon.credentials.outbound import Outbound
from proxy_addon.credentials.registry import CredentialRegistry
from proxy_addon.credentials.sources import Credentials
from proxy_addon.policy.boundaries.body import MAX_BODY
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.options import streaming_problem
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.token_health import TokenHealth

CREDENTIALS = Credentials.of("me@example.test", SecretStr("tok3n-for-hook-tests"), "test")
OPS_AGENT = Client("ops-agent", ProxyLogin.of("ops-agent", "Pr0xy-pa55word-9f3e"), jira_projects=frozenset({"OPS"}))


def judged(method: str, path: str, body: bytes = b"") -> http.HTTPFlow:
    """A credentialed request of the bounded client ops-agent, as the injector leaves it."""
    headers = ((b"host", b"acme.atlassian.net"), (b"content-length", str(len(body)).encode()))
    request = tutils.treq(
        method=method.encode(), host="acme.atlassian.net", port=443, scheme=b"https", authority=b"",
        path=path.encode(), headers=headers, content=body,
    )  # fmt: skip
    f = tflow.tflow(req=request)
    record = FlowRecord.of(f.metadata)
    record.decision, record.user, record.site = Decision.INJECT, "ops-agent", "acme"
    return f


@pytest.mark.parametrize("setting", ["16k", "0", "1023k", str(MAX_BODY - 1)])
def test_stream_large_bodies_below_the_judged_limit_is_refused(setting):
    options = SafeOptions()
    refused = pytest.raises(exceptions.OptionsError, match=f"stream_large_bodies={setting} would send")
    with taddons.context(Proxyserver(), options) as tctx, refused:
        tctx.configure(options, stream_large_bodies=setting)


@pytest.mark.parametrize("setting", ["1m", "2m", str(MAX_BODY), None])
def test_stream_large_bodies_at_or_above_the_limit_or_unset_is_kept_or_defaulted(setting):
    options = SafeOptions()
    with taddons.context(Proxyserver(), options) as tctx:
        tctx.configure(options, stream_large_bodies=setting)
        assert tctx.options.stream_large_bodies == (setting or STREAM_LARGE_BODIES)


def test_the_default_streams_only_bodies_no_boundary_reads():
    assert human.parse_size(STREAM_LARGE_BODIES) >= MAX_BODY
    assert streaming_problem(STREAM_LARGE_BODIES, human.parse_size(STREAM_LARGE_BODIES)) is None


def test_a_body_judged_request_is_held_from_its_head_until_the_request_hook_judged_it():
    health = TokenHealth()
    boundaries = Boundaries(Outbound(health, CredentialRegistry(health)))
    boundaries.use(Prepared(clients=ClientTable.of([OPS_AGENT])))
    with taddons.context():
        f = judged("POST", "/rest/api/3/search/jql", json.dumps({"jql": "project = SEC"}).encode())
        f.request.stream = True
        boundaries.requestheaders(f)
        assert FlowRecord.of(f.metadata).held
        assert f.request.stream is False
        boundaries.request(f)
        assert not FlowRecord.of(f.metadata).held, "judged: the wire may send it"
        unjudged = judged("GET", "/rest/api/3/issue/OPS-1")
        boundaries.requestheaders(unjudged)
        assert not FlowRecord.of(unjudged.metadata).held, "a request judged by its head is never held"

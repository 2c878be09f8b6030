"""Credentials ride only the methods Atlassian's APIs use (red team #9), at the injector's hook: the method as
the client sent it, not as mitmproxy reports it (upper-cased)."""

from __future__ import annotations

import pytest
from mitmproxy.test import taddons

from proxy_addon.addons.injector import REDACTED
from proxy_addon.policy.record import Decision, FlowRecord

from support.decided import ACME, Decided


@pytest.mark.parametrize("method", [b"TRACE", b"TRACK", b"PROPFIND", b"get", b"Trace", b"delete"])
def test_any_other_method_gets_a_local_405_naming_the_allowed_ones_and_keeps_no_credential(method):
    with taddons.context():
        decided = Decided()
        f = decided.decide("/", method=method)
        assert f.response is not None
        assert f.response.status_code == 405
        assert f.response.headers["Allow"] == "GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE"
        assert f"{method.decode()} is never sent to {ACME}" in f.response.text
        assert "authorization" not in f.request.headers
        assert FlowRecord.of(f.metadata).decision is Decision.METHOD_NOT_ALLOWED
        assert decided.source(f) is None


@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"OPTIONS", b"POST", b"PUT", b"PATCH", b"DELETE"])
def test_the_methods_atlassian_uses_are_credentialed(method):
    with taddons.context():
        decided = Decided()
        f = decided.decide("/", method=method)
        assert f.response is None
        assert f.request.headers["authorization"] == REDACTED

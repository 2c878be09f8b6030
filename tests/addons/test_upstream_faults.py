"""Upstream faults' pages: the short 502/504 for each failure, and pages registered per task."""

from __future__ import annotations

import asyncio

import pytest
from mitmproxy import flow
from mitmproxy.test import tflow, tutils

from proxy_addon.addons.replies import made, proxy_reply
from proxy_addon.addons.upstream_faults import ErrorPages, UpstreamFaults
from proxy_addon.policy.failures import UNTRUSTED_CERTIFICATE, failure_kind
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import Refusal


@pytest.mark.parametrize(
    ("error", "timed_out", "expected"),
    [
        ("server closed connection", False, (502, "the request to h.test failed: the connection closed before")),
        (
            "[Errno 104] Connection reset by peer",
            False,
            (502, "the request to h.test failed: the connection was reset"),
        ),
        ("Certificate verify failed: x", False, (502, "the request to h.test failed: its TLS certificate is not")),
        ("something new from 10.0.0.7:8443", False, (502, "the request to h.test failed: the connection failed")),
        ("server closed connection", True, (504, "h.test did not answer within 2.5 s")),
    ],
)
def test_fault_reply(error, timed_out, expected):
    refusal = Refusal.UPSTREAM_TIMEOUT if timed_out else Refusal.UPSTREAM_FAILED
    page = made(refusal, host="h.test", kind=failure_kind(error), timeout=2.5)
    message = page.text.removeprefix("atlassian-auth-proxy: ")
    assert (page.status_code, message[: len(expected[1])]) == expected
    assert "10.0.0.7" not in message


def test_error_pages_match_the_message_object_not_its_text():
    pages = ErrorPages()
    message = "".join(["server closed ", "connection"])
    pages.register(message, proxy_reply(502, "ours"))
    assert pages.take("server closed connection") is None
    assert pages.take(message).status_code == 502
    assert pages.take(message) is None


def test_error_pages_are_seen_only_in_the_task_that_registered_them():
    pages = ErrorPages()
    message = "server closed connection"

    async def failing_flow() -> None:
        pages.register(message, proxy_reply(502, "ours"))
        await asyncio.sleep(0)
        assert pages.take(message) is not None

    async def other_flow() -> None:
        await asyncio.sleep(0)
        assert pages.take(message) is None

    async def both() -> None:
        await asyncio.gather(failing_flow(), other_flow())

    asyncio.run(both())


def test_a_certificate_failure_found_only_when_the_request_needed_its_connection_is_an_untrusted_upstream():
    """The upstream pool's early CONNECT answer (or a reconnect) moves the handshake after the request's hooks:
    the same page as `requestheaders` gives, and the same decision (the credential never left)."""
    faults = UpstreamFaults()
    failed = tflow.tflow(req=tutils.treq(host="acme.atlassian.net", port=443, scheme=b"https"))
    FlowRecord.of(failed.metadata).decision = Decision.INJECT
    failed.error = flow.Error("Certificate verify failed: Hostname mismatch")
    faults.error(failed)
    assert FlowRecord.of(failed.metadata).decision is Decision.UNTRUSTED_UPSTREAM
    page = faults.pages.take(failed.error.msg)
    expected = made(Refusal.UNTRUSTED_UPSTREAM, host="acme.atlassian.net", kind=UNTRUSTED_CERTIFICATE)
    assert (page.status_code, page.content) == (expected.status_code, expected.content)

    reset = tflow.tflow(req=tutils.treq(host="acme.atlassian.net", port=443, scheme=b"https"))
    FlowRecord.of(reset.metadata).decision = Decision.INJECT
    reset.error = flow.Error("server closed connection")
    faults.error(reset)
    assert FlowRecord.of(reset.metadata).decision is Decision.INJECT

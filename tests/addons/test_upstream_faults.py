"""Upstream faults' pages: the short 502/504 for each failure, and pages registered per task."""

from __future__ import annotations

import asyncio

import pytest

from proxy_addon.addons.replies import made, proxy_reply
from proxy_addon.addons.upstream_faults import ErrorPages
from proxy_addon.policy.failures import failure_kind
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

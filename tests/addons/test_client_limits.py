"""Bad client input at the hooks: 431 for an oversized head, and a client too slow to send one is closed."""

from __future__ import annotations

import asyncio

from mitmproxy.test import tflow, tutils

from proxy_addon.addons import client_limits
from proxy_addon.addons.client_limits import ClientLimits, head_size
from proxy_addon.addons.prepared import Prepared
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import MAX_HEAD_BYTES
from proxy_addon.settings.model import Settings


def test_the_head_size_counts_the_request_line_and_every_header_line():
    assert head_size("GET", "/", [(b"host", b"a")]) == len(b"GET / HTTP/1.1\r\nhost: a\r\n")


def test_a_head_over_the_limit_gets_431_before_anything_is_decided():
    f = tflow.tflow(req=tutils.treq(path=b"/" + b"x" * MAX_HEAD_BYTES))
    ClientLimits().requestheaders(f)
    assert f.response is not None
    assert f.response.status_code == 431
    assert FlowRecord.of(f.metadata).decision is Decision.HEAD_TOO_LARGE
    small = tflow.tflow()
    ClientLimits().requestheaders(small)
    assert small.response is None


def test_a_client_that_sends_no_head_in_time_is_closed_and_one_that_did_is_not(monkeypatch):
    closed: list[str] = []
    monkeypatch.setattr(client_limits, "close_connection", lambda client, _: closed.append(client.id))
    addon = ClientLimits()
    addon.use(Prepared(settings=Settings(client_timeout=0.05)))
    slow, prompt = tflow.tclient_conn(), tflow.tclient_conn()

    async def run() -> None:
        addon.client_connected(slow)
        addon.client_connected(prompt)
        addon.requestheaders(tflow.tflow(client_conn=prompt))
        for _ in range(200):
            if closed:
                break
            await asyncio.sleep(0.01)
        addon.done()

    asyncio.run(run())
    assert closed == [slow.id]

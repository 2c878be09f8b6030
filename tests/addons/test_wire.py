"""What the wire decides: the credential only for a request not held, the 431 of a head still arriving, a held
request refused rather than streamed. addons/test_mitmproxy_internals.py drives these through mitmproxy's layers."""

from __future__ import annotations

from mitmproxy.test import tflow

from proxy_addon.addons.wire import HELD_REPLY, HELD_STREAMED, Wire
from proxy_addon.policy.record import Decision, FlowRecord

CREDENTIAL = "Basic c2VjcmV0LWZvci13aXJl"


def wire() -> Wire:
    return Wire(lambda flow: CREDENTIAL)


def test_a_request_gets_the_credential_on_the_wire_unless_a_boundary_holds_it():
    f = tflow.tflow()
    assert wire().credential(f) == CREDENTIAL
    FlowRecord.of(f.metadata).held = True
    assert wire().credential(f) is None


def test_an_unfinished_head_over_the_limit_gets_431_only_while_a_head_is_read():
    client = tflow.tclient_conn()
    answer = wire().head_overflow(client, reading_head=True)
    assert answer is not None
    assert answer.status_code == 431
    assert wire().head_overflow(client, reading_head=False) is None, "mid-response: the connection just closes"


def test_a_held_request_that_begins_to_stream_is_refused_and_recorded_undecided():
    f = tflow.tflow()
    assert wire().stream_refusal(f) is None
    FlowRecord.of(f.metadata).held = True
    assert wire().stream_refusal(f) == (HELD_STREAMED, HELD_REPLY)
    assert FlowRecord.of(f.metadata).decision is Decision.UNDECIDED

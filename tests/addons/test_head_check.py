"""Header bytes other parsers could read differently are refused with 400 before any credential is added."""

from __future__ import annotations

from mitmproxy.test import tflow

from proxy_addon.addons.head_check import HeadCheck
from proxy_addon.policy.record import Decision, FlowRecord


def test_an_ambiguous_header_gets_400_and_a_plain_one_passes():
    plain, folded = tflow.tflow(), tflow.tflow()
    folded.request.headers.fields = ((b"host", b"acme.atlassian.net"), (b"x-a", b"one\r\n two"))
    HeadCheck().requestheaders(plain)
    HeadCheck().requestheaders(folded)
    assert plain.response is None
    assert folded.response is not None
    assert folded.response.status_code == 400
    assert FlowRecord.of(folded.metadata).decision is Decision.AMBIGUOUS_HEAD


def test_an_answered_flow_is_left_alone():
    f = tflow.tflow(resp=True)
    f.request.headers.fields = ((b"x-a", b"bare\rcr"),)
    HeadCheck().requestheaders(f)
    assert f.response.status_code == 200

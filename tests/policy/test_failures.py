"""Failures described for clients and logs: a fixed phrase for each kind, never the address in mitmproxy's text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.failures import FAILURE_KINDS, failure_kind


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("[Errno 111] Connect call failed ('10.0.0.7', 8443)", "the connection was refused"),
        ("[Errno -2] Name or service not known", "the name did not resolve"),
        ("TimeoutError: timed out", "the connection timed out"),
        ("[Errno 101] Network is unreachable", "the network is unreachable"),
        ("[Errno 104] Connection reset by peer", "the connection was reset"),
        ("Certificate verify failed: self-signed certificate", "its TLS certificate is not trusted"),
        (
            "peer closed connection without sending complete message body",
            "the connection closed before the response was complete",
        ),
        ("something new from 10.0.0.7:8443", "the connection failed"),
        (None, "the connection failed"),
    ],
)
def test_each_error_gets_its_phrase(error, kind):
    assert failure_kind(error) == kind


@given(st.text(max_size=80))
def test_the_description_is_always_one_of_the_fixed_phrases(error):
    assert failure_kind(error) in {kind for _, kind in FAILURE_KINDS} | {"the connection failed"}

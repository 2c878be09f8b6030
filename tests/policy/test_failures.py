"""Failures described for clients and logs: a fixed phrase for each kind, never the address in mitmproxy's text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.failures import CLIENT_TLS_FAILURES, FAILURE_KINDS, client_tls_failure, failure_kind


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


@pytest.mark.parametrize(
    ("error", "untrusted"),
    [
        # mitmproxy's texts (ClientTLSLayer.on_handshake_error) for what clients do
        ("The client does not trust the proxy's certificate for acme.atlassian.net (tlsv1 alert unknown ca)", True),
        (
            "The client disconnected during the handshake. If this happens consistently for acme.atlassian.net, "
            "this may indicate that the client does not trust the proxy's certificate.",
            True,
        ),
        ("connection closed early", False),
        ("Client and mitmproxy cannot agree on a TLS version to use.", False),
        ("Cannot parse ClientHello: b'GET / HTTP/1.1'", False),
        ("something new", False),
        (None, False),
    ],
)
def test_a_failed_client_handshake_gets_a_fixed_phrase_and_says_when_the_ca_is_the_cause(error, untrusted):
    phrase, says_untrusted = client_tls_failure(error)
    assert says_untrusted is untrusted
    assert phrase in {phrase for _, phrase, _ in CLIENT_TLS_FAILURES} | {"the TLS handshake failed"}


@given(st.text(max_size=80))
def test_a_client_handshake_failure_never_echoes_mitmproxys_text(error):
    phrase, _ = client_tls_failure(error)
    assert phrase in {phrase for _, phrase, _ in CLIENT_TLS_FAILURES} | {"the TLS handshake failed"}

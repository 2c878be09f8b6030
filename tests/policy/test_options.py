"""mitmproxy options and listen addresses that would skip a check: each named in one line, or none."""

from __future__ import annotations

import pytest

from proxy_addon.policy.options import bound_problem, listen_problem


@pytest.mark.parametrize(
    ("listen_host", "proxy_auth", "refused"),
    [
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("localhost", False, False),
        ("0.0.0.0", False, True),
        ("", False, True),
        ("10.1.2.3", False, True),
        ("0.0.0.0", True, False),
        ("", True, False),
    ],
)
def test_listen_problem(listen_host, proxy_auth, refused):
    assert (listen_problem(listen_host, proxy_auth) is not None) is refused


@pytest.mark.parametrize(
    ("bound", "proxy_auth", "refused"),
    [
        (["127.0.0.1", "::1"], False, False),
        (["127.0.0.2", "::ffff:127.0.0.1"], False, False),
        (["127.0.0.1", "10.1.2.3"], False, True),
        (["0.0.0.0"], False, True),
        (["::"], False, True),
        (["10.1.2.3"], True, False),
        ([], False, False),
    ],
)
def test_bound_problem(bound, proxy_auth, refused):
    assert (bound_problem(bound, proxy_auth) is not None) is refused

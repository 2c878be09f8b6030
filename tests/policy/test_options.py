"""mitmproxy options and listen addresses that would skip a check, and mitmdump options that change or answer a
request after its verdict (red team #10): each named in one line, or none."""

from __future__ import annotations

import pytest

from proxy_addon.policy.options import (
    REWRITING_OPTIONS,
    applies_to_requests,
    bound_problem,
    listen_problem,
    rewrite_problem,
)

SECRET = "Bearer s3cret-in-a-spec"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("map_remote", ["|https://acme.atlassian.net/wiki/|https://other.example.test/"]),
        ("map_local", ["|~d acme.atlassian.net|/tmp"]),
        ("server_replay", ["flows.mitm"]),
        ("stickyauth", ".*"),
        ("stickycookie", ".*"),
        ("modify_headers", [f"/~q/Authorization/{SECRET}"]),
        ("modify_headers", [f"/Authorization/{SECRET}"]),
        ("modify_headers", ["/~s/Server/x", f"/~d acme/Authorization/{SECRET}"]),
        ("modify_body", [f"/~q/secret/{SECRET}"]),
        ("modify_body", [f"/~s | ~q/x/{SECRET}"]),
    ],
)
def test_an_option_that_changes_requests_after_the_verdict_is_refused_in_one_line_without_its_value(name, value):
    problem = rewrite_problem({name: value})
    assert problem is not None
    assert problem.startswith(f"{name} {REWRITING_OPTIONS[name]} after the proxy decided where their credentials go")
    assert SECRET not in problem
    assert "\n" not in problem


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("map_remote", []),
        ("map_local", []),
        ("server_replay", []),
        ("stickyauth", None),
        ("stickycookie", None),
        ("modify_headers", []),
        ("modify_headers", ["/~s/Server/x", "|~s|Strict-Transport-Security|"]),
        ("modify_body", ["/ ~s /secret/[redacted]"]),
    ],
)
def test_unset_options_and_response_only_specs_are_allowed(name, value):
    assert rewrite_problem({name: value}) is None


@pytest.mark.parametrize(
    ("spec", "applies"),
    [
        ("/~s/Server/x", False),
        ("|~s|a/b|c", False),
        ("/Server/x", True),
        ("/~q/Server/x", True),
        ("/~s & ~q/Server/x", True),
        ("/~d acme/Server/x", True),
        ("", True),
        ("/", True),
    ],
)
def test_a_spec_applies_to_requests_unless_its_filter_is_responses_only(spec, applies):
    assert applies_to_requests(spec) is applies


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

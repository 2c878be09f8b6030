"""A credentialed request goes only where its verdict sent it (red team #10), at the hooks: the injector keeps the
destination it decided, a boundary the method and path it let go, the wire gives no credential to a request
that differs and refuses to send it. addons/test_safe_options.py has the refusal of mitmdump's options that would
move requests, e2e/test_moved.py proves it end to end under mitmdump, addons/test_mitmproxy_internals.py pins the
refusal in mitmproxy's HTTP layer."""

from __future__ import annotations

import timeit

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from proxy_addon.addons.moves import moved
from proxy_addon.addons.wire import MOVED
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import Refusal, message

from support.decided import ACME, CREDENTIALS, Decided


@pytest.fixture
def decided():
    with taddons.context():
        yield Decided()


def decide(decided: Decided, *args, **kwargs) -> http.HTTPFlow:
    """A request the injector credentialed (and a boundary let go)."""
    f = decided.decide(*args, **kwargs)
    assert f.response is None, f.response.text
    return f


def test_a_request_as_decided_gets_the_credential_and_is_sent(decided):
    f = decide(decided)
    assert FlowRecord.of(f.metadata).destination == f"https://{ACME}:443"
    assert decided.wire.send_refusal(f) is None
    assert decided.source(f) == CREDENTIALS.authorization.get_secret_value()


@pytest.mark.parametrize(
    "move",
    [
        lambda r: setattr(r, "host", "other.example.test"),
        lambda r: setattr(r, "host", "globex.atlassian.net"),
        lambda r: setattr(r, "port", 8443),
        lambda r: setattr(r, "scheme", "http"),
        lambda r: setattr(r, "url", "https://other.example.test/rest/api/3/myself"),
    ],
)
def test_a_request_moved_elsewhere_gets_no_credential_and_is_refused_unsent(decided, move):
    f = decide(decided)
    move(f.request)
    assert decided.source(f) is None, "no credential in the head"
    error, reply = decided.wire.send_refusal(f)
    assert error == MOVED
    assert reply == message(Refusal.MOVED, what="the destination", host=ACME)
    assert FlowRecord.of(f.metadata).decision is Decision.MOVED


def test_an_unjudged_request_keeps_its_credential_when_only_its_path_changes(decided):
    f = decide(decided)
    f.request.path = "/rest/api/3/issue/SEC-1"
    assert decided.wire.send_refusal(f) is None
    assert decided.source(f) is not None


@pytest.mark.parametrize(
    "change",
    [
        lambda r: setattr(r, "path", "/rest/api/3/issue/SEC-1"),
        lambda r: setattr(r, "method", "DELETE"),
        lambda r: setattr(r, "path", r.path + "&jql=project=SEC"),
    ],
)
def test_a_judged_request_whose_method_or_path_changed_gets_no_credential_and_is_refused(decided, change):
    f = decide(decided, "/rest/api/3/issue/OPS-1", user="ops-agent")
    assert FlowRecord.of(f.metadata).route == "GET /rest/api/3/issue/OPS-1"
    change(f.request)
    assert decided.source(f) is None
    assert decided.wire.send_refusal(f)[1] == message(Refusal.MOVED, what="the method or path", host=ACME)


def test_a_confined_search_is_remembered_as_confined(decided):
    f = decide(decided, "/rest/api/3/search?jql=project%3DSEC", user="ops-agent")
    route = FlowRecord.of(f.metadata).route
    assert route == f"GET {f.request.path}"
    assert route != "GET /rest/api/3/search?jql=project%3DSEC"
    assert decided.wire.send_refusal(f) is None


def test_a_flow_credentialed_without_a_recorded_destination_gets_nothing(decided):
    f = tflow.tflow(req=tutils.treq(host=ACME, port=443, scheme=b"https"))
    record = FlowRecord.of(f.metadata)
    record.decision, record.site = Decision.INJECT, "default"
    assert moved(f) == "the destination"
    assert decided.source(f) is None


def test_requests_never_credentialed_are_not_the_wires_business(decided):
    f = decide(decided)
    FlowRecord.of(f.metadata).decision = Decision.PASS
    f.request.host = "other.example.test"
    assert decided.wire.send_refusal(f) is None


def test_the_check_costs_well_under_a_microsecond_per_request(decided):
    """It runs for every credentialed head, twice (connection, credential): measured, not assumed."""
    f = decide(decided)
    runs = 20_000
    seconds = min(timeit.repeat(lambda: moved(f), number=runs, repeat=5)) / runs
    assert seconds < 2e-6, f"{seconds * 1e9:.0f} ns"

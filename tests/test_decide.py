"""The injection verdict as a pure function of where the connection really goes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.hosts import HostMatcher, HostPattern
from proxy_addon.inject import Decision, decide, should_intercept

HOSTS = HostMatcher((HostPattern.parse("*.atlassian.net"),))
ACME = "acme.atlassian.net"


def verdict(**changes):
    facts = {"scheme": "https", "host": ACME, "port": 443, "sni": ACME, "names": [ACME]}
    facts.update(changes)
    return decide(HOSTS, **facts)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, Decision.INJECT),
        ({"names": ["ACME.atlassian.net:443"]}, Decision.INJECT),
        ({"names": []}, Decision.INJECT),
        ({"host": "example.test", "sni": "example.test", "names": [ACME]}, Decision.PASS),
        ({"scheme": "http", "port": 80, "sni": None}, Decision.CLEARTEXT),
        ({"port": 8443}, Decision.PASS),
        ({"sni": None}, Decision.MISDIRECTED),
        ({"sni": "other.atlassian.net"}, Decision.MISDIRECTED),
        ({"names": ["other.atlassian.net"]}, Decision.MISDIRECTED),
        ({"names": [ACME, "evil.test"]}, Decision.MISDIRECTED),
        ({"names": [f"{ACME}:8443"]}, Decision.MISDIRECTED),
        ({"names": [f"{ACME}:nope"]}, Decision.MISDIRECTED),
    ],
)
def test_decide(changes, expected):
    assert verdict(**changes) is expected


@given(host=st.text(max_size=30), sni=st.one_of(st.none(), st.text(max_size=30)), names=st.lists(st.text(max_size=30)))
def test_only_a_matching_destination_can_ever_inject(host, sni, names):
    if verdict(host=host, sni=sni, names=names) is Decision.INJECT:
        assert HOSTS.matches(host)
        assert HOSTS.matches(sni)


@pytest.mark.parametrize(
    ("host", "port", "sni", "expected"),
    [
        (ACME, 443, ACME, True),
        (ACME, 443, "ACME.atlassian.net", True),
        (ACME, 8443, ACME, False),
        (ACME, 443, None, False),
        (ACME, 443, ACME + ".", False),
        ("example.test", 443, ACME, False),
        (ACME, 443, "example.test", False),
        (None, None, ACME, False),
    ],
)
def test_should_intercept(host, port, sni, expected):
    assert should_intercept(HOSTS, host, port, sni) is expected

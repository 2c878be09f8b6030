"""CONNECT_TO rules: PATTERN=HOST:PORT round-trips, and anything else is one ValueError."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.connect_rules import ConnectToRule

host_label = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10)


host_name = st.lists(host_label, min_size=2, max_size=3).filter(lambda ls: not ls[-1].isdigit()).map(".".join)


@given(pattern=host_name, wildcard=st.booleans(), host=host_name | st.ip_addresses(v=4).map(str), port=st.integers())
def test_connect_to_rules_round_trip_or_name_the_port(pattern, wildcard, host, port):
    text = f"{'*.' if wildcard else ''}{pattern}={host}:{port}"
    if not 0 < port < 65536:
        with pytest.raises(ValueError, match=r"PATTERN=HOST:PORT|not between 1 and 65535"):
            ConnectToRule.parse(text)
        return
    rule = ConnectToRule.parse(text)
    assert (str(rule.pattern), rule.host, rule.port) == (f"{'*.' if wildcard else ''}{pattern}", host, port)


@given(text=st.text(max_size=60))
def test_connect_to_parsing_only_ever_raises_value_error(text):
    try:
        rule = ConnectToRule.parse(text)
    except ValueError:
        return
    assert rule.host
    assert 0 < rule.port < 65536

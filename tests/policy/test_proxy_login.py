"""The proxy login: its password kept only as a digest and compared in constant time; Basic read from any header."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from proxy_addon.policy.proxy_login import ProxyLogin, basic_credentials

PASSWORD = "Pr0xy-pa55word-9f3e"
LOGIN = f"ci:{PASSWORD}"


def proxy_authorization(login: str) -> str:
    return "Basic " + base64.b64encode(login.encode()).decode()


def test_login_repr_holds_no_password():
    login = ProxyLogin.parse(LOGIN)
    assert PASSWORD not in repr(login)
    assert login.user == "ci"


@given(st.text(max_size=60))
def test_basic_credentials_never_raises_on_any_header(header):
    basic_credentials(header)


@given(user=st.text(min_size=1, max_size=20).filter(lambda u: ":" not in u), password=st.text(max_size=30))
def test_basic_credentials_round_trips(user, password):
    assert basic_credentials(proxy_authorization(f"{user}:{password}")) == (user, password)


@given(user=st.text(max_size=20), password=st.text(max_size=30))
def test_only_the_exact_login_is_accepted(user, password):
    login = ProxyLogin.parse(LOGIN)
    accepted = login.check(proxy_authorization(f"{user}:{password}"))
    assert (accepted is not None) is (f"{user}:{password}" == LOGIN)

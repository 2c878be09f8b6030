"""Proxy authentication's hooks with mitmproxy's test flows: 407 unless the login is exact; the user is recorded."""

from __future__ import annotations

import base64
import logging

from mitmproxy.test import taddons, tflow

from proxy_addon.addons.proxy_auth import ProxyAuthentication
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.login_throttle import FIRST_LOCKOUT, MAX_FAILURES, MAX_FAILURES_EVERYWHERE
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision, FlowRecord


def authenticating() -> ProxyAuthentication:
    addon = ProxyAuthentication()
    addon.login = ProxyLogin.parse("carol:s3cret-pw-0123456")
    return addon


def header(login: str) -> str:
    return "Basic " + base64.b64encode(login.encode()).decode()


def test_the_right_login_records_the_user_and_never_forwards_the_header():
    addon = authenticating()
    with taddons.context(addon):
        f = tflow.tflow()
        f.request.headers["proxy-authorization"] = header("carol:s3cret-pw-0123456")
        addon.requestheaders(f)
        assert f.response is None
        assert "proxy-authorization" not in f.request.headers
        assert FlowRecord.of(f.metadata).user == "carol"
        assert "s3cret-pw-0123456" not in repr(f.metadata)


def test_a_wrong_or_missing_login_gets_407_recorded_as_refused():
    addon = authenticating()
    with taddons.context(addon):
        for value in (header("carol:wrong"), header("mallory:s3cret-pw-0123456"), None):
            f = tflow.tflow()
            if value is not None:
                f.request.headers["proxy-authorization"] = value
            addon.requestheaders(f)
            assert f.response is not None
            assert f.response.status_code == 407
            assert FlowRecord.of(f.metadata).decision is Decision.PROXY_AUTH
            assert FlowRecord.of(f.metadata).user is None


def test_a_connect_that_authenticates_authenticates_its_connection():
    addon = authenticating()
    with taddons.context(addon):
        connect = tflow.tflow()
        connect.request.method = "CONNECT"
        connect.request.headers["proxy-authorization"] = header("carol:s3cret-pw-0123456")
        addon.http_connect(connect)
        inside = tflow.tflow()
        inside.client_conn = connect.client_conn
        addon.requestheaders(inside)
        assert inside.response is None
        assert FlowRecord.of(inside.metadata).user == "carol"


def test_without_a_login_configured_nothing_is_required_and_the_header_is_still_dropped():
    addon = ProxyAuthentication()
    with taddons.context(addon):
        f = tflow.tflow()
        f.request.headers["proxy-authorization"] = header("x:y")
        addon.requestheaders(f)
        assert f.response is None
        assert "proxy-authorization" not in f.request.headers


def with_clients() -> ProxyAuthentication:
    addon = ProxyAuthentication()
    addon.clients = ClientTable.of(
        [Client("agent-a", ProxyLogin.of("agent-a", "pw-a")), Client("agent-b", ProxyLogin.of("agent-b", "pw-b"))]
    )
    return addon


def test_with_clients_each_clients_own_login_records_its_name_and_nothing_else_passes():
    addon = with_clients()
    with taddons.context(addon):
        for value, user in (
            (header("agent-a:pw-a"), "agent-a"),
            (header("agent-b:pw-b"), "agent-b"),
            (header("agent-a:pw-b"), None),
            (header("agent-c:pw-a"), None),
            (None, None),
        ):
            f = tflow.tflow()
            if value is not None:
                f.request.headers["proxy-authorization"] = value
            addon.requestheaders(f)
            assert FlowRecord.of(f.metadata).user == user
            assert (f.response.status_code if f.response else None) == (None if user else 407)
            assert "proxy-authorization" not in f.request.headers


def test_with_clients_a_connect_authenticates_its_connection_as_that_client():
    addon = with_clients()
    with taddons.context(addon):
        connect = tflow.tflow()
        connect.request.method = "CONNECT"
        connect.request.headers["proxy-authorization"] = header("agent-b:pw-b")
        addon.http_connect(connect)
        inside = tflow.tflow()
        inside.client_conn = connect.client_conn
        inside.request.headers["proxy-authorization"] = header("agent-a:pw-a")
        addon.requestheaders(inside)
        assert inside.response is None
        assert FlowRecord.of(inside.metadata).user == "agent-b", "the tunnel's login, not one sent inside it"
        assert addon.logins.user_of(connect.client_conn) == "agent-b"


def attempt(addon: ProxyAuthentication, login: str | None, peer: str = "192.0.2.7", connect: bool = False):
    f = tflow.tflow()
    f.client_conn.peername = (peer, 40000)
    if login is not None:
        f.request.headers["proxy-authorization"] = header(login)
    if connect:
        f.request.method = "CONNECT"
        addon.http_connect(f)
    else:
        addon.requestheaders(f)
    return f


class CountingLogin:
    """A login that counts how often a password is checked against it."""

    def __init__(self, login: ProxyLogin) -> None:
        self.login, self.checks = login, 0
        self.user = login.user

    def accepts(self, user: str, password: str) -> bool:
        self.checks += 1
        return self.login.accepts(user, password)


def test_a_peer_that_keeps_failing_as_a_user_gets_429_for_it_without_a_password_check_and_other_peers_get_in():
    """The right password while locked out gets the 429 too: otherwise the lockout would tell a guesser it guessed
    right. A request without any login names no user: it gets the usual challenge, never a 429."""
    addon = authenticating()
    counting = addon.login = CountingLogin(addon.login)
    with taddons.context(addon):
        guesses = [attempt(addon, "carol:wrong-password-guess", connect=n % 2 == 0) for n in range(MAX_FAILURES)]
        assert [f.response.status_code for f in guesses] == [407] * (MAX_FAILURES - 1) + [429]
        checks = counting.checks
        for login in ("carol:s3cret-pw-0123456", "carol:wrong-password-guess"):
            for connect in (False, True):
                f = attempt(addon, login, connect=connect)
                assert f.response is not None
                assert f.response.status_code == 429
                assert f.response.headers["Retry-After"] == str(int(FIRST_LOCKOUT))
                assert FlowRecord.of(f.metadata).decision is Decision.PROXY_AUTH
                assert "proxy-authorization" not in f.request.headers
        assert counting.checks == checks, "a locked-out peer's password is never checked"
        assert attempt(addon, None).response.status_code == 407
        other = attempt(addon, "carol:s3cret-pw-0123456", peer="192.0.2.8")
        assert other.response is None
        assert FlowRecord.of(other.metadata).user == "carol"


def test_failing_as_one_user_never_locks_another_user_out_of_the_same_peer():
    addon = with_clients()
    with taddons.context(addon):
        for name in ("nobody", "agent-a"):
            for n in range(3 * MAX_FAILURES):
                attempt(addon, f"{name}:guess-{n}", peer="127.0.0.1")
        assert attempt(addon, "agent-a:pw-a", peer="127.0.0.1").response.status_code == 429
        assert attempt(addon, "agent-b:pw-b", peer="127.0.0.1").response is None
        assert attempt(addon, "agent-b:pw-b", peer="::1").response is None


def test_every_loopback_address_is_one_peer():
    addon = authenticating()
    with taddons.context(addon):
        statuses = [
            attempt(addon, f"carol:guess-{n}", peer=f"127.0.{n}.9").response.status_code for n in range(MAX_FAILURES)
        ]
        assert statuses == [407] * (MAX_FAILURES - 1) + [429]
        for address in ("127.200.1.1", "::1", "::ffff:127.0.0.1", "127.0.0.1"):
            assert attempt(addon, "carol:s3cret-pw-0123456", peer=address).response.status_code == 429


def test_a_user_guessed_at_from_many_peers_is_locked_out_everywhere_but_where_it_logged_in_before():
    addon = authenticating()
    with taddons.context(addon):
        assert attempt(addon, "carol:s3cret-pw-0123456", peer="127.0.0.1").response is None
        replies = [attempt(addon, f"carol:guess-{n}", peer=f"10.0.{n // 250}.{n % 250}") for n in range(150)]
        statuses = [f.response.status_code for f in replies]
        assert statuses[: MAX_FAILURES_EVERYWHERE - 1] == [407] * (MAX_FAILURES_EVERYWHERE - 1)
        assert set(statuses[MAX_FAILURES_EVERYWHERE - 1 :]) == {429}, "no password is checked past the ceiling"
        assert attempt(addon, "carol:s3cret-pw-0123456", peer="192.0.2.99").response.status_code == 429
        assert attempt(addon, "carol:s3cret-pw-0123456", peer="127.0.0.2").response is None, "a peer it used"


def test_the_right_login_never_clears_a_peers_failures():
    addon = authenticating()
    with taddons.context(addon):
        for _ in range(MAX_FAILURES - 1):
            assert attempt(addon, "carol:wrong-password-guess").response.status_code == 407
            assert attempt(addon, "carol:s3cret-pw-0123456").response is None
        assert attempt(addon, "carol:wrong-password-guess").response.status_code == 429


def test_no_login_at_all_is_the_usual_challenge_and_never_counts():
    addon = authenticating()
    with taddons.context(addon):
        for _ in range(3 * MAX_FAILURES):
            assert attempt(addon, None).response.status_code == 407
        assert attempt(addon, "carol:s3cret-pw-0123456").response is None


def test_failed_logins_are_logged_once_a_minute_per_peer_with_a_count(caplog):
    addon = authenticating()
    caplog.set_level(logging.WARNING, logger="proxy_addon.addons.proxy_auth")
    with taddons.context(addon):
        for n in range(300):
            attempt(addon, f"carol:guess-{n:04d}-aaaaaaaaaa", peer=f"192.0.2.{n % 3}")
        for n in range(300):
            attempt(addon, f"guess-{n:04d}:aaaaaaaaaa", peer="127.0.0.1")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 8, lines
    assert sum("logins as carol get 429 for 30 s" in line for line in lines) == 3
    assert sum("as a name that is no user of the proxy get 429 for 30 s" in line for line in lines) == 1
    assert all("guess" not in line for line in lines), "no name or password a client chose is logged"


def test_a_lockout_everywhere_is_logged_once_naming_the_user(caplog):
    addon = authenticating()
    caplog.set_level(logging.WARNING, logger="proxy_addon.addons.proxy_auth")
    with taddons.context(addon):
        for n in range(2 * MAX_FAILURES_EVERYWHERE):
            attempt(addon, f"carol:guess-{n}", peer=f"10.1.{n // 250}.{n % 250}")
    everywhere = [r.getMessage() for r in caplog.records if "from anywhere" in r.getMessage()]
    assert everywhere == [
        f"carol: {MAX_FAILURES_EVERYWHERE} failed proxy logins from anywhere; its logins get 429 for 30 s, without a "
        "password check, except from addresses it logged in from before"
    ]

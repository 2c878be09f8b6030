"""Proxy authentication's hooks with mitmproxy's test flows: 407 unless the login is exact; the user is recorded."""

from __future__ import annotations

import base64

from mitmproxy.test import taddons, tflow

from proxy_addon.addons.proxy_auth import ProxyAuthentication
from proxy_addon.policy.clients import Client, ClientTable
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.record import Decision, FlowRecord


def authenticating() -> ProxyAuthentication:
    addon = ProxyAuthentication()
    addon.login = ProxyLogin.parse("carol:s3cret-pw")
    return addon


def header(login: str) -> str:
    return "Basic " + base64.b64encode(login.encode()).decode()


def test_the_right_login_records_the_user_and_never_forwards_the_header():
    addon = authenticating()
    with taddons.context(addon):
        f = tflow.tflow()
        f.request.headers["proxy-authorization"] = header("carol:s3cret-pw")
        addon.requestheaders(f)
        assert f.response is None
        assert "proxy-authorization" not in f.request.headers
        assert FlowRecord.of(f.metadata).user == "carol"
        assert "s3cret-pw" not in repr(f.metadata)


def test_a_wrong_or_missing_login_gets_407_recorded_as_refused():
    addon = authenticating()
    with taddons.context(addon):
        for value in (header("carol:wrong"), header("mallory:s3cret-pw"), None):
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
        connect.request.headers["proxy-authorization"] = header("carol:s3cret-pw")
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
        assert addon.user_of(connect.client_conn) == "agent-b"

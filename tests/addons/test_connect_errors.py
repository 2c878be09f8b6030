"""The CONNECT failure page names the host and the kind of failure, never the address mitmproxy resolved."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.test import tflow, tutils

from proxy_addon.addons.connect_errors import ConnectErrors


def failed_connect(status: int, error: str) -> http.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(method=b"CONNECT", host="acme.atlassian.net", port=443, path=b""))
    f.response = http.Response.make(status, f"Cannot connect to 10.0.0.7:8443: {error}")
    f.server_conn.error = f"[Errno 111] Connect call failed ('10.0.0.7', 8443): {error}"
    return f


def test_the_502_of_a_failed_connect_names_the_host_and_not_the_address():
    f = failed_connect(502, "refused")
    ConnectErrors().http_connect_error(f)
    assert f.response.status_code == 502
    assert f.response.text == "atlassian-auth-proxy: cannot reach acme.atlassian.net:443: the connection was refused\n"
    assert "10.0.0.7" not in f.response.text


def test_another_answer_is_left_as_it_is():
    f = failed_connect(407, "login")
    ConnectErrors().http_connect_error(f)
    assert f.response.status_code == 407

"""`run` builds its mitmproxy from a chosen set of mitmproxy's addons and writes log lines whole (runtime/server.py)."""

from __future__ import annotations

import io
import logging

from mitmproxy.addons import default_addons

from proxy_addon.runtime.server import line_stream, mitmproxy_addons, without_connection_chatter

FLOW_CHANGING = {
    "AntiCache",
    "AntiComp",
    "BlockList",
    "ClientPlayback",
    "MapLocal",
    "MapRemote",
    "ModifyBody",
    "ModifyHeaders",
    "Onboarding",
    "Save",
    "SaveHar",
    "ScriptLoader",
    "ServerPlayback",
    "StickyAuth",
    "StickyCookie",
}
"""mitmdump addons that rewrite, replay, record or answer flows: none may touch a credentialed one."""


def names(addons: list[object]) -> set[str]:
    return {type(addon).__name__ for addon in addons}


def test_no_addon_that_changes_answers_or_records_flows():
    assert names(default_addons()) >= FLOW_CHANGING, "mitmproxy renamed one; check the list"
    assert not names(mitmproxy_addons()) & FLOW_CHANGING


def test_the_protections_mitmproxy_gives_stay():
    assert {"Block", "DisableH2C", "ErrorCheck", "TlsConfig", "UpstreamAuth", "UpdateAltSvc"} <= names(
        mitmproxy_addons()
    )


def test_upstream_auth_adds_the_corporate_login_only_after_our_addon_checked_the_clients():
    ours = object()
    addons = mitmproxy_addons(ours)
    assert names(addons[addons.index(ours) + 1 :]) == {"UpstreamAuth"}


def test_log_lines_go_to_the_same_descriptor_and_a_stream_without_one_is_kept(tmp_path):
    path = tmp_path / "stderr"
    with path.open("w") as stderr:
        stream = line_stream(stderr)
        print("first line", file=stream)
        assert path.read_text() == "first line\n"
        stream.close()
        print("still open", file=stderr, flush=True)
    assert path.read_text() == "first line\nstill open\n"
    replaced = io.StringIO()
    assert line_stream(replaced) is replaced


def mitmproxy_line(level: int, message: str, name: str = "mitmproxy.proxy.server") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_run_leaves_out_mitmproxys_connection_chatter_and_its_own_line_for_a_failed_client_handshake():
    dropped = [
        mitmproxy_line(logging.INFO, "client connect"),
        mitmproxy_line(logging.WARNING, "Client TLS handshake failed. The client does not trust the proxy's ..."),
    ]
    kept = [
        mitmproxy_line(logging.WARNING, "Server TLS handshake failed. certificate verify failed"),
        mitmproxy_line(logging.INFO, "Client TLS handshake failed.", name="atlassian_auth_proxy.connections"),
    ]
    assert [without_connection_chatter(r) for r in dropped] == [False, False]
    assert [without_connection_chatter(r) for r in kept] == [True, True]

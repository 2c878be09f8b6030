"""`run` builds its mitmproxy from a chosen set of mitmproxy's addons (runtime/server.py)."""

from __future__ import annotations

from mitmproxy.addons import default_addons

from proxy_addon.runtime.server import mitmproxy_addons

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

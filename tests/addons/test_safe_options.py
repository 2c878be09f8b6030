"""SafeOptions: mitmproxy options that would leak the credential, send a request before its verdict, move it after
its verdict (red team #10) or open the proxy are refused at configure (tests/e2e/test_held_bodies.py and
tests/e2e/test_moved.py prove it end to end under mitmdump)."""

from __future__ import annotations

import pytest
from mitmproxy import exceptions
from mitmproxy.addons.anticache import AntiCache
from mitmproxy.addons.anticomp import AntiComp
from mitmproxy.addons.maplocal import MapLocal
from mitmproxy.addons.mapremote import MapRemote
from mitmproxy.addons.modifybody import ModifyBody
from mitmproxy.addons.modifyheaders import ModifyHeaders
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.addons.serverplayback import ServerPlayback
from mitmproxy.addons.stickyauth import StickyAuth
from mitmproxy.addons.stickycookie import StickyCookie
from mitmproxy.test import taddons
from mitmproxy.utils import human

from proxy_addon.addons.safe_options import STREAM_LARGE_BODIES, SafeOptions
from proxy_addon.policy.boundaries.body import MAX_BODY
from proxy_addon.policy.options import streaming_problem


@pytest.mark.parametrize("setting", ["16k", "0", "1023k", str(MAX_BODY - 1)])
def test_stream_large_bodies_below_the_judged_limit_is_refused(setting):
    options = SafeOptions()
    refused = pytest.raises(exceptions.OptionsError, match=f"stream_large_bodies={setting} would send")
    with taddons.context(Proxyserver(), options) as tctx, refused:
        tctx.configure(options, stream_large_bodies=setting)


@pytest.mark.parametrize("setting", ["1m", "2m", str(MAX_BODY), None])
def test_stream_large_bodies_at_or_above_the_limit_or_unset_is_kept_or_defaulted(setting):
    options = SafeOptions()
    with taddons.context(Proxyserver(), options) as tctx:
        tctx.configure(options, stream_large_bodies=setting)
        assert tctx.options.stream_large_bodies == (setting or STREAM_LARGE_BODIES)


def test_the_default_streams_only_bodies_no_boundary_reads():
    assert human.parse_size(STREAM_LARGE_BODIES) >= MAX_BODY
    assert streaming_problem(STREAM_LARGE_BODIES, human.parse_size(STREAM_LARGE_BODIES)) is None


MITMDUMP_ADDONS = (MapRemote, MapLocal, ModifyBody, ModifyHeaders, ServerPlayback, StickyAuth, StickyCookie)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("map_remote", ["|https://acme.atlassian.net/wiki/|https://other.example.test/"]),
        ("map_local", ["|~d acme.atlassian.net|/tmp"]),
        ("modify_body", ["/~q/a/b"]),
        ("modify_headers", ["/Host/other.example.test"]),
        ("stickyauth", ".*"),
        ("stickycookie", ".*"),
        ("server_replay", ["{flows}"]),
    ],
)
def test_safe_options_refuses_mitmdumps_options_that_move_requests(option, value, tmp_path):
    flows = tmp_path / "flows.mitm"
    flows.write_bytes(b"")
    value = [v.format(flows=flows) for v in value] if isinstance(value, list) else value
    options = SafeOptions()
    refused = pytest.raises(exceptions.OptionsError, match=f"^{option} .* after the proxy decided where")
    with taddons.context(Proxyserver(), *(addon() for addon in MITMDUMP_ADDONS), options) as tctx, refused:
        tctx.configure(options, **{option: value})


def test_safe_options_keeps_response_only_header_changes_and_needs_none_of_mitmdumps_addons():
    options = SafeOptions()
    with taddons.context(Proxyserver(), AntiCache(), AntiComp(), *(a() for a in MITMDUMP_ADDONS), options) as tctx:
        tctx.configure(options, modify_headers=["/~s/Server/atlassian"], anticache=True, anticomp=True)
    with taddons.context(Proxyserver(), options) as tctx:  # as under `run`: the options do not exist
        tctx.configure(options, listen_host="127.0.0.1")

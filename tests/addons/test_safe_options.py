"""SafeOptions: mitmproxy options that would leak the credential, send a request before its verdict or open the
proxy are refused at configure (tests/e2e/test_held_bodies.py proves the held bodies end to end under mitmdump)."""

from __future__ import annotations

import pytest
from mitmproxy import exceptions
from mitmproxy.addons.proxyserver import Proxyserver
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

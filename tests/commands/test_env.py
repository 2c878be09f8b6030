"""`env`'s exports, rendered from the settings without a running proxy."""

from __future__ import annotations

from proxy_addon.commands.env import variables
from proxy_addon.runtime.trust import CLIENT_BUNDLE_NAME
from proxy_addon.settings.model import Settings

from support.exports import EXPORTED


def test_the_exports_name_every_runtime_and_point_at_the_proxy(tmp_path):
    names = variables(Settings(listen_port=8123, confdir=tmp_path))
    assert set(names) == EXPORTED
    assert names["HTTPS_PROXY"] == names["http_proxy"] == "http://127.0.0.1:8123"
    assert names["SSL_CERT_FILE"] == names["GIT_SSL_CAINFO"] == str(tmp_path / CLIENT_BUNDLE_NAME)
    assert names["NODE_EXTRA_CA_CERTS"] == str(tmp_path / "mitmproxy-ca-cert.pem")
    assert variables(Settings(listen_host="::1", listen_port=1))["HTTPS_PROXY"] == "http://[::1]:1"

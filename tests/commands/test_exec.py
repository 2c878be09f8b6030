"""`exec`'s child environment: the caller's, without any variable that holds a secret of the proxy."""

from __future__ import annotations

import pytest

from proxy_addon.commands.exec import command_environment


@pytest.mark.parametrize(
    ("name", "dropped"),
    [
        ("ATLASSIAN_PROXY_API_TOKEN", True),
        ("atlassian_proxy_api_token", True),
        ("Atlassian_Proxy_Proxy_Auth", True),
        ("ACME_TOKEN", True),
        ("acme_token", False),
        ("ATLASSIAN_PROXY_EMAIL", False),
        ("PATH", False),
    ],
)
def test_secret_variables_go_by_the_names_the_settings_read(name, dropped):
    secrets = frozenset({"ATLASSIAN_PROXY_API_TOKEN", "ATLASSIAN_PROXY_PROXY_AUTH", "ACME_TOKEN"})
    environment = command_environment({name: "value"}, secrets, {"HTTPS_PROXY": "http://127.0.0.1:1"})
    assert (name not in environment) is dropped
    assert environment["HTTPS_PROXY"] == "http://127.0.0.1:1"

"""Bad settings stop `run` and `check` with exit 2 and one line naming the setting, never a traceback or the token."""

from __future__ import annotations

import os

import pytest

from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.names import SettingsError

from support.configs import ACME_SITE
from support.proxy import EMAIL, TOKEN_24, run_cli

BAD = [
    ({"ATLASSIAN_PROXY_HOSTS": "*"}, "ATLASSIAN_PROXY_HOSTS: '*' is not a host pattern"),
    ({"ATLASSIAN_PROXY_HOSTS": "*foo.net"}, "ATLASSIAN_PROXY_HOSTS: '*foo.net' is not a host pattern"),
    ({"ATLASSIAN_PROXY_HOSTS": "a.*.net"}, "ATLASSIAN_PROXY_HOSTS: 'a.*.net' is not a host pattern"),
    ({"ATLASSIAN_PROXY_HOSTS": r"atlassian\.net$"}, "ATLASSIAN_PROXY_HOSTS:"),
    ({"ATLASSIAN_PROXY_HOSTS": " , "}, "ATLASSIAN_PROXY_HOSTS: is empty"),
    ({"ATLASSIAN_PROXY_LISTEN_PORT": "http"}, "ATLASSIAN_PROXY_LISTEN_PORT:"),
    ({"ATLASSIAN_PROXY_LISTEN_PORT": "70000"}, "ATLASSIAN_PROXY_LISTEN_PORT:"),
    ({"ATLASSIAN_PROXY_CONNECT_TO": "acme.atlassian.net"}, "ATLASSIAN_PROXY_CONNECT_TO: 'acme.atlassian.net' is not"),
    ({"ATLASSIAN_PROXY_CONNECT_TO": "*.atlassian.net=127.0.0.1:0"}, "ATLASSIAN_PROXY_CONNECT_TO:"),
    ({"ATLASSIAN_PROXY_EMAIL": "not-an-email"}, "ATLASSIAN_PROXY_EMAIL: 'not-an-email' is not an email address"),
    ({"ATLASSIAN_PROXY_EMAIL": None}, "ATLASSIAN_PROXY_EMAIL is not set"),
    ({"ATLASSIAN_PROXY_API_TOKEN": ""}, "ATLASSIAN_PROXY_API_TOKEN: the token is empty"),
    ({"ATLASSIAN_PROXY_API_TOKEN_FILE": "/nonexistent/token"}, "ATLASSIAN_PROXY_API_TOKEN_FILE:"),
    ({"ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE": "/nonexistent/ca.pem"}, "ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE:"),
    ({"ATLASSIAN_PROXY_CONFIG": "/nonexistent/config.toml"}, "ATLASSIAN_PROXY_CONFIG:"),
    ({"ATLASSIAN_PROXY_UPSTREAM_POOL": "maybe"}, "ATLASSIAN_PROXY_UPSTREAM_POOL:"),
    ({"ATLASSIAN_PROXY_UPSTREAM_POOL_SIZE": "0"}, "ATLASSIAN_PROXY_UPSTREAM_POOL_SIZE:"),
    (
        {"ATLASSIAN_PROXY_API_TOKEN": None},
        "no API token: set ATLASSIAN_PROXY_API_TOKEN, or ATLASSIAN_PROXY_API_TOKEN_FILE to a file holding it, "
        "or store it in the keyring with `atlassian-auth-proxy login`; the keyring cannot be used: no OS keyring",
    ),
]


@pytest.mark.parametrize(
    ("env", "expected"), BAD, ids=[expected.split(":")[0] + "-" + str(i) for i, (_, expected) in enumerate(BAD)]
)
def test_bad_settings_exit_2_with_one_line(tmp_path, env, expected):
    base = {k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_PROXY_")}
    base.update(
        ATLASSIAN_PROXY_EMAIL=EMAIL,
        ATLASSIAN_PROXY_API_TOKEN=TOKEN_24,
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    base.update(env)
    result = run_cli(
        "run",
        env={k: v for k, v in base.items() if v is not None},
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"atlassian-auth-proxy: error: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert TOKEN_24 not in result.stderr + result.stdout


def test_malformed_toml_names_the_file(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("hosts = [\n")
    result = run_cli("run", "--config", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"atlassian-auth-proxy: error: --config: {config} is not valid TOML")


def test_bad_flag_is_named_as_a_flag(tmp_path):
    result = run_cli("run", "--listen-port", "99999")
    assert result.returncode == 2
    assert result.stderr.startswith("atlassian-auth-proxy: error: --listen-port:")


def test_a_cloud_site_takes_no_product(clean_env):
    config = clean_env / "cloud.toml"
    config.write_text(ACME_SITE + 'product = "confluence"\n')
    with pytest.raises(SettingsError, match="Atlassian Cloud hosts and scoped sites have Cloud's layout"):
        load_settings(config)
    result = run_cli("check", env={**os.environ, "ATLASSIAN_PROXY_CONFIG": str(config), "T": TOKEN_24})
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1

"""What clients need to use and trust the proxy: `atlassian-auth-proxy env` and the CA bundle.

Clients that replace their trust store (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`,
`GIT_SSL_CAINFO`) get a bundle of the public CAs plus the proxy's CA, so hosts the proxy only
tunnels keep working with their own certificates. Node adds `NODE_EXTRA_CA_CERTS` to its own
store, so it gets the proxy's CA alone.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys
from pathlib import Path
from urllib.parse import quote

import certifi

from proxy_addon.settings import ENV_PREFIX, Settings, SettingsError, load_settings

CA_CERT_NAME = "mitmproxy-ca-cert.pem"
CLIENT_BUNDLE_NAME = "atlassian-auth-proxy-ca-bundle.pem"
NO_PROXY = "localhost,127.0.0.1,::1"
SHELLS = ("sh", "fish", "powershell")


def write_client_bundle(confdir: Path) -> Path | None:
    """Write `<confdir>/atlassian-auth-proxy-ca-bundle.pem` (public CAs + the proxy's CA), atomically."""
    ca = confdir / CA_CERT_NAME
    if not ca.is_file():
        return None
    bundle = confdir / CLIENT_BUNDLE_NAME
    partial = bundle.with_suffix(".partial")
    partial.write_text(Path(certifi.where()).read_text() + "\n" + ca.read_text())
    partial.replace(bundle)
    return bundle


def client_host(listen_host: str) -> str:
    """The address a local client dials: the listen host, or loopback when it listens everywhere."""
    if listen_host in ("", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        return "127.0.0.1"
    try:
        return f"[{listen_host}]" if ipaddress.ip_address(listen_host).version == 6 else listen_host
    except ValueError:
        return listen_host


def variables(settings: Settings) -> dict[str, str]:
    """Every variable `env` exports, in order."""
    if settings.listen_port == 0:
        raise SettingsError(
            f"{ENV_PREFIX}LISTEN_PORT is 0 (a random port): set the port the proxy runs with, e.g. 8080"
        )
    login = settings.proxy_login
    userinfo = f"{quote(login.user, safe='')}:{quote(login.password.get_secret_value(), safe='')}@" if login else ""
    proxy = f"http://{userinfo}{client_host(settings.listen_host)}:{settings.listen_port}"
    bundle = str(settings.confdir / CLIENT_BUNDLE_NAME)
    return {
        "HTTPS_PROXY": proxy,
        "https_proxy": proxy,
        "HTTP_PROXY": proxy,
        "http_proxy": proxy,
        "NO_PROXY": NO_PROXY,
        "no_proxy": NO_PROXY,
        "SSL_CERT_FILE": bundle,
        "REQUESTS_CA_BUNDLE": bundle,
        "CURL_CA_BUNDLE": bundle,
        "GIT_SSL_CAINFO": bundle,
        "NODE_EXTRA_CA_CERTS": str(settings.confdir / CA_CERT_NAME),
        "NODE_USE_ENV_PROXY": "1",
    }


def fish_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def powershell_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def render(names: dict[str, str], shell: str) -> str:
    if shell == "fish":
        lines = [f"set -gx {name} {fish_quote(value)};" for name, value in names.items()]
    elif shell == "powershell":
        lines = [f"$env:{name} = {powershell_quote(value)}" for name, value in names.items()]
    else:
        lines = [f"export {name}={shlex.quote(value)}" for name, value in names.items()]
    return "\n".join(lines) + "\n"


def env_command(args: argparse.Namespace) -> int:
    """`atlassian-auth-proxy env`: print the exports; warn on stderr if the proxy never made its CA."""
    settings = load_settings(args.config, listen_host=args.listen_host, listen_port=args.listen_port)
    sys.stdout.write(render(variables(settings), args.shell))
    if not (settings.confdir / CLIENT_BUNDLE_NAME).is_file():
        print(
            f"note: {settings.confdir / CLIENT_BUNDLE_NAME} does not exist yet; "
            "it is written when `atlassian-auth-proxy run` starts",
            file=sys.stderr,
        )
    return 0

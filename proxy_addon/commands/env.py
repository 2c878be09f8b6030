"""`atlassian-auth-proxy env`: the exports that make clients use and trust the proxy.

Clients that replace their trust store (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`,
`GIT_SSL_CAINFO`) get the bundle `run` writes (public CAs plus the proxy's CA, see
`runtime.trust`), so hosts the proxy only tunnels keep working with their own certificates.
Node adds `NODE_EXTRA_CA_CERTS` to its own store, so it gets the proxy's CA alone. The JVM
reads none of these: `JAVA_TOOL_OPTIONS` gives it the proxy as system properties and the same
CAs as the PKCS12 truststore `run` writes next to the bundle.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys
from urllib.parse import quote

from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.runtime.trust import CA_CERT_NAME, CLIENT_BUNDLE_NAME, TRUSTSTORE_NAME, TRUSTSTORE_PASSWORD
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import SettingsError, env_name

NO_PROXY = "localhost,127.0.0.1,::1"


def client_host(listen_host: str) -> str:
    """The address a local client dials: the listen host, or loopback when it listens everywhere."""
    if listen_host in ("", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
        return "127.0.0.1"
    try:
        return f"[{listen_host}]" if ipaddress.ip_address(listen_host).version == 6 else listen_host
    except ValueError:
        return listen_host


def login_of(settings: Settings, client: str | None) -> ProxyLogin | None:
    """The login the exported proxy URL carries: the named client's, else PROXY_AUTH's."""
    if client is None:
        return settings.proxy_login
    entry = settings.client_table.get(client)
    if entry is None:
        names = ", ".join(settings.client_table.clients) or "none: the settings have no [[clients]]"
        raise SettingsError(f"--client: no client is named {client!r} in [[clients]] (the clients are: {names})")
    return entry.login


def variables(settings: Settings, client: str | None = None) -> dict[str, str]:
    """Every variable `env` exports, in order; with `client`, the proxy URL carries that client's login."""
    if settings.listen_port == 0:
        raise SettingsError(
            f"{env_name('listen_port')} is 0 (a random port): set the port the proxy runs with, e.g. 8080"
        )
    login = login_of(settings, client)
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
        "JAVA_TOOL_OPTIONS": java_tool_options(settings),
    }


def java_property(name: str, value: str) -> str:
    """One `-Dname=value`; the JVM splits JAVA_TOOL_OPTIONS on white space outside quotes."""
    option = f"-D{name}={value}"
    return f'"{option}"' if any(c.isspace() for c in option) else option


def java_tool_options(settings: Settings) -> str:
    """The proxy, the hosts that bypass it (NO_PROXY's, in Java's syntax) and the truststore, for any JVM.

    Java's proxy properties cannot carry a proxy login; with `proxy_auth` a Java client must
    set an Authenticator itself (and allow Basic for tunnels), see docs/how-to/java.md.
    """
    host = client_host(settings.listen_host)
    port = str(settings.listen_port)
    bypass = "|".join(f"[{h}]" if ":" in h else h for h in NO_PROXY.split(","))
    properties = {
        "https.proxyHost": host,
        "https.proxyPort": port,
        "http.proxyHost": host,
        "http.proxyPort": port,
        "http.nonProxyHosts": bypass,
        "javax.net.ssl.trustStore": str(settings.confdir / TRUSTSTORE_NAME),
        "javax.net.ssl.trustStoreType": "PKCS12",
        "javax.net.ssl.trustStorePassword": TRUSTSTORE_PASSWORD,
    }
    return " ".join(java_property(name, value) for name, value in properties.items())


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
    sys.stdout.write(render(variables(settings, args.client), args.shell))
    if not (settings.confdir / CLIENT_BUNDLE_NAME).is_file():
        print(
            f"note: {settings.confdir / CLIENT_BUNDLE_NAME} does not exist yet; "
            "it is written when `atlassian-auth-proxy run` starts",
            file=sys.stderr,
        )
    return 0

"""The `atlassian-auth-proxy` command."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from proxy_addon.commands.handoff import take_over
from proxy_addon.settings.names import SettingsError

PROG = "atlassian-auth-proxy"
SHELLS = ("sh", "fish", "powershell")


def iso_date(text: str) -> date:
    """`--expires`: argparse names the flag and exits 2 on a malformed date."""
    from proxy_addon.settings.values import parse_date

    try:
        day: date = parse_date(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return day


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="A forward proxy that adds your Atlassian API token to HTTPS requests for Atlassian Cloud.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the proxy in the foreground")
    run.add_argument("--listen-host", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--listen-port", type=int, help="port to listen on (default 8080; 0 picks a free one)")
    run.add_argument("--config", type=Path, help="TOML settings file (else ATLASSIAN_PROXY_CONFIG)")
    run.add_argument(
        "--reverse",
        metavar="URL",
        help="serve a plain-HTTP base URL on loopback that forwards to this site, e.g. https://acme.atlassian.net",
    )
    login = commands.add_parser(
        "login", help="store the API token in the OS keyring (read from a hidden prompt, or stdin)"
    )
    login.add_argument("--email", help="your Atlassian account email (else ATLASSIAN_PROXY_EMAIL)")
    login.add_argument(
        "--site", help="your site, e.g. acme.atlassian.net: verify there and send credentials only there"
    )
    login.add_argument(
        "--client-id",
        metavar="ID",
        help="store a service account's client secret (OAuth client credentials) instead of an API token",
    )
    login.add_argument("--no-verify", dest="verify", action="store_false", help="store without asking the site")
    login.add_argument(
        "--expires",
        type=iso_date,
        metavar="DATE",
        help="the token's expiry date (YYYY-MM-DD, shown when you created it): warns 14 days ahead",
    )
    logout = commands.add_parser("logout", help="remove the stored token from the OS keyring")
    logout.add_argument("--email", help="your Atlassian account email (else ATLASSIAN_PROXY_EMAIL)")
    logout.add_argument("--site", help="with [[sites]] configured: the name of the site whose token to remove")
    logout.add_argument("--client-id", metavar="ID", help="remove this service account's client secret instead")
    commands.add_parser(
        "check", help="verify the configured credentials against the site's identity page (Cloud: /rest/api/3/myself)"
    )
    env = commands.add_parser("env", help="print the exports that make clients use and trust the proxy")
    env.add_argument(
        "--shell", choices=("sh", "fish", "powershell"), default="sh", help="syntax of the exports (default sh)"
    )
    env.add_argument("--listen-host", help="the proxy's listen address, if not from the settings")
    env.add_argument("--listen-port", type=int, help="the proxy's port, if not from the settings")
    env.add_argument("--config", type=Path, help="TOML settings file (else ATLASSIAN_PROXY_CONFIG)")
    env.add_argument("--client", metavar="NAME", help="with [[clients]]: put this client's login in the proxy URL")
    health = commands.add_parser("health", help="exit 0 if the running proxy's /healthz says ok (for probes)")
    health.add_argument("--config", type=Path, help="TOML settings file (else ATLASSIAN_PROXY_CONFIG)")
    health.add_argument(
        "--live",
        action="store_true",
        help="ask /livez instead: fails only when the proxy cannot serve (for probes that restart it)",
    )
    exec_ = commands.add_parser(
        "exec",
        help="run a command (e.g. an MCP server) through a proxy of its own on a free loopback port",
        description="Start the proxy, run CMD with the exports `env` prints, stop the proxy when CMD ends, "
        "and exit with CMD's exit code (2 if the proxy cannot start).",
    )
    exec_.add_argument("--listen-host", help="address to listen on (default 127.0.0.1)")
    exec_.add_argument("--listen-port", type=int, default=0, help="port to listen on (default: a free one)")
    exec_.add_argument("--config", type=Path, help="TOML settings file (else ATLASSIAN_PROXY_CONFIG)")
    exec_.add_argument("--client", metavar="NAME", help="with [[clients]]: CMD uses the proxy as this client")
    exec_.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]", help="the command to run")
    commands.add_parser("demo", help="show what the proxy does, on loopback, without an account")
    return parser


COMMANDS = {
    "run": ("run", "run_command"),
    "login": ("account", "login_command"),
    "logout": ("account", "logout_command"),
    "check": ("account", "check_command"),
    "env": ("env", "env_command"),
    "health": ("health", "health_command"),
    "demo": ("demo", "demo_command"),
    "exec": ("exec", "exec_command"),
}
"""Each command's module and function, imported only when it runs: a health probe must not pay for mitmproxy."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        take_over()  # secrets `exec` handed over: before anything reads the environment
    except SettingsError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        module, function = COMMANDS[args.command]
        command: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(f"proxy_addon.commands.{module}"), function
        )
        return command(args)
    except SettingsError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

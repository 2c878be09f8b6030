"""The `atlassian-auth-proxy` command."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from mitmproxy.exceptions import OptionsError

from proxy_addon.admin import health_command
from proxy_addon.clientenv import SHELLS, env_command
from proxy_addon.credentials import resolve_credentials
from proxy_addon.demo import demo_command
from proxy_addon.settings import SettingsError, load_settings

PROG = "atlassian-auth-proxy"


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
    env = commands.add_parser("env", help="print the exports that make clients use and trust the proxy")
    env.add_argument("--shell", choices=SHELLS, default="sh", help="syntax of the exports (default sh)")
    env.add_argument("--listen-host", help="the proxy's listen address, if not from the settings")
    env.add_argument("--listen-port", type=int, help="the proxy's port, if not from the settings")
    env.add_argument("--config", type=Path, help="TOML settings file (else ATLASSIAN_PROXY_CONFIG)")
    health = commands.add_parser("health", help="exit 0 if the running proxy's /healthz says ok (for probes)")
    health.add_argument("--config", type=Path, help="TOML settings file (else ATLASSIAN_PROXY_CONFIG)")
    commands.add_parser("demo", help="show what the proxy does, on loopback, without an account")
    return parser


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config, listen_host=args.listen_host, listen_port=args.listen_port)
    credentials = resolve_credentials(settings)

    from proxy_addon.server import serve

    asyncio.run(serve(settings, credentials))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {"run": run, "env": env_command, "health": health_command, "demo": demo_command}
        return commands[args.command](args)
    except (SettingsError, OptionsError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""`atlassian-auth-proxy run`: check every setting and read every token, then serve.

On Linux the proxy first makes itself non-dumpable (`handoff.undumpable`): other processes of
the same user cannot read its memory, where the tokens are, nor its environment, nor trace it.
"""

from __future__ import annotations

import argparse
import asyncio

from mitmproxy.exceptions import OptionsError

from proxy_addon.commands.handoff import undumpable
from proxy_addon.credentials.sources import resolve_sites
from proxy_addon.runtime.server import serve
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.names import SettingsError


def run_command(args: argparse.Namespace) -> int:
    undumpable()
    settings = load_settings(
        args.config, listen_host=args.listen_host, listen_port=args.listen_port, reverse=args.reverse
    )
    given = resolve_sites(settings)
    try:
        asyncio.run(serve(settings, given))
    except OptionsError as e:
        raise SettingsError(str(e)) from None
    return 0

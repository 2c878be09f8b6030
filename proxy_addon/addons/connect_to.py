"""CONNECT_TO: send the TCP connection for a host elsewhere, like curl's --connect-to.

The redirect happens at name resolution, below mitmproxy's view: mitmproxy still believes it
talks to the original name, so `request.host`, SNI, certificate checks and every credential
decision keep using it. (Rewriting `server.address` in `server_connect` would instead make
mitmproxy report the new address as the request's host.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from proxy_addon.addons.mitmproxy_internals import redirect_name_resolution
from proxy_addon.addons.prepared import Prepared
from proxy_addon.policy.connect_rules import ConnectToRule, find_rule

logger = logging.getLogger(__name__)


class ConnectTo:
    """Redirects the running loop's name resolution while the proxy runs; restores it when done.

    It is installed as soon as rules are set inside a running loop (at configure time), so no
    connection accepted before the `running` hook can slip past it to real DNS.
    """

    def __init__(self) -> None:
        self.rules: tuple[ConnectToRule, ...] = ()
        self._restore: Callable[[], None] | None = None

    def use(self, prepared: Prepared) -> None:
        self.rules = prepared.settings.connect_to
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.running()

    def running(self) -> None:
        if self.rules and self._restore is None:
            self._restore = redirect_name_resolution(asyncio.get_running_loop(), self._target)

    def done(self) -> None:
        if self._restore is not None:
            self._restore()
            self._restore = None

    def _target(self, host: str, port: Any) -> tuple[str, int] | None:
        rule = find_rule(self.rules, host)
        if rule is None:
            return None
        logger.debug("connect-to: %s:%s -> %s:%s", host, port, rule.host, rule.port)
        return rule.host, rule.port

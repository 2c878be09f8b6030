"""CONNECT_TO: send the TCP connection for a host elsewhere, like curl's --connect-to.

The redirect happens at name resolution, below mitmproxy's view: mitmproxy still believes it
talks to the original name, so `request.host`, SNI, certificate checks and every credential
decision keep using it. (Rewriting `server.address` in `server_connect` would instead make
mitmproxy report the new address as the request's host.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from proxy_addon.addons.prepared import Prepared
from proxy_addon.policy.connect_rules import ConnectToRule, find_rule

logger = logging.getLogger(__name__)


class ConnectTo:
    """Wraps the event loop's resolver while the proxy runs; restores it when done.

    It is installed as soon as rules are set inside a running loop (at configure time), so no
    connection accepted before the `running` hook can slip past it to real DNS.
    """

    def __init__(self) -> None:
        self.rules: tuple[ConnectToRule, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None

    def use(self, prepared: Prepared) -> None:
        self.rules = prepared.settings.connect_to
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.running()

    def running(self) -> None:
        if not self.rules or self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        original = self._loop.getaddrinfo

        async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> Any:
            rule = find_rule(self.rules, host) if isinstance(host, str) else None
            if rule is None:
                return await original(host, port, **kwargs)
            logger.debug("connect-to: %s:%s -> %s:%s", host, port, rule.host, rule.port)
            return await original(rule.host, rule.port, **kwargs)

        self._loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]

    def done(self) -> None:
        if self._loop is not None:
            del self._loop.getaddrinfo
            self._loop = None

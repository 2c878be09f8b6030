"""CONNECT_TO moves a host's TCP connections below mitmproxy's view, while the proxy runs, and is undone at the end."""

from __future__ import annotations

import asyncio
import socket

from proxy_addon.addons.connect_to import ConnectTo
from proxy_addon.addons.prepared import Prepared
from proxy_addon.settings.model import Settings


def resolved(loop: asyncio.AbstractEventLoop, host: str, port: int):
    return loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)


def test_a_matching_name_resolves_to_the_rules_address_until_done():
    addon = ConnectTo()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        addon.use(Prepared(settings=Settings(connect_to="*.atlassian.net=127.0.0.1:8443")))
        [(*_, address)] = await loop.getaddrinfo("acme.atlassian.net", 443, type=socket.SOCK_STREAM)
        assert address == ("127.0.0.1", 8443)
        [(*_, address)] = await resolved(loop, "127.0.0.2", 443)
        assert address == ("127.0.0.2", 443), "other names resolve as before"
        addon.done()
        assert "getaddrinfo" not in vars(loop), "the loop's own resolution is back"

    asyncio.run(run())


def test_without_rules_or_a_running_loop_nothing_is_redirected():
    addon = ConnectTo()
    addon.use(Prepared(settings=Settings(connect_to="*.atlassian.net=127.0.0.1:8443")))
    assert addon._restore is None, "configured outside a loop: installed by `running`"

    async def run() -> None:
        empty = ConnectTo()
        empty.use(Prepared())
        assert "getaddrinfo" not in vars(asyncio.get_running_loop())

    asyncio.run(run())

"""Closing a live connection from an addon, which mitmproxy offers no hook for.

`Flow.kill()` does not reach a flow waiting for its upstream (mitmproxy issue #4711), and no
hook fires while a client is still sending its request head. The proxyserver addon keeps a
handler per client connection; its `close_connection` is what mitmproxy's own layers use.
"""

from __future__ import annotations

from mitmproxy import connection, ctx


def close(client: connection.Client, conn: connection.Connection) -> bool:
    """Close `conn` (the client's own connection or one of its upstream ones); False if already gone."""
    handler = ctx.master.addons.get("proxyserver").connections.get(client.id)
    if handler is None or conn not in handler.transports:
        return False
    handler.close_connection(conn)
    return True

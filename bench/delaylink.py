"""A TCP relay on loopback that adds a fixed round-trip time: a stand-in for a WAN link.

Why not `tc netem`? It is the usual tool, but many kernels (including the CI and dev VMs this
was written on) are built without `sch_netem`, and it needs root. A relay works everywhere
and models what matters for request latency: every byte takes RTT/2 each way, and the first
bytes a client sends wait one extra RTT for the TCP handshake the relay answers locally (the
client's connect() returns at once; on a real link it would take one RTT). It does not model
bandwidth, loss or slow start, so only use it for latency, not for bulk transfers.

Run: python delaylink.py --listen-port L --target-port T --rtt-ms 50  (prints "ready" when listening)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

HOST = "127.0.0.1"
READ_SIZE = 65536


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, not_before: float) -> None:
    """Copy one direction, delivering each chunk `delay` after it arrived (and not before `not_before`).

    Chunks go through a queue so that a slow delivery never stalls reading: the delay is
    latency, not a bandwidth cap.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not data:
                break
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    delivery = asyncio.create_task(deliver())
    try:
        while data := await reader.read(READ_SIZE):
            queue.put_nowait((max(loop.time(), not_before) + delay, data))
    except OSError:
        pass
    queue.put_nowait((max(loop.time(), not_before) + delay, b""))
    with contextlib.suppress(OSError):
        await delivery


async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, target_port: int, rtt: float) -> None:
    """One client connection: its first bytes leave one RTT (the handshake) plus RTT/2 after accept."""
    accepted = asyncio.get_running_loop().time()
    try:
        server_r, server_w = await asyncio.open_connection(HOST, target_port)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(
        pump(client_r, server_w, rtt / 2, accepted + rtt),
        pump(server_r, client_w, rtt / 2, 0.0),
    )
    for w in (client_w, server_w):
        w.close()


async def main(listen_port: int, target_port: int, rtt_ms: float) -> None:
    rtt = rtt_ms / 1000
    server = await asyncio.start_server(lambda r, w: relay(r, w, target_port, rtt), HOST, listen_port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.listen_port, args.target_port, args.rtt_ms))

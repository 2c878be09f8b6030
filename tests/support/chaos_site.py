"""A TLS stand-in for a site that gives up on connections: idle ones after a while, at random, as a request arrives.

It answers every request 200 with a small JSON body (HTTP/1.1, keep-alive) and records what
reached it. Each connection has a lifetime, drawn from `lifetime` (a range in seconds), counted
from its accept and again from each answer: a connection idle that long is closed, with a TCP
reset for a `reset_share` of them and a FIN for the rest, whether its TLS handshake finished or
not (a proxy's warm connection waits in the middle of one). With `close_on_arrival`, a connection
that waited at least `ARRIVAL_AGE` before its first request (a warm one) is closed as that request
arrives, with that probability: the race in which a proxy sends a request on a connection the site
is just dropping. `wrong` switches to a certificate for another name.

    python tests/support/chaos_site.py --seed 5    # as a process (the bench): prints its port, then serves
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import ssl
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ARRIVAL_AGE = 0.15
BODY = b'{"accountId":"chaos"}'


@dataclass
class Arrived:
    """One request as the site received it."""

    method: str
    path: str
    authorization: str | None
    connection: int


@dataclass
class ChaosSite:
    good: ssl.SSLContext
    wrong: ssl.SSLContext
    lifetime: tuple[float, float] = (0.2, 2.0)
    reset_share: float = 0.5
    close_on_arrival: float = 0.0
    seed: int = 0
    arrival_age: float = ARRIVAL_AGE
    use_wrong: bool = False
    requests: list[Arrived] = field(default_factory=list)
    accepted: int = 0
    closed_idle: int = 0
    closed_on_arrival: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None

    def _deadline(self) -> float:
        return time.monotonic() + self.rng.uniform(*self.lifetime)

    def _hang_up(self, writer: asyncio.StreamWriter) -> None:
        if self.rng.random() < self.reset_share:
            with contextlib.suppress(OSError):
                writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self.lock:
            self.accepted += 1
            number = self.accepted
        accepted = time.monotonic()
        deadline = self._deadline()
        try:
            await asyncio.wait_for(writer.start_tls(self.wrong if self.use_wrong else self.good), deadline - accepted)
            first = True
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), max(0.0, deadline - time.monotonic()))
                if (
                    first
                    and time.monotonic() - accepted >= self.arrival_age
                    and self.rng.random() < self.close_on_arrival
                ):
                    self.closed_on_arrival += 1
                    self._hang_up(writer)
                    return
                first = False
                await self._answer(head, reader, writer, number)
                deadline = self._deadline()
        except TimeoutError:
            self.closed_idle += 1
            self._hang_up(writer)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            writer.close()

    async def _answer(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:] if line)}
        if length := int(headers.get("content-length", "0")):
            await reader.readexactly(length)
        with self.lock:
            self.requests.append(Arrived(method, path, headers.get("authorization"), n))
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)
        )
        await writer.drain()

    async def serve(self, ready: threading.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if ready is not None:
            ready.set()
        async with self._server:
            with contextlib.suppress(asyncio.CancelledError):
                await self._server.serve_forever()

    def start(self) -> ChaosSite:
        """Serve from a thread of this process; returns once it listens."""
        ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self.serve(ready)), daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("the chaos site did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "closed_idle": self.closed_idle,
            "closed_on_arrival": self.closed_on_arrival,
            "requests": len(self.requests),
            "without_authorization": sum(1 for seen in self.requests if not seen.authorization),
        }


def server_context(cert: Any) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    return context


def main() -> int:
    import trustme

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ca", required=True, help="write the CA that issued its certificate here")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--close-on-arrival", type=float, default=0.3)
    parser.add_argument("--lifetime", type=float, nargs=2, default=(0.2, 2.0), help="idle lifetime range, seconds")
    parser.add_argument(
        "--arrival-age", type=float, default=ARRIVAL_AGE, help="behind a slow link a fresh connection is this old too"
    )
    args = parser.parse_args()
    ca = trustme.CA()
    ca.cert_pem.write_to_path(args.ca)
    site = ChaosSite(
        server_context(ca.issue_cert("acme.atlassian.net", "*.atlassian.net")),
        server_context(ca.issue_cert("wrong.example.test")),
        close_on_arrival=args.close_on_arrival,
        arrival_age=args.arrival_age,
        lifetime=tuple(args.lifetime),
        seed=args.seed,
        port=args.port,
    )

    def report(*_: object) -> None:
        print(json.dumps(site.summary()), flush=True)
        os._exit(0)

    import signal

    signal.signal(signal.SIGTERM, report)
    ready = threading.Event()
    threading.Thread(target=lambda: asyncio.run(site.serve(ready)), daemon=True).start()
    ready.wait(10)
    print(site.port, flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A minimal corporate proxy on loopback: records each CONNECT and relays it to the stand-in;
answers a plain-http request itself with 200, after recording it."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Seen:
    connects: list[tuple[str, str | None]] = field(default_factory=list)
    """Each CONNECT's target and its (first) Proxy-Authorization."""
    plain: list[tuple[str, str, str | None]] = field(default_factory=list)
    """Each plain request's method, target and (first) Proxy-Authorization."""
    heads: list[str] = field(default_factory=list)
    """Every request head as it arrived, CONNECT or plain."""


class _Handler(socketserver.BaseRequestHandler):
    server: CorpProxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        auth = next(
            (line.split(":", 1)[1].strip() for line in lines[1:] if line.lower().startswith("proxy-authorization:")),
            None,
        )
        self.server.seen.heads.append(head.decode("latin-1"))
        if method != "CONNECT":
            self.server.seen.plain.append((method, target, auth))
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\ncorp")
            return
        self.server.seen.connects.append((target, auth))
        upstream = socket.create_connection(("127.0.0.1", self.server.relay_port), timeout=30)
        self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        pipes = [
            threading.Thread(target=_pipe, args=pair, daemon=True)
            for pair in ((self.request, upstream), (upstream, self.request))
        ]
        for pipe in pipes:
            pipe.start()
        for pipe in pipes:
            pipe.join(60)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class CorpProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, relay_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.relay_port = relay_port
        self.seen = Seen()

    @property
    def port(self) -> int:
        return self.server_address[1]


def start(relay_port: int) -> CorpProxy:
    server = CorpProxy(relay_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

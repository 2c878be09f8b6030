"""A minimal corporate CONNECT proxy on loopback: records each CONNECT, relays to the stand-in."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Seen:
    connects: list[tuple[str, str | None]] = field(default_factory=list)


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
        self.server.seen.connects.append((target, auth))
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
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

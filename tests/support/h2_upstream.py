"""An HTTP/2-only TLS stand-in, so the proxy speaks HTTP/2 to clients and `:authority` is tested."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from typing import Any

import h2.config
import h2.connection
import h2.events

from support.upstream import Record, Seen, send_events


class H2Server:
    def __init__(self, cert: Any) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.context)
        self.context.set_alpn_protocols(["h2"])
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.record = Record()
        self.lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(raw,), daemon=True).start()

    def _connection(self, raw: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with tls:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
            conn.initiate_connection()
            tls.sendall(conn.data_to_send())
            while data := tls.recv(65536):
                with self.lock:
                    for event in conn.receive_data(data):
                        if isinstance(event, h2.events.RequestReceived):
                            self._answer(conn, tls, event)
                    tls.sendall(conn.data_to_send())

    def _answer(self, conn: h2.connection.H2Connection, tls: ssl.SSLSocket, event: h2.events.RequestReceived) -> None:
        headers = [
            (k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v)
            for k, v in event.headers
        ]
        path = dict(headers).get(":path", "")
        with self.record.lock:
            self.record.requests.append(Seen("GET", path, headers, None))
        if path == "/events":
            self._events(conn, tls, event.stream_id)
            return
        body = json.dumps({"path": path}).encode()
        conn.send_headers(
            event.stream_id,
            [(":status", "200"), ("content-type", "application/json"), ("content-length", str(len(body)))],
        )
        conn.send_data(event.stream_id, body, end_stream=True)

    def _events(self, conn: h2.connection.H2Connection, tls: ssl.SSLSocket, stream_id: int) -> None:
        """An event stream without content-length, sent from its own thread as the test releases it."""
        conn.send_headers(stream_id, [(":status", "200"), ("content-type", "text/event-stream")])

        def write(data: bytes) -> None:
            with self.lock:
                conn.send_data(stream_id, data)
                tls.sendall(conn.data_to_send())

        def stream() -> None:
            send_events(self.record, write)
            with self.lock:
                conn.end_stream(stream_id)
                tls.sendall(conn.data_to_send())

        threading.Thread(target=stream, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

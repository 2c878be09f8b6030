"""A TLS server on loopback that poses as Atlassian sites and records what reaches it."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CHUNK = 1 << 20
RENAMED_FROM = "old-acme.atlassian.net"
"""A site's former name: every path redirects to the same path on acme.atlassian.net."""
SCOPE_401_HEADERS = {"X-Failure-Category": "FAILURE_CLIENT_SCOPE_CHECK"}
CLOUD_ID = "c0ffee00-1234-4abc-9def-00000000acme"
RATE_LIMIT_HEADERS = {
    "Retry-After": "17",
    "X-RateLimit-Limit": "100",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-Reset": "2030-01-01T00:00:00Z",
}


MCP_PATH = "/v1/mcp"
"""The API-token endpoint Atlassian documents for its remote MCP server (`/v1/mcp/authv2` is the OAuth one)."""
MCP_TOOL = "getAccessibleAtlassianResources"
MCP_RESULTS: dict[str, dict[str, Any]] = {
    "initialize": {"capabilities": {"tools": {}}, "serverInfo": {"name": "atlassian-mcp-stand-in", "version": "1"}},
    "tools/list": {"tools": [{"name": MCP_TOOL, "inputSchema": {"type": "object", "properties": {}}}]},
}
EVENTS = 4
EVENT_WAIT_SECONDS = 10

PROJECTS = {"OPS": "10001", "SEC": "10002"}
ISSUES = {"OPS-1": "20001", "OPS-2": "20003", "SEC-1": "20002"}
SPACES = {"ENG": "40001", "HR": "40002"}
PAGES = {"30001": "ENG", "30002": "HR"}
FAILING_ID = "20500"
"""An issue id whose lookup the stand-in answers with 503."""
JIRA_ITEM = re.compile(r"/rest/api/[23]/(issue|project)/([^/]+)")
CONFLUENCE_ITEM = re.compile(r"/wiki/(?:rest/api/content|api/v2/pages|api/v2/spaces)/([0-9]+)")
JQL_SEARCH = re.compile(r"/rest/api/[23]/search(/jql)?")
CQL_SEARCH = re.compile(r"/wiki/rest/api/(content/)?search")
CREATE = re.compile(r"/rest/api/[23]/issue(/bulk)?|/wiki/rest/api/content|/wiki/api/v2/pages")
KNOWLEDGE_BASE = re.compile(r"/rest/servicedeskapi/(servicedesk/[^/]+/)?knowledgebase/article")
CONVERT = re.compile(r"/wiki/rest/api/contentbody/convert/(async/)?[a-z_]+")
APPLINKS_PROXY = re.compile(r"(/wiki)?/plugins/servlet/applinks/proxy")
DATA_CENTER = {"confluence.corp.example": ("/wiki", ""), "tracker.corp.example": ("", "/jira")}
"""Data Center hosts by name: (the canonical prefix of their product, their context path). Confluence
at the root of one, Jira under /jira on the other; every other host has Cloud's layout."""
SEC_ISSUE = "SEC-1: the SEC-1 summary"
"""What a rendered `jira` macro, the application-link proxy or a conversion shows of project SEC."""
HR_ARTICLE = "the HR page: salaries"
"""What the knowledge base shows of space HR."""


def event(number: int) -> bytes:
    return f"id: {number}\ndata: event {number}\n\n".encode()


def send_events(record: Record, write: Any) -> None:
    """Send `EVENTS` server-sent events, each only after the test released it.

    A proxy that holds the body back makes the client wait for an event that the stand-in
    will not send until the client has it: the test's read times out instead of passing.
    """
    for number in range(EVENTS):
        if not record.next_event.acquire(timeout=EVENT_WAIT_SECONDS):
            return
        write(event(number))


def pattern_bytes(size: int) -> bytes:
    """A deterministic, non-repeating-looking block to stream; same bytes for the same size."""
    return hashlib.shake_256(b"atlassian-auth-proxy").digest(size)


BLOCK = pattern_bytes(CHUNK)


def expected_download_digest(total: int) -> str:
    digest = hashlib.sha256()
    remaining = total
    while remaining:
        piece = BLOCK[: min(CHUNK, remaining)]
        digest.update(piece)
        remaining -= len(piece)
    return digest.hexdigest()


@dataclass
class Seen:
    """One request as the site received it."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    sni: str | None

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None


@dataclass
class Limit:
    prefix: str
    headers: dict[str, str]
    times: int


@dataclass
class Record:
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    slow_arrived: threading.Event = field(default_factory=threading.Event)
    slow_release: threading.Event = field(default_factory=threading.Event)
    rejected: set[str] = field(default_factory=set)
    stall_release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_event: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    """Released by a test once its client has the previous event: the stand-in sends no event early."""
    mcp_hold: threading.Event = field(default_factory=threading.Event)
    """Set by a test when it is done: until then each MCP event stream stays open after its answer."""
    chunk_seen: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    """Released by the stand-in for each chunk of a chunked request body, as it arrives."""
    queries: list[str] = field(default_factory=list)
    """Every JQL and CQL a search received, in order (from the URL or the JSON body)."""
    posted: list[dict[str, Any]] = field(default_factory=list)
    """Every JSON body a POST search or a create (issue, bulk, content, v2 page) received."""
    limits: dict[str, list[Limit]] = field(default_factory=dict)
    """By host: the 429s the next requests to it get (`rate_limit`), as Atlassian sends them."""
    limited: list[Seen] = field(default_factory=list)
    """Every request that got one of those 429s."""
    active: int = 0
    """Requests to `/busy` being answered now; `peak` is the most at once."""
    peak: int = 0
    busy_release: threading.Event = field(default_factory=threading.Event)

    def rate_limit(self, host: str, headers: dict[str, str], times: int = 1, prefix: str = "/") -> None:
        """The next `times` requests to `host` whose path starts with `prefix` get 429 with `headers`."""
        with self.lock:
            self.limits.setdefault(host, []).append(Limit(prefix, headers, times))

    def last(self) -> Seen:
        with self.lock:
            return self.requests[-1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: UpstreamServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self) -> None:
        sni = getattr(self.connection, "sni", None)
        with self.server.record.lock:
            self.server.record.requests.append(Seen(self.command, self.path, list(self.headers.items()), sni))

    def _limited(self) -> bool:
        """Answer 429 as Atlassian does, if the test asked for it for this host and path (`Record.rate_limit`)."""
        record = self.server.record
        host = self.headers.get("Host", "").partition(":")[0]
        with record.lock:
            limit = next(
                (lim for lim in record.limits.get(host, []) if self.path.startswith(lim.prefix) and lim.times), None
            )
            if limit is None:
                return False
            limit.times -= 1
            record.limited.append(record.requests[-1])
        self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        self._json(429, {"message": "Rate limit exceeded."}, limit.headers)
        return True

    def _busy(self) -> None:
        """A request the site works on until the test sets `busy_release`; `peak` counts how many at once."""
        record = self.server.record
        with record.lock:
            record.active += 1
            record.peak = max(record.peak, record.active)
        try:
            record.busy_release.wait(30)
        finally:
            with record.lock:
                record.active -= 1
        self._json(200, {"busy": "done"})

    def _json(self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _reject(self) -> bool:
        """Answer like Atlassian does for a revoked token, if this request carries one."""
        if self.headers.get("Authorization") not in self.server.record.rejected:
            return False
        if self.path.startswith("/anonymous"):
            self._json(200, {"anonymous": True}, {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"})
        else:
            self._json(401, {"message": "Client must be authenticated to access this resource."})
        return True

    def _renamed(self) -> bool:
        """Answer like a renamed Atlassian site does under its old name: redirect every path."""
        if self.headers.get("Host", "").partition(":")[0] != RENAMED_FROM:
            return False
        self.send_response(301)
        self.send_header("Location", f"https://acme.atlassian.net{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def _unauthorized_route(self, path: str) -> bool:
        """The 401s a valid token gets: a scoped token without the route's scope, an endpoint wanting admin,
        a login of the request's own that failed (Seraph reads one from any URL's query or form).

        Matched anywhere in the path, so the same routes answer under the gateway's /ex/jira/{cloudId}.
        """
        if "/scope-missing/" in path:
            self._json(401, {"code": 401, "message": "Unauthorized; scope does not match"}, SCOPE_401_HEADERS)
        elif "/needs-admin/" in path:
            message = "You are not authenticated. Authentication required to perform this operation."
            self._json(401, {"errorMessages": [message]})
        elif "/login-failed/" in path:
            self._json(401, {"message": "login failed"}, {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"})
        else:
            return False
        return True

    def do_GET(self) -> None:
        self._record()
        if self._limited():
            return
        url = urlsplit(self.path)
        if url.path == "/busy":
            self._busy()
            return
        if url.path == "/slow":
            self.server.record.slow_arrived.set()
            self.server.record.slow_release.wait(30)
        if self._renamed() or self._reject():
            return
        query = parse_qs(url.query)
        if url.path == "/_edge/tenant_info":
            self._json(200, {"cloudId": CLOUD_ID})
        elif url.path == "/download":
            self._download(int(query["bytes"][0]), chunked="chunked" in query)
        elif url.path == "/slow":
            self._json(200, {"slow": "done"})
        elif self._unauthorized_route(url.path):
            pass
        elif url.path.endswith("/serverInfo"):
            self._json(
                200,
                {
                    "baseUrl": "https://acme.atlassian.net",
                    "versionNumbers": [1001, 0, 0],
                    "deploymentType": "Cloud",
                    "version": "1001.0.0",
                },
            )
        elif url.path.startswith("/status/"):
            self._json(int(url.path.removeprefix("/status/")), {"errorMessages": ["as asked"]})
        elif url.path == "/stall":
            self.server.record.stall_release.wait(30)
            self.close_connection = True
        elif url.path == "/reset":
            self._reset_mid_body()
        elif url.path == MCP_PATH:
            self._json(405, {"error": "this stand-in sends no server-initiated events"})
        elif url.path == "/events":
            self._events(query.get("framing", ["chunked"])[0])
        elif url.path == "/ratelimited":
            self._json(429, {"message": "rate limited"}, RATE_LIMIT_HEADERS)
        elif self._projects_and_spaces(self._canonical(url.path), query):
            pass
        else:
            self._json(
                200,
                {"accountId": "test-account", "displayName": "Test User", "path": self.path},
                {"Set-Cookie": "cloud.session.token=site-session; Path=/; Secure; HttpOnly"},
            )

    def _canonical(self, path: str) -> str:
        """The path in Cloud's form, by the Host header; outside a Data Center host's context, nothing is served."""
        canonical, context = DATA_CENTER.get(self.headers.get("Host", "").partition(":")[0], ("", ""))
        if context and not (path == context or path.startswith(context + "/")):
            return "/not-served" + path
        return canonical + path[len(context) :]

    def _across_products(self, path: str, query: dict[str, list[str]]) -> bool:
        """Routes that show one product's data through the other, as the real sites do."""
        if KNOWLEDGE_BASE.fullmatch(path):
            self._json(200, {"values": [{"title": HR_ARTICLE, "source": {"type": "confluence", "pageId": "30002"}}]})
        elif APPLINKS_PROXY.fullmatch(path):
            self._json(200, {"issues": [{"key": "SEC-1", "fields": {"summary": SEC_ISSUE}}]})
        elif CONVERT.fullmatch(path):
            self._json(200, {"value": f"<table><tr><td>{SEC_ISSUE}</td></tr></table>", "representation": "view"})
        elif CONFLUENCE_ITEM.fullmatch(path) and "view" in query.get("expand", [""])[0]:
            self._json(200, {"id": "30001", "body": {"view": {"value": f"<p>{SEC_ISSUE}</p>"}}})
        else:
            return False
        return True

    def _projects_and_spaces(self, path: str, query: dict[str, list[str]]) -> bool:
        """Jira projects OPS and SEC with their issues, Confluence spaces ENG and HR with a page each."""
        if self._across_products(path, query):
            pass
        elif JQL_SEARCH.fullmatch(path) or CQL_SEARCH.fullmatch(path):
            key = "jql" if "jql" in query or path.startswith("/rest/") else "cql"
            self._searched(query.get(key, [""])[0])
        elif item := JIRA_ITEM.fullmatch(path):
            self._jira_item(item[1], item[2].upper())
        elif item := CONFLUENCE_ITEM.fullmatch(path):
            self._confluence_item(path, item[1])
        else:
            return False
        return True

    def _searched(self, text: str) -> None:
        with self.server.record.lock:
            self.server.record.queries.append(text)
        self._json(200, {"issues": [], "results": [], "received": text})

    def _jira_item(self, kind: str, name: str) -> None:
        if kind == "issue":
            if name == FAILING_ID:
                self._json(503, {"errorMessages": ["unavailable"]})
                return
            key = next((k for k, i in ISSUES.items() if name in (k, i)), None)
            if key is None:
                self._json(404, {"errorMessages": ["Issue does not exist or you do not have permission to see it."]})
                return
            project = key.partition("-")[0]
            fields = {"project": {"id": PROJECTS[project], "key": project}, "summary": f"the {key} summary"}
            self._json(200, {"id": ISSUES[key], "key": key, "fields": fields})
            return
        project = next((k for k, i in PROJECTS.items() if name in (k, i)), None)
        if project is None:
            self._json(404, {"errorMessages": ["No project could be found."]})
        else:
            self._json(200, {"id": PROJECTS[project], "key": project, "name": f"the {project} project"})

    def _confluence_item(self, path: str, number: str) -> None:
        if "/spaces/" in path:
            space = next((k for k, i in SPACES.items() if i == number), None)
            body = {"id": number, "key": space} if space else None
        elif number in PAGES:
            space = PAGES[number]
            body = {"id": number, "title": f"the {space} page", "spaceId": SPACES[space]}
            if "/rest/api/" in path:
                body = {"id": number, "type": "page", "title": f"the {space} page", "space": {"key": space}}
        else:
            body = None
        if body is None:
            self._json(404, {"message": "not found"})
        else:
            self._json(200, body)

    def _reset_mid_body(self) -> None:
        """Promise a body, send part of it, then abort the connection with a TCP reset."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b'{"partial": "')
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _events(self, framing: str) -> None:
        """An event stream of unknown length: chunked, or read until the connection closes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        chunked = framing == "chunked"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()

        def write(data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            self.wfile.flush()

        send_events(self.server.record, write)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _download(self, total: int, chunked: bool = False) -> None:
        """`total` pattern bytes, with a Content-Length or (`chunked`) of a length not told in advance."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header(*(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(total))))
        self.end_headers()
        remaining = total
        while remaining:
            piece = BLOCK[: min(CHUNK, remaining)]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            remaining -= len(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def do_PUT(self) -> None:
        self._record()
        if self._limited():
            return
        if self.path == MCP_PATH:
            self._mcp()
            return
        if self.command == "POST" and self._json_post(self._canonical(urlsplit(self.path).path)):
            return
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._chunked_upload()
            return
        length = int(self.headers.get("Content-Length", "0"))
        digest = hashlib.sha256()
        remaining = length
        while remaining:
            piece = self.rfile.read(min(CHUNK, remaining))
            if not piece:
                break
            digest.update(piece)
            remaining -= len(piece)
        self._json(200, {"sha256": digest.hexdigest(), "bytes": length - remaining})

    def _json_post(self, path: str) -> bool:
        """A POST search (its JQL recorded), a create (its body recorded) or a conversion; False for any other path."""
        search, create = JQL_SEARCH.fullmatch(path), CREATE.fullmatch(path)
        if CONVERT.fullmatch(path):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            return self._across_products(path, {})
        if not (search or create) or "content-length" not in self.headers:
            return False
        data = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            body = json.loads(data or b"{}")
        except ValueError:
            body = {}
        with self.server.record.lock:
            self.server.record.posted.append(body if isinstance(body, dict) else {})
        if search:
            self._searched(body.get("jql", "") if isinstance(body, dict) else "")
        else:
            self._json(201, {"id": "20100", "key": "OPS-100"})
        return True

    def _mcp(self) -> None:
        """Atlassian's remote MCP server, streamable HTTP: each answer is an event on a stream left open.

        The stream ends only when the test sets `mcp_hold`, so a client gets its answer only if
        the proxy passes the event on as it arrives.
        """
        message = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if "id" not in message:  # a notification
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        result = MCP_RESULTS.get(message["method"], {})
        if message["method"] == "initialize":
            result = {**result, "protocolVersion": message["params"]["protocolVersion"]}
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Mcp-Session-Id", "stand-in-session")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        data = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
        event = f"event: message\ndata: {data}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.flush()
        self.server.record.mcp_hold.wait(30)
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def do_DELETE(self) -> None:
        self._record()
        if not self._limited():
            self._json(200, {})

    def _chunked_upload(self) -> None:
        """Read a chunked body chunk by chunk, telling the test about each one as it arrives."""
        total = 0
        while size := int(self.rfile.readline().split(b";")[0], 16):
            total += len(self.rfile.read(size))
            self.rfile.readline()
            self.server.record.chunk_seen.release()
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        self._json(200, {"bytes": total})

    do_POST = do_PUT


class LoopbackServer(ThreadingHTTPServer):
    """An HTTP server on a free loopback port, each connection TLS with `context` (plain without one);
    a connection whose handshake fails is dropped."""

    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.context = context

    @property
    def port(self) -> int:
        return self.server_address[1]

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(tls, client_address)


class UpstreamServer(LoopbackServer):
    def __init__(self, context: ssl.SSLContext | None) -> None:
        super().__init__(context, Handler)
        self.record = Record()

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        with self.record.lock:
            self.record.connections += 1
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def make_context(cert: Any, alpn: list[str] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    if alpn:
        context.set_alpn_protocols(alpn)

    def remember_sni(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sock.sni = name  # type: ignore[attr-defined]

    context.sni_callback = remember_sni
    return context


def start(cert: Any | None, alpn: list[str] | None = None) -> UpstreamServer:
    """A TLS stand-in with `cert`, or a plain-http one without.

    `alpn=["h2"]` makes a broken site: it agrees to HTTP/2, then answers in HTTP/1.
    """
    server = UpstreamServer(make_context(cert, alpn) if cert is not None else None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

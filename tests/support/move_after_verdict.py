"""A mitmdump script, loaded after the proxy's addon, that moves requests in its `request` hook, after the
proxy's verdict, as `map_remote` or any other addon might: `/elsewhere/...` to another host, and a path
naming OPS-1 to SEC-1."""

from mitmproxy import http


def request(flow: http.HTTPFlow) -> None:
    if flow.request.path.startswith("/elsewhere/"):
        flow.request.host = "other.example.test"
    elif "OPS-1" in flow.request.path:
        flow.request.path = flow.request.path.replace("OPS-1", "SEC-1")

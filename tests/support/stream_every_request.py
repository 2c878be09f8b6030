"""A mitmdump script, loaded after the proxy's addon, that makes every request body stream, as
another addon might: the second line of defence must still hold a judged request back."""

from mitmproxy import http


def requestheaders(flow: http.HTTPFlow) -> None:
    flow.request.stream = True

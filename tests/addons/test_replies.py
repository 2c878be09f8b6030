"""One table of the proxy's own answers, one writer: every refusal is made and recorded the same way."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from mitmproxy.test import tflow, tutils

import proxy_addon
from proxy_addon.addons import replies
from proxy_addon.addons.replies import cut_off, made, refuse
from proxy_addon.policy.record import Decision, FlowRecord
from proxy_addon.policy.refusals import Refusal

PACKAGE = Path(proxy_addon.__file__).parent
WRITER = Path(replies.__file__)


def response_writers(path: Path) -> list[int]:
    """Lines of `path` that set an attribute named `response` (assignment or setattr)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setattr" and len(node.args) > 1:
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value == "response":
                lines.append(node.lineno)
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and part.attr == "response":
                    lines.append(node.lineno)
    return lines


def test_no_module_but_the_writer_sets_a_response():
    found = {
        f"{path.relative_to(PACKAGE)}:{line}"
        for path in PACKAGE.rglob("*.py")
        if path != WRITER
        for line in response_writers(path)
    }
    assert found == set(), "answers are written by addons/replies.refuse only"
    assert response_writers(WRITER), "the scan finds the writer's own assignment"


def flow_with_credentials():
    request = tutils.treq(host="acme.atlassian.net", port=443, scheme=b"https", authority=b"")
    for name, value in (("authorization", "[placeholder]"), ("cookie", "s=1"), ("proxy-authorization", "Basic x")):
        request.headers[name] = value
    f = tflow.tflow(req=request)
    f.request.stream = True
    FlowRecord.of(f.metadata).decision = Decision.INJECT
    return f


def test_the_writer_records_the_decision_drops_every_credential_and_stops_streaming():
    f = flow_with_credentials()
    refuse(f, Refusal.RATE_LIMITED, client="agent", limit=5, retry_after=7)
    assert FlowRecord.of(f.metadata).decision is Decision.RATE_LIMITED
    assert {name.lower() for name, _ in f.request.headers.fields}.isdisjoint(
        {b"authorization", b"cookie", b"proxy-authorization"}
    )
    assert f.request.stream is False
    assert (f.response.status_code, f.response.headers["retry-after"]) == (429, "7")
    assert f.response.headers["content-type"] == "text/plain; charset=utf-8"
    assert (
        f.response.text
        == "atlassian-auth-proxy: client agent is past its limit of 5 requests per minute; retry in 7 s\n"
    )


def test_an_answer_of_no_decision_keeps_the_decision_the_request_had():
    f = flow_with_credentials()
    refuse(f, Refusal.CONNECT_FAILED, host="acme.atlassian.net", port=443, kind="the connection was refused")
    assert FlowRecord.of(f.metadata).decision is Decision.INJECT
    assert "authorization" not in f.request.headers
    assert f.response.text == "atlassian-auth-proxy: cannot reach acme.atlassian.net:443: the connection was refused\n"


def test_the_paused_tokens_answer_is_json_as_atlassians_own_errors_are():
    answer = made(Refusal.BACKED_OFF, host="acme.atlassian.net", retry_after=30)
    assert (answer.status_code, answer.headers["content-type"], answer.headers["retry-after"]) == (
        401,
        "application/json",
        "30",
    )
    body = json.loads(answer.content or b"")
    assert body["error"] == "token_rejected"
    assert body["retry_after"] == 30
    assert body["message"].startswith("atlassian-auth-proxy: acme.atlassian.net rejected the API token")


@pytest.mark.parametrize("refusal", [Refusal.PROXY_AUTH, Refusal.UNDECIDED_LOGIN])
def test_both_407s_challenge_for_the_proxy_login(refusal):
    answer = made(refusal)
    assert answer.status_code == 407
    assert answer.headers["proxy-authenticate"] == 'Basic realm="atlassian-auth-proxy"'


def test_after_the_site_answered_a_failed_check_cuts_the_stream_and_keeps_no_credential():
    f = flow_with_credentials()
    f.response = tutils.tresp()
    cut_off(f)
    assert f.error is not None
    assert FlowRecord.of(f.metadata).decision is Decision.UNDECIDED
    assert "authorization" not in f.request.headers


def test_an_answer_sent_again_replaces_the_refused_one_without_cookies_or_hop_fields():
    f = tflow.tflow(resp=tutils.tresp(status_code=401))
    fields = [("Content-Type", "application/json"), ("Set-Cookie", "s=1"), ("Transfer-Encoding", "chunked")]
    replies.answer_again(f, 200, "OK", [*fields, ("X-Request-Id", "r1")], b'{"ok": true}')
    assert f.response is not None
    assert (f.response.status_code, f.response.reason, f.response.content) == (200, "OK", b'{"ok": true}')
    assert dict(f.response.headers) == {
        "Content-Type": "application/json",
        "X-Request-Id": "r1",
        "content-length": "12",
    }
    head = tflow.tflow(req=tutils.treq(method=b"HEAD"), resp=tutils.tresp(status_code=401))
    replies.answer_again(head, 200, "OK", [("Content-Length", "5000")], b"")
    assert head.response is not None
    assert head.response.headers["content-length"] == "5000", "a HEAD's answer tells the length of the GET's"


def test_the_early_answer_to_a_connect_is_mitmproxys_own():
    connect = tflow.tflow(req=tutils.treq(method=b"CONNECT", host="acme.atlassian.net", port=443, path=b""))
    replies.connected(connect)
    answer = connect.response
    assert (answer.http_version, answer.status_code, answer.reason) == ("HTTP/1.1", 200, "Connection established")
    assert (list(answer.headers.fields), answer.content) == ([], b""), "no headers, as mitmproxy sends (Android)"
    assert FlowRecord.of(connect.metadata).decision is Decision.NONE

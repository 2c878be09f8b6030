"""Rate-limit holds and the in-flight cap, end to end: the real proxy, the TLS stand-in answering 429s as
Atlassian does (`Retry-After`, `RateLimit-Reason`, `X-RateLimit-*`, sometimes none), curl and requests.

Each test names a host of its own under *.atlassian.net: a hold is the tenant's (one host of the
site), so the tests never hold one another.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from support.adminclient import admin_port, get, samples, value
from support.clients import curl, status_and_body, with_requests
from support.proxy import wait_for

LIMITED_BODY = '{"message": "Rate limit exceeded."}'


def atlassian_429(reason: str | None, retry_after: str | None = None, reset: str | None = None) -> dict[str, str]:
    """The head of an Atlassian 429: the X-RateLimit-* fields always, the others when given."""
    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-NearLimit": "false"}
    if reason is not None:
        headers["RateLimit-Reason"] = reason
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if reset is not None:
        headers["X-RateLimit-Reset"] = reset
    return headers


def reached(site, host: str, path: str) -> int:
    """How many requests for `path` on `host` the site received."""
    with site.record.lock:
        return sum(
            seen.path == path and (seen.header("Host") or "").partition(":")[0] == host for seen in site.record.requests
        )


def metrics_of(proxy) -> dict:
    return samples(get(admin_port(proxy.output), "/metrics")[2])


def log_records(proxy) -> list[dict]:
    return [json.loads(line) for line in proxy.lines if line.startswith('{"time"') and '"decision"' in line]


def put_status(proxy, url: str) -> str:
    """curl's output for an empty-object PUT to `url`: ends in the status."""
    return curl(proxy.url, url, proxy.ca_file, "-X", "PUT", "-d", "{}", "-w", "%{http_code}").stdout


@pytest.fixture
def limited_proxy(make_proxy):
    return make_proxy(ATLASSIAN_PROXY_ADMIN_PORT="0", ATLASSIAN_PROXY_LOG_FORMAT="json")


def test_a_burst_429_reaches_its_client_unchanged_and_holds_that_method_on_that_endpoint(limited_proxy, site):
    host, proxy = "burst.atlassian.net", limited_proxy
    headers = atlassian_429("jira-burst-based", retry_after="3", reset="2030-01-01T00:00:00Z")
    site.record.rate_limit(host, headers, prefix="/rest/api/3/issue/")
    first = with_requests(proxy.url, f"https://{host}/rest/api/3/issue/OPS-1", proxy.ca_file, {})
    assert (first.status, first.body) == (429, LIMITED_BODY), "the site's 429 reaches its client unchanged"
    for name, sent in headers.items():
        assert first.headers[name] == sent

    held = with_requests(proxy.url, f"https://{host}/rest/api/3/issue/OPS-2", proxy.ca_file, {})
    assert held.status == 429
    assert 1 <= int(held.headers["Retry-After"]) <= 3
    assert held.headers["RateLimit-Reason"] == "jira-burst-based"
    body = json.loads(held.body)
    assert body["error"] == "rate_limited"
    assert "site default (burst.atlassian.net)" in body["message"]
    assert "(scope: endpoint GET /rest/api/3/issue/{id})" in body["message"]
    assert reached(site, host, "/rest/api/3/issue/OPS-2") == 0, "a held request is never sent"

    assert status_and_body(proxy, f"https://{host}/rest/api/3/myself")[0] == "200", "another endpoint goes on"
    assert (
        curl(proxy.url, f"https://{host}/rest/api/3/issue/OPS-2", proxy.ca_file, "-X", "PUT", "-d", "{}").returncode
        == 0
    )
    assert reached(site, host, "/rest/api/3/issue/OPS-2") == 1, "another method on the endpoint goes on"

    wait_for(lambda: any(r["decision"] == "rate-limit-hold" for r in log_records(proxy)), what="the hold in the log")
    metrics = metrics_of(proxy)
    assert value(metrics, "atlassian_proxy_rate_limit_holds_total", site="default", scope="endpoint") == 1
    assert value(metrics, "atlassian_proxy_rate_limit_held", site="default") == 1
    assert value(
        metrics, "atlassian_proxy_requests_total", site="default", decision="rate-limit-hold", status_class="4xx",
        client="none",
    ) == 1  # fmt: skip

    started = time.monotonic()
    wait_for(
        lambda: status_and_body(proxy, f"https://{host}/rest/api/3/issue/OPS-2")[0] == "200",
        timeout=10,
        what="the hold to end",
    )
    assert time.monotonic() - started < 4
    assert value(metrics_of(proxy), "atlassian_proxy_rate_limit_held", site="default") == 0


def test_a_quota_429_with_only_a_reset_time_holds_the_whole_site_until_then(limited_proxy, site):
    host, proxy = "quota.atlassian.net", limited_proxy
    reset = (datetime.now(UTC) + timedelta(seconds=3)).isoformat(timespec="seconds").replace("+00:00", "Z")
    site.record.rate_limit(host, atlassian_429("jira-quota-global-based", reset=reset))
    assert status_and_body(proxy, f"https://{host}/rest/api/3/search/jql")[0] == "429"
    for method, path in (
        ("GET", "/wiki/api/v2/pages"),
        ("POST", "/rest/api/3/issue"),
        ("DELETE", "/rest/api/3/issue/OPS-9"),
    ):
        reply = curl(
            proxy.url, f"https://{host}{path}", proxy.ca_file, "-X", method, "-i", "--suppress-connect-headers"
        )
        assert reply.stdout.startswith("HTTP/1.1 429"), reply.stdout
        assert "ratelimit-reason: jira-quota-global-based" in reply.stdout.lower()
        assert "(scope: site)" in reply.stdout
    assert reached(site, host, "/wiki/api/v2/pages") == 0
    assert status_and_body(proxy, "https://other-quota.atlassian.net/rest/api/3/myself")[0] == "200", (
        "the hold is the tenant's: another host of the site goes on"
    )
    wait_for(
        lambda: status_and_body(proxy, f"https://{host}/wiki/api/v2/pages")[0] == "200", timeout=10, what="the reset"
    )
    assert value(metrics_of(proxy), "atlassian_proxy_rate_limit_holds_total", site="default", scope="site") == 1


def test_a_per_issue_429_holds_writes_to_that_issue_only(limited_proxy, site):
    host, proxy = "issue.atlassian.net", limited_proxy
    site.record.rate_limit(
        host, atlassian_429("jira-per-issue-on-write", retry_after="20"), prefix="/rest/api/3/issue/OPS-1"
    )
    assert put_status(proxy, f"https://{host}/rest/api/3/issue/OPS-1").endswith("429")
    comment = curl(
        proxy.url,
        f"https://{host}/rest/api/3/issue/ops-1/comment",
        proxy.ca_file,
        "-X",
        "POST",
        "-d",
        "{}",
        "-i",
        "--suppress-connect-headers",
    )
    assert comment.stdout.startswith("HTTP/1.1 429")
    assert "(scope: issue OPS-1)" in comment.stdout
    assert reached(site, host, "/rest/api/3/issue/ops-1/comment") == 0
    assert status_and_body(proxy, f"https://{host}/rest/api/3/issue/OPS-1")[0] == "200", "reads of the issue go on"
    assert put_status(proxy, f"https://{host}/rest/api/3/issue/OPS-2").endswith("200"), "writes to another issue go on"
    assert value(metrics_of(proxy), "atlassian_proxy_rate_limit_holds_total", site="default", scope="issue") == 1


def test_a_429_without_any_hint_holds_the_site_for_5_seconds(limited_proxy, site):
    host, proxy = "bare.atlassian.net", limited_proxy
    site.record.rate_limit(host, {})
    assert status_and_body(proxy, f"https://{host}/rest/api/3/myself")[0] == "429"
    reply = curl(proxy.url, f"https://{host}/rest/api/3/myself", proxy.ca_file, "-i", "--suppress-connect-headers")
    assert reply.stdout.startswith("HTTP/1.1 429")
    retry_after = next(
        int(line.split(":")[1]) for line in reply.stdout.splitlines() if line.lower().startswith("retry-after:")
    )
    assert 4 <= retry_after <= 5
    assert "ratelimit-reason" not in reply.stdout.lower(), "no reason was given, none is made up"


def test_a_retry_after_of_non_ascii_digits_still_reaches_its_client_and_holds(limited_proxy, site):
    """`Retry-After: ²` (UTF-8 on the wire; the stand-in writes headers as latin-1) is no hint, not a crash."""
    host, proxy = "superscript.atlassian.net", limited_proxy
    site.record.rate_limit(host, {"Retry-After": "²".encode().decode("latin-1")})
    assert status_and_body(proxy, f"https://{host}/rest/api/3/myself") == ("429", LIMITED_BODY)
    held = with_requests(proxy.url, f"https://{host}/rest/api/3/myself", proxy.ca_file, {})
    assert held.status == 429
    assert 4 <= int(held.headers["Retry-After"]) <= 5, "held as a 429 without a hint"
    assert reached(site, host, "/rest/api/3/myself") == 1


# --- the in-flight cap and its queue -----------------------------------------------------------


def busy_requests(proxy, host: str, count: int, *args: str) -> tuple[list[threading.Thread], list[str]]:
    codes: list[str] = []

    def one() -> None:
        result = curl(proxy.url, f"https://{host}/busy", proxy.ca_file, "-w", "%{http_code}", *args)
        codes.append(result.stdout[-3:])

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, codes


@pytest.fixture
def busy(site):
    site.record.busy_release.clear()
    with site.record.lock:
        site.record.peak = 0
    yield site.record
    site.record.busy_release.set()


def test_at_most_max_in_flight_requests_of_a_site_are_at_the_site_and_the_rest_wait_their_turn(make_proxy, busy):
    proxy = make_proxy(ATLASSIAN_PROXY_MAX_IN_FLIGHT="2", ATLASSIAN_PROXY_ADMIN_PORT="0")
    threads, codes = busy_requests(proxy, "cap.atlassian.net", 5)
    wait_for(lambda: busy.active == 2, what="two requests at the site")
    wait_for(lambda: value(metrics_of(proxy), "atlassian_proxy_queued", site="default") == 3, what="three queued")
    assert value(metrics_of(proxy), "atlassian_proxy_in_flight", site="default") == 2
    assert busy.peak == 2
    busy.busy_release.set()
    for thread in threads:
        thread.join(30)
    assert codes == ["200"] * 5
    assert busy.peak == 2, "never more than max_in_flight at once"
    wait_for(lambda: value(metrics_of(proxy), "atlassian_proxy_in_flight", site="default") == 0, what="all slots back")


def test_a_request_that_waits_past_the_queue_timeout_gets_503_and_is_never_sent(make_proxy, busy, site):
    proxy = make_proxy(
        ATLASSIAN_PROXY_MAX_IN_FLIGHT="1", ATLASSIAN_PROXY_QUEUE_TIMEOUT_SECONDS="1", ATLASSIAN_PROXY_LOG_FORMAT="json"
    )
    threads, codes = busy_requests(proxy, "queue.atlassian.net", 1)
    wait_for(lambda: busy.active == 1, what="the first request at the site")
    started = time.monotonic()
    reply = curl(
        proxy.url, "https://queue.atlassian.net/rest/api/3/myself", proxy.ca_file, "-i", "--suppress-connect-headers"
    )
    waited = time.monotonic() - started
    assert reply.stdout.startswith("HTTP/1.1 503"), reply.stdout
    assert 1 <= waited < 3
    assert "retry-after: 5" in reply.stdout.lower()
    assert "max_in_flight" in reply.stdout
    assert reached(site, "queue.atlassian.net", "/rest/api/3/myself") == 0
    wait_for(lambda: any(r["decision"] == "queue-timeout" for r in log_records(proxy)), what="queue-timeout in the log")
    busy.busy_release.set()
    threads[0].join(30)
    assert codes == ["200"]


def test_a_client_that_leaves_the_queue_leaves_no_slot_taken_and_is_never_sent(make_proxy, busy, site):
    proxy = make_proxy(ATLASSIAN_PROXY_MAX_IN_FLIGHT="1", ATLASSIAN_PROXY_ADMIN_PORT="0")
    host = "leaving.atlassian.net"
    threads, codes = busy_requests(proxy, host, 1)
    wait_for(lambda: busy.active == 1, what="the first request at the site")
    gave_up = curl(proxy.url, f"https://{host}/rest/api/3/myself", proxy.ca_file, "--max-time", "1")
    assert gave_up.returncode == 28, "curl gave up while its request waited"
    wait_for(lambda: value(metrics_of(proxy), "atlassian_proxy_queued", site="default") == 0, what="the queue empty")
    busy.busy_release.set()
    threads[0].join(30)
    assert codes == ["200"]
    assert status_and_body(proxy, f"https://{host}/rest/api/3/myself")[0] == "200", "its place was never kept"
    assert reached(site, host, "/rest/api/3/myself") == 1, "the request of the client that left was never sent"


def withholding_body(proxy, host: str, path: str) -> ssl.SSLSocket:
    """A client that sends a PUT's head (and one byte of its 100) through a tunnel, then nothing more.

    It asks `Expect: 100-continue`, which mitmproxy answers right after the request-header hooks ran:
    once the 100 is here, the proxy has seen the head and the cap has decided on it.
    """
    raw = socket.create_connection((proxy.host, proxy.port), timeout=10)
    raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    tls = ssl.create_default_context(cafile=str(proxy.ca_file)).wrap_socket(raw, server_hostname=host)
    head = f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n"
    tls.sendall(head.encode())
    assert tls.recv(4096).startswith(b"HTTP/1.1 100"), "the head went through the request-header hooks"
    tls.sendall(b"{")
    return tls


def test_a_client_that_withholds_its_body_holds_no_place_of_the_sites_requests(make_proxy, site):
    """max_in_flight such clients would otherwise make every other request of the site wait out the queue."""
    proxy = make_proxy(
        ATLASSIAN_PROXY_MAX_IN_FLIGHT="1", ATLASSIAN_PROXY_QUEUE_TIMEOUT_SECONDS="1", ATLASSIAN_PROXY_ADMIN_PORT="0"
    )
    host = "withheld.atlassian.net"
    slow = withholding_body(proxy, host, "/rest/api/3/issue/OPS-1")
    try:
        assert value(metrics_of(proxy), "atlassian_proxy_in_flight", site="default") == 0
        assert status_and_body(proxy, f"https://{host}/rest/api/3/myself")[0] == "200"
    finally:
        slow.close()
    assert reached(site, host, "/rest/api/3/issue/OPS-1") == 0


def test_slots_come_back_after_clients_cut_off_mid_answer_and_upstream_failures(make_proxy, busy, site):
    """A leaked slot would stall the site for good: clients that leave while their request is at the site,
    and answers that fail, give every slot back."""
    proxy = make_proxy(ATLASSIAN_PROXY_MAX_IN_FLIGHT="2", ATLASSIAN_PROXY_ADMIN_PORT="0")
    host = "leaks.atlassian.net"
    threads, _ = busy_requests(proxy, host, 4, "--max-time", "1")
    for thread in threads:
        thread.join(30)
    busy.busy_release.set()
    for path in ("/reset", "/reset", "/status/500"):
        curl(proxy.url, f"https://{host}{path}", proxy.ca_file)
    wait_for(lambda: value(metrics_of(proxy), "atlassian_proxy_in_flight", site="default") == 0, what="every slot back")
    assert value(metrics_of(proxy), "atlassian_proxy_queued", site="default") == 0
    replies = [status_and_body(proxy, f"https://{host}/rest/api/3/myself")[0] for _ in range(3)]
    assert replies == ["200"] * 3

"""Several proxy processes on one real Redis server (`ATLASSIAN_PROXY_STATE_URL`): what one learns, the others
honour from their next request; a store that goes away stops nothing, and sharing resumes when it is back.

The server is Debian's `redis-server` on a free loopback port with a password (`support/redis_server.py`);
each test uses a database of its own, so their holds and windows never meet.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator

import pytest

from proxy_addon.policy.holds import SITE, digest

from support.adminclient import admin_port, get, healthz, samples, value
from support.clients import curl, status_and_body
from support.proxy import TOKEN_24, basic, wait_for
from support.redis_server import RedisServer, free_port

PASSWORD = "st0re-Pa55word-for-tests"
DATABASES = itertools.count(1)
BURST = {"Retry-After": "20", "RateLimit-Reason": "jira-burst-based", "X-RateLimit-Remaining": "0"}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def state_url(redis_server: RedisServer) -> str:
    return redis_server.url(next(DATABASES))


def metrics_of(proxy) -> dict:
    return samples(get(admin_port(proxy.output), "/metrics")[2])


def sharing(proxy) -> bool:
    return value(metrics_of(proxy), "atlassian_proxy_state_store_up") == 1


def proxies(make_proxy, count: int, state_url: str, *args: str, **env: str) -> list:
    started = [
        make_proxy(*args, ATLASSIAN_PROXY_STATE_URL=state_url, ATLASSIAN_PROXY_ADMIN_PORT="0", **env)
        for _ in range(count)
    ]
    for proxy in started:
        wait_for(lambda proxy=proxy: sharing(proxy), what="the proxy to reach the store")
    return started


def reached(site, host: str, path: str) -> int:
    with site.record.lock:
        return sum(
            seen.path == path and (seen.header("Host") or "").partition(":")[0] == host for seen in site.record.requests
        )


def test_a_burst_hold_one_proxy_saw_is_honoured_by_the_others_within_half_a_second(make_proxy, site, state_url):
    host = "shared-burst.atlassian.net"
    a, b, c = proxies(make_proxy, 3, state_url, ATLASSIAN_PROXY_LOG_FORMAT="json")
    site.record.rate_limit(host, BURST, prefix="/rest/api/3/search/jql")
    assert status_and_body(a, f"https://{host}/rest/api/3/search/jql")[0] == "429"
    seen_by_a = time.monotonic()
    for other in (b, c):
        wait_for(lambda other=other: value(metrics_of(other), "atlassian_proxy_rate_limit_held", site="default") == 1)
    assert time.monotonic() - seen_by_a < 0.5, "another process holds it within half a second"
    for other in (b, c):
        reply = curl(
            other.url, f"https://{host}/rest/api/3/search/jql?jql=x", other.ca_file, "-i", "--suppress-connect-headers"
        )
        assert reply.stdout.startswith("HTTP/1.1 429")
        assert "ratelimit-reason: jira-burst-based" in reply.stdout.lower()
        assert "(scope: endpoint GET /rest/api/3/search/jql)" in reply.stdout
        assert status_and_body(other, f"https://{host}/rest/api/3/myself")[0] == "200"
    assert reached(site, host, "/rest/api/3/search/jql?jql=x") == 0, "no process sent a held request"
    assert value(metrics_of(a), "atlassian_proxy_rate_limit_holds_total", site="default", scope="endpoint") == 1
    assert value(metrics_of(b), "atlassian_proxy_rate_limit_holds_total", site="default", scope="endpoint") == 0, (
        "a hold is counted by the process whose answer started it"
    )


def test_a_proxy_that_starts_later_holds_what_the_store_holds(make_proxy, site, state_url):
    host = "shared-late.atlassian.net"
    (a,) = proxies(make_proxy, 1, state_url)
    site.record.rate_limit(host, {"Retry-After": "30"})
    assert status_and_body(a, f"https://{host}/rest/api/3/myself")[0] == "429"
    (late,) = proxies(make_proxy, 1, state_url)
    wait_for(lambda: value(metrics_of(late), "atlassian_proxy_rate_limit_held", site="default") == 1)
    assert status_and_body(late, f"https://{host}/wiki/api/v2/pages")[0] == "429"
    assert reached(site, host, "/wiki/api/v2/pages") == 0


CLIENTS = """
[[clients]]
name = "metered"
password_env = "METERED_PASSWORD"
requests_per_minute = 4
"""
METERED = "metered:metered-Pa55word-4e1f"


def test_requests_per_minute_of_4_across_two_proxies_lets_exactly_4_through(make_proxy, site, state_url, tmp_path):
    config = tmp_path / "clients.toml"
    config.write_text(CLIENTS)
    a, b = proxies(make_proxy, 2, state_url, "--config", str(config), METERED_PASSWORD=METERED.partition(":")[2])
    host = "shared-rate.atlassian.net"
    codes = [
        status_and_body(proxy, f"https://{host}/rest/api/3/myself", "--proxy-user", METERED)[0]
        for proxy in (a, b, a, b, a, b, a, b)
    ]
    assert sorted(codes) == ["200"] * 4 + ["429"] * 4, codes
    assert reached(site, host, "/rest/api/3/myself") == 4


SHARED_EMAIL = "shared-pause@acme.example"


def test_a_rejection_one_proxy_confirms_pauses_the_others_and_only_one_asks_the_site(make_proxy, site, state_url):
    a, b = proxies(make_proxy, 2, state_url, ATLASSIAN_PROXY_EMAIL=SHARED_EMAIL, ATLASSIAN_PROXY_API_TOKEN=TOKEN_24)
    host = "shared-pause.atlassian.net"
    revoked = basic(SHARED_EMAIL, TOKEN_24)
    site.record.rejected.add(revoked)
    try:
        threads = [
            threading.Thread(target=status_and_body, args=(proxy, f"https://{host}/rest/api/3/issue/OPS-{n}"))
            for n, proxy in enumerate((a, b, a, b))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for proxy in (a, b):
            wait_for(
                lambda proxy=proxy: "reject the API token" in proxy.output or "rejected the API token" in proxy.output
            )
        before = len(site.record.requests)
        for proxy in (a, b):
            code, body = status_and_body(proxy, f"https://{host}/rest/api/3/issue/OPS-9")
            assert code == "401"
            assert json.loads(body)["error"] == "token_rejected"
        assert len(site.record.requests) == before, "paused everywhere: nothing more carries the token"
        with site.record.lock:
            asked = [
                s
                for s in site.record.requests
                if s.path == "/rest/api/3/myself" and s.header("Authorization") == revoked
            ]
        assert len(asked) == 1, "one process confirmed the 401s for all"
    finally:
        site.record.rejected.discard(revoked)


def test_a_store_killed_mid_run_stops_no_request_and_sharing_resumes_when_it_is_back(make_proxy, site, tmp_path):
    server = RedisServer(tmp_path, PASSWORD)
    server.start()
    try:
        a, b = proxies(make_proxy, 2, server.url(0))
        host = "shared-restart.atlassian.net"
        server.stop()
        for proxy in (a, b):
            wait_for(lambda proxy=proxy: not sharing(proxy), what="the gauge at 0")
            started = time.monotonic()
            assert status_and_body(proxy, f"https://{host}/rest/api/3/myself")[0] == "200"
            assert time.monotonic() - started < 1, "no request waits on a store that is down"
            assert healthz(admin_port(proxy.output))[0] == 200
        site.record.rate_limit(host, {"Retry-After": "20"})
        assert status_and_body(a, f"https://{host}/rest/api/3/myself")[0] == "429"
        assert status_and_body(a, f"https://{host}/rest/api/3/myself")[0] == "429", "each process keeps its own holds"
        assert status_and_body(b, f"https://{host}/wiki/api/v2/pages")[0] == "200", "unshared while the store is down"
        for proxy in (a, b):
            warnings = [line for line in proxy.lines if "cannot be reached" in line]
            assert len(warnings) == 1, warnings
            assert f"state store redis://127.0.0.1:{server.port}/0 cannot be reached" in warnings[0]

        server.start()
        for proxy in (a, b):
            wait_for(lambda proxy=proxy: sharing(proxy), timeout=20, what="the store back")
            assert any(f"state store redis://127.0.0.1:{server.port}/0 is back" in line for line in proxy.lines)
        wait_for(lambda: value(metrics_of(b), "atlassian_proxy_rate_limit_held", site="default") == 1, what="a's hold")
        assert status_and_body(b, f"https://{host}/wiki/api/v2/pages")[0] == "429", "a's hold, left in the store"
        other = "shared-after.atlassian.net"
        site.record.rate_limit(other, BURST, prefix="/rest/api/3/search/jql")
        assert status_and_body(b, f"https://{other}/rest/api/3/search/jql")[0] == "429"
        wait_for(lambda: value(metrics_of(a), "atlassian_proxy_rate_limit_held", site="default") == 1)
        assert status_and_body(a, f"https://{other}/rest/api/3/search/jql")[0] == "429"
        for proxy in (a, b):
            assert PASSWORD not in proxy.output
    finally:
        server.stop()


def test_an_unreachable_store_with_a_password_shows_it_nowhere(make_proxy, site):
    url = f"redis://proxy:{PASSWORD}@127.0.0.1:{free_port()}/0"
    proxy = make_proxy(ATLASSIAN_PROXY_STATE_URL=url, ATLASSIAN_PROXY_ADMIN_PORT="0", ATLASSIAN_PROXY_LOG_FORMAT="json")
    wait_for(lambda: "cannot be reached" in proxy.output, what="the warning")
    host = "shared-secret.atlassian.net"
    site.record.rate_limit(host, {"Retry-After": "20", "RateLimit-Reason": "jira-quota-global-based"})
    replies = [status_and_body(proxy, f"https://{host}/rest/api/3/myself") for _ in range(2)]
    assert [code for code, _ in replies] == ["429", "429"]
    port = admin_port(proxy.output)
    status, health = healthz(port)
    assert status == 200, health
    metrics = get(port, "/metrics")[2]
    assert value(samples(metrics), "atlassian_proxy_state_store_up") == 0
    proxy.stop()
    for text in (proxy.output, metrics, json.dumps(health), *(body for _, body in replies)):
        assert PASSWORD not in text
    assert sum("cannot be reached" in line for line in proxy.lines) == 1


def test_proxies_on_another_database_of_the_same_server_share_nothing(make_proxy, site, redis_server):
    """Redis's channels are not per database: without a channel of its own, a deployment on db 1 would
    honour the holds and pauses of one on db 2."""
    one, two = redis_server.url(next(DATABASES)), redis_server.url(next(DATABASES))
    a, same = proxies(make_proxy, 2, one)
    (other,) = proxies(make_proxy, 1, two)
    host = "shared-databases.atlassian.net"
    site.record.rate_limit(host, {"Retry-After": "20", "RateLimit-Reason": "jira-quota-global-based"})
    assert status_and_body(a, f"https://{host}/rest/api/3/myself")[0] == "429"
    wait_for(lambda: value(metrics_of(same), "atlassian_proxy_rate_limit_held", site="default") == 1)
    assert value(metrics_of(other), "atlassian_proxy_rate_limit_held", site="default") == 0
    assert status_and_body(other, f"https://{host}/rest/api/3/myself")[0] == "200"


def test_garbage_in_the_store_or_on_its_channel_stops_no_process_from_sharing(make_proxy, site, redis_server):
    """Whoever can write to the store can hold the proxies (the docs say so), but a malformed event or key
    must not end a process's sharing while its gauge says it shares."""
    db = next(DATABASES)
    store = redis_server.client(db)
    store.set("atlassian-auth-proxy:hold:bad", '{"name": "bad"}', px=60_000)
    store.set("atlassian-auth-proxy:pause:bad", '{"site": "default", "failures": 1}', px=60_000)
    a, b = proxies(make_proxy, 2, redis_server.url(db))
    channel = f"atlassian-auth-proxy:events:{db}"
    for garbage in (
        '{"kind": "hold", "origin": "x", "name": "n", "site": "default", "scope": "site", "ms": Infinity}',
        '{"kind": "pause", "origin": "x", "site": "default", "host": "h", "scope": "site", "tag": 1, "ms": 1e999}',
        "[" * 100_000,
    ):
        assert store.publish(channel, garbage) == 2
    host = "shared-garbage.atlassian.net"
    site.record.rate_limit(host, BURST, prefix="/rest/api/3/search/jql")
    assert status_and_body(a, f"https://{host}/rest/api/3/search/jql")[0] == "429"
    wait_for(lambda: value(metrics_of(b), "atlassian_proxy_rate_limit_held", site="default") == 1, what="a's hold")
    assert status_and_body(b, f"https://{host}/rest/api/3/search/jql")[0] == "429"
    assert reached(site, host, "/rest/api/3/search/jql") == 1
    assert sharing(a)
    assert sharing(b)
    assert any("ignored a malformed hold event" in line for line in b.lines)


def test_a_database_of_many_other_keys_is_read_page_by_page_and_stays_shared(make_proxy, site, redis_server):
    """Holds left in the store are found by SCAN, which walks every key of the database: done in one command
    bounded by 0.25 s, a database shared with an application of many keys counted the store as down on every
    connect, logging a warning and a "back" line each second and sharing nothing."""
    db = next(DATABASES)
    store = redis_server.client(db)
    store.eval("for i = 1, 600000 do redis.call('SET', 'app:' .. i, 'x') end", 0)
    try:
        (a,) = proxies(make_proxy, 1, redis_server.url(db))
        host = "shared-crowded.atlassian.net"
        site.record.rate_limit(host, {"Retry-After": "30"})
        assert status_and_body(a, f"https://{host}/rest/api/3/myself")[0] == "429"
        late = make_proxy(ATLASSIAN_PROXY_STATE_URL=redis_server.url(db), ATLASSIAN_PROXY_ADMIN_PORT="0")
        wait_for(
            lambda: value(metrics_of(late), "atlassian_proxy_rate_limit_held", site="default") == 1,
            what="the hold read from the store",
        )
        assert sharing(late)
        assert status_and_body(late, f"https://{host}/wiki/api/v2/pages")[0] == "429"
        assert not [line for line in late.lines if "cannot be reached" in line or "is back" in line]
    finally:
        store.flushdb()


def test_a_store_user_not_allowed_scripts_is_told_once_and_never_flaps(make_proxy, site, redis_server, tmp_path):
    """Found on connecting, not on each rate-limited request: before, each such request lost the store (a
    warning), the next connect found it back (a line), and the shared window never counted anything."""
    admin = redis_server.client()
    admin.acl_setuser("noscripts", enabled=True, passwords=["+No-scripts-pa55"], keys=["*"], channels=["*"])
    admin.execute_command("ACL", "SETUSER", "noscripts", "+@all", "-@scripting")
    try:
        config = tmp_path / "clients.toml"
        config.write_text(CLIENTS)
        url = f"redis://noscripts:No-scripts-pa55@127.0.0.1:{redis_server.port}/{next(DATABASES)}"
        proxy = make_proxy(
            "--config",
            str(config),
            ATLASSIAN_PROXY_STATE_URL=url,
            ATLASSIAN_PROXY_ADMIN_PORT="0",
            METERED_PASSWORD=METERED.partition(":")[2],
        )
        wait_for(lambda: "cannot be reached" in proxy.output, what="the warning")
        host = "shared-noscripts.atlassian.net"
        codes = [
            status_and_body(proxy, f"https://{host}/rest/api/3/myself", "--proxy-user", METERED)[0] for _ in range(5)
        ]
        assert codes == ["200"] * 4 + ["429"], "the process counts the window itself"
        assert not sharing(proxy)
        warnings = [line for line in proxy.lines if "state store" in line]
        assert len(warnings) == 1, warnings
        assert "its user may not run a command the proxy needs" in warnings[0]
        assert "No-scripts-pa55" not in proxy.output
    finally:
        admin.acl_deluser("noscripts")


def test_a_reason_from_the_store_never_becomes_a_header_line_of_the_local_429(make_proxy, site, redis_server):
    """Whoever can write to the store can hold the proxies, but not write headers into their clients' answers."""
    db = next(DATABASES)
    (proxy,) = proxies(make_proxy, 1, redis_server.url(db))
    host = "shared-injected.atlassian.net"
    event = {
        "kind": "hold",
        "origin": "elsewhere",
        "name": digest("default", host, SITE),
        "site": "default",
        "scope": "site",
        "reason": "x\r\nSet-Cookie: tenant.session.token=planted",
        "ms": 30_000,
    }
    assert redis_server.client(db).publish(f"atlassian-auth-proxy:events:{db}", json.dumps(event)) == 1
    wait_for(lambda: value(metrics_of(proxy), "atlassian_proxy_rate_limit_held", site="default") == 1)
    reply = curl(proxy.url, f"https://{host}/rest/api/3/myself", proxy.ca_file, "-i", "--suppress-connect-headers")
    assert reply.stdout.startswith("HTTP/1.1 429")
    assert "planted" not in reply.stdout
    assert "ratelimit-reason" not in reply.stdout.lower()

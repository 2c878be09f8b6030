"""Load: many concurrent clients, every request credentialed correctly; a soak with faults leaves memory flat."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from support.proxy import EMAIL, TOKEN_192, Proxy, basic, proxy_env, start_proxy

CLIENTS = 64
REQUESTS_EACH = 50
SOAK_ROUNDS = 2
SOAK_REQUESTS_EACH = 30
RSS_GROWTH_LIMIT = 1.20
SITE = "https://acme.atlassian.net"


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


@pytest.fixture(scope="module")
def loaded(site, ca_file, confdir) -> Iterator[Proxy]:
    proxy = start_proxy(proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_UPSTREAM_TIMEOUT="1"))
    yield proxy
    proxy.stop()


def session(proxy: Proxy) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.proxies = {"https": proxy.url}
    s.verify = str(proxy.ca_file)
    return s


def normal_requests(proxy: Proxy, client: int) -> list[str]:
    paths = []
    with session(proxy) as s:
        for i in range(REQUESTS_EACH):
            path = f"/load/{client}/{i}"
            r = s.get(SITE + path, timeout=30)
            assert r.status_code == 200, (path, r.status_code, r.text)
            assert r.json()["path"] == path
            paths.append(path)
    return paths


def test_64_concurrent_clients_every_request_credentialed(loaded, site):
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda c: normal_requests(loaded, c), range(CLIENTS)))
    elapsed = time.monotonic() - started
    sent = {path for paths in results for path in paths}
    assert len(sent) == CLIENTS * REQUESTS_EACH
    with site.record.lock:
        received = [seen for seen in site.record.requests if seen.path.startswith("/load/")]
    assert len(received) == CLIENTS * REQUESTS_EACH, "each request reached the site exactly once"
    assert {seen.path for seen in received} == sent
    assert all(seen.header("Authorization") == basic(EMAIL, TOKEN_192) for seen in received)
    assert all(seen.header("Cookie") is None for seen in received)
    print(f"{CLIENTS}x{REQUESTS_EACH} requests in {elapsed:.1f}s ({len(sent) / elapsed:.0f}/s)")


RATE_LIMITED_SITE = "https://soak-429.atlassian.net"
EXPECTED = {"ok": 200, "reset": 502, "ratelimited": 429, "browser": 403, "fresh": 200, "stall": 504}
UNDER_LOAD = {"reset": 504, "fresh": 504}
"""A reset can also end in the upstream timeout's 504: when the site's reset reaches a warm connection before the
proxy read a byte of the answer, the GET goes again once on a new connection (the upstream pool), and with 64
clients on two cores that second connection can outlast the 1 s UPSTREAM_TIMEOUT. Either way an error, as direct.
A fresh client's connection can too: the timeout counts the TLS handshake the request waits for, and with 64
clients on two cores a handshake can take longer than 1 s."""


def soak_client(proxy: Proxy, client: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    s = session(proxy)
    try:
        for i in range(SOAK_REQUESTS_EACH):
            kind = ["reset", "ratelimited", "browser", "fresh", "ok", "ok", "ok", "ok", "ok", "ok"][i % 10]
            if client == 0 and i == SOAK_REQUESTS_EACH - 1:
                kind = "stall"
            if kind == "fresh":
                s.close()
                s = session(proxy)
            path = {"reset": "/reset", "ratelimited": "/ratelimited", "stall": "/stall"}.get(kind, f"/soak/{i}")
            headers = {"Origin": "https://evil.example"} if kind == "browser" else {}
            base = RATE_LIMITED_SITE if kind == "ratelimited" else SITE  # its 429 holds that tenant, not SITE
            r = s.get(base + path, headers=headers, timeout=30)
            assert r.status_code in (EXPECTED[kind], UNDER_LOAD.get(kind)), (kind, r.status_code, r.text)
            outcomes[kind] += 1
    finally:
        s.close()
    return outcomes


def test_soak_with_faults_keeps_memory_flat(loaded, site):
    site.record.stall_release.clear()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(lambda c: soak_client(loaded, c), range(CLIENTS)))
        before = rss(loaded.process.pid)
        started = time.monotonic()
        totals: Counter[str] = Counter()
        for _ in range(SOAK_ROUNDS):
            for outcome in pool.map(lambda c: soak_client(loaded, c), range(CLIENTS)):
                totals += outcome
    site.record.stall_release.set()
    elapsed = time.monotonic() - started
    after = rss(loaded.process.pid)
    total = sum(totals.values())
    print(
        f"soak: {total} requests {dict(totals)} in {elapsed:.1f}s; "
        f"proxy RSS {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB ({after / before - 1:+.1%})"
    )
    assert total == SOAK_ROUNDS * CLIENTS * SOAK_REQUESTS_EACH
    assert after <= before * RSS_GROWTH_LIMIT, f"RSS grew from {before} to {after}"

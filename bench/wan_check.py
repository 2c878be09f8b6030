"""The WAN figure again, from a harness that shares nothing with bench/run.py but the delay relay.

Another site (the tests' threaded HTTP/1.1 stand-in, Python's ssl, instead of nginx), another
client (a new Python process per request with http.client, HTTP/1.1, no ALPN, instead of curl),
the proxy started as the tests start it. It checks the upstream pool's figure (issue 25) with
nothing of bench/run.py's set-up in common.

    python bench/wan_check.py [--requests 15] [--rounds 3]

Each sample is one `python -c` process: CONNECT (or a direct TCP connect through the relay), TLS,
one GET, timed inside the process from before the connect to the last body byte. Direct, the
proxy without the pool and the proxy with it run interleaved; the medians and ratios print.
"""

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

BENCH = Path(__file__).resolve().parent
TESTS = BENCH.parent / "tests"
sys.path.insert(0, str(TESTS))

from support import upstream  # noqa: E402
from support.proxy import STAND_IN_NAMES, proxy_env, start_proxy, wait_for  # noqa: E402

CLIENT = """
import http.client, socket, ssl, sys, time
proxy_port, relay_port, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=ca)
started = time.perf_counter()
if proxy_port:
    conn = http.client.HTTPSConnection("127.0.0.1", proxy_port, context=context, timeout=10)
    conn.set_tunnel("acme.atlassian.net", 443)
else:
    conn = http.client.HTTPSConnection("acme.atlassian.net", 443, context=context, timeout=10)
    conn.sock = context.wrap_socket(
        socket.create_connection(("127.0.0.1", relay_port)), server_hostname="acme.atlassian.net"
    )
conn.request("GET", "/rest/api/3/myself")
reply = conn.getresponse()
reply.read()
print(reply.status, time.perf_counter() - started)
"""


def with_nodelay() -> None:
    """The tests' stand-in leaves Nagle on; real sites (nginx, Atlassian's edge) do not. With it on,
    the proxy without the pool paid one extra round trip per request here (210 ms, 1.32x direct,
    against 1.05x with nginx), which would flatter the pool."""
    original = upstream.UpstreamServer.finish_request

    def finish_request(self, request, client_address):
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return original(self, request, client_address)

    upstream.UpstreamServer.finish_request = finish_request


def sample(proxy_port: int, relay_port: int, ca: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, str(proxy_port), str(relay_port), str(ca)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    status, _, seconds = done.stdout.strip().partition(" ")
    if status != "200":
        raise RuntimeError(f"request failed: {done.stdout} {done.stderr[-500:]}")
    return float(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with_nodelay()
    ca = trustme.CA()
    site = upstream.start(ca.issue_cert(*STAND_IN_NAMES))
    with tempfile.TemporaryDirectory(prefix="pool-wan-") as tmp:
        workdir = Path(tmp)
        ca_file = workdir / "site-ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            relay_port = s.getsockname()[1]
        link = ["--listen-port", str(relay_port), "--target-port", str(site.port), "--rtt-ms", "50"]
        relay = subprocess.Popen(
            [sys.executable, str(BENCH / "delaylink.py"), *link],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert relay.stdout is not None
        assert relay.stdout.readline().strip() == "ready"
        target = f"acme.atlassian.net=127.0.0.1:{relay_port}"
        proxies = {}
        try:
            for name, pool in (("proxy", "false"), ("pool", "true")):
                env = proxy_env(
                    site, ca_file, workdir / name, ATLASSIAN_PROXY_CONNECT_TO=target, ATLASSIAN_PROXY_UPSTREAM_POOL=pool
                )
                proxies[name] = start_proxy(env)
                wait_for(lambda p=proxies[name]: p.ca_file.exists(), what="the proxy's CA")
            bundle = workdir / "client-bundle.pem"
            bundle.write_text(
                ca_file.read_text() + proxies["pool"].ca_file.read_text() + proxies["proxy"].ca_file.read_text()
            )
            routes = {"direct": 0, "proxy": proxies["proxy"].port, "pool": proxies["pool"].port}
            samples: dict[str, list[float]] = {name: [] for name in routes}
            names = list(routes)
            started = time.monotonic()
            for r in range(args.rounds):
                for i in range(len(names)):
                    name = names[(r + i) % len(names)]
                    for _ in range(args.requests):
                        samples[name].append(sample(routes[name], relay_port, bundle))
            direct = statistics.median(samples["direct"])
            print(f"{args.rounds} rounds x {args.requests} requests, {time.monotonic() - started:.0f} s")
            print("  proxy = ATLASSIAN_PROXY_UPSTREAM_POOL=false, pool = the default")
            for name, values in samples.items():
                median = statistics.median(values)
                print(f"  {name:<7} median {median * 1000:7.1f} ms  ({median / direct:.2f}x direct)")
        finally:
            for proxy in proxies.values():
                proxy.stop()
            relay.terminate()
            site.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark the proxy against no proxy ("direct") and plain mitmdump, side by side.

    python bench/run.py [--quick] [--otlp] [--client-credentials] [--json PATH]
    python bench/run.py --holds [--quick]       # rate-limit holds, the in-flight cap, the state store

Everything runs on loopback: nginx poses as acme.atlassian.net with a trustme test CA, and
both proxies reach it through the same CONNECT_TO resolver redirect. Plain mitmdump gets that
redirect from `bench/mitm_connect_to.py` (the proxy's own `ConnectTo`, nothing else) rather
than nginx on port 443 plus an /etc/hosts entry: no system files change, and both proxies pay
the same for the redirect. mitmdump also gets the proxy's `stream_large_bodies=1m`, the same
confdir (so the same CA) and an upstream trust bundle built like the proxy's.

As root, the whole run first moves into a fresh network namespace holding only `lo`, so a
misrouted request fails instead of reaching the real Atlassian. Runs of the three setups are
interleaved (the order rotates every round) so machine drift hits all alike. See
bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import certifi
import trustme

BENCH_DIR = Path(__file__).resolve().parent
ADDON_SCRIPT = BENCH_DIR.parent / "proxy_addon" / "addon.py"
COLLECTOR_SCRIPT = BENCH_DIR.parent / "tests" / "support" / "otlp_collector.py"
CHAOS_SCRIPT = BENCH_DIR.parent / "tests" / "support" / "chaos_site.py"
HOST = "acme.atlassian.net"
SMALL_PATH = "/rest/api/3/myself"
BIG_BYTES = 256 << 20
EMAIL = "bench@acme.example"
TOKEN = "Ab3dE6gH9jK2mN5pQ8sT1vWx"  # made up; only the loopback stand-in sees it
GATEWAY = "api.atlassian.com"
TOKEN_HOST = "auth.atlassian.com"
CLOUD_ID = "5ca1ab1e-0000-4000-8000-00000000c0de"
CLIENT_SECRET = "bench-Client-secret-0123456789"  # made up too
SERVICE_ACCOUNT_TOML = f"""
[[sites]]
name = "bench-bot"
hosts = ["{HOST}"]
scheme = "client_credentials"
client_id = "bench-client"
client_secret_env = "BENCH_CLIENT_SECRET"
cloud_id = "{CLOUD_ID}"
"""
SITE_KINDS = ("proxy", "proxy-cc")
"""The same proxy with a Basic site and with a client-credentials site (`--client-credentials`)."""
RTT_MS = 50
CONCURRENCY = 16
ROLES = ("proxy", "client", "upstream", "other")
CONFIGS = ("direct", "mitmdump", "proxy")
PROXIES = ("mitmdump", "proxy")
NO_POOL = "proxy-nopool"
"""The proxy with `ATLASSIAN_PROXY_UPSTREAM_POOL=false`: every upstream connection dialled, as before issue 25."""
WAN_CONFIGS = ("direct", "mitmdump", NO_POOL, "proxy")
CHAOS_CONFIGS = ("direct", NO_POOL, "proxy")
CHAOS_GAP_S = (0.0, 1.5)
CHAOS_LIFETIME_S = (0.6, 3.0)
"""The chaos site closes a connection idle this long (drawn per connection; half FIN, half RST)."""
CHAOS_ARRIVAL_AGE_S = 0.3
"""A connection this old at its first request is a warm one (a fresh one over the link is about 0.13 s
old): 30% of those are closed as the request arrives, the race the pool's resend is for."""
TOOLS = ("nginx", "hey", "curl")
INSTALL_HINT = "apt-get install -y nginx hey curl iproute2"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Plan:
    """How much of each workload to run; `--quick` trades precision for a run under two minutes."""

    rounds: int
    w1_requests: int
    w2_requests: int
    w3_rounds: int
    startup_runs: int
    wan_requests: int
    chaos_requests: int
    """GETs per setup through the site that drops connections (in `rounds` interleaved parts)."""


FULL = Plan(rounds=5, w1_requests=40, w2_requests=4800, w3_rounds=3, startup_runs=6, wan_requests=20, chaos_requests=40)
QUICK = Plan(rounds=2, w1_requests=15, w2_requests=1600, w3_rounds=1, startup_runs=2, wan_requests=6, chaos_requests=12)


# --- environment ---------------------------------------------------------------------------


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def venv_tool(name: str) -> str | None:
    """mitmdump and the proxy must come from the same environment as this interpreter."""
    return shutil.which(name, path=str(Path(sys.executable).parent))


def isolate_network() -> str:
    """Move into a new network namespace with only loopback, when we may (root, Linux, `ip`).

    Every target here is 127.0.0.1 anyway; this turns a mistake (a redirect that did not load)
    into a failed request instead of traffic to the real acme.atlassian.net.
    """
    if os.geteuid() != 0 or not hasattr(os, "unshare") or shutil.which("ip") is None:
        return "host network namespace (not root or no `ip`): traffic still only targets 127.0.0.1"
    try:
        os.unshare(os.CLONE_NEWNET)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        return f"host network namespace (unshare failed: {e})"
    return "private network namespace with only lo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before listening")
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.01)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {seconds:.0f}s")


# --- processes and their CPU/memory ---------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (nginx does its work in a worker child)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process tree, from /proc (utime and stime are fields 14 and 15)."""
    total = 0
    for member in process_tree(pid):
        with suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def children_cpu() -> float:
    """CPU of reaped children: the clients (curl, hey), since services are not reaped until the end."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (from /proc/stat), to expose outside load."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def status_kb(pid: int, key: str) -> int | None:
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def reset_peak_rss(pid: int) -> bool:
    """Writing 5 to clear_refs resets VmHWM, so a peak belongs to one transfer, not the whole run."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Service:
    """A long-running process under test; its output goes to a file so no pipe can fill up."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def launch(name: str, argv: list[str], port: int, workdir: Path, env: dict[str, str] | None = None) -> Service:
    log = workdir / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    return Service(name, process, port, log)


# --- the upstream stand-in ------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    ca: Path
    chain: Path
    key: Path
    upstream_bundle: Path


def make_certs(workdir: Path) -> Certs:
    """A test CA and a certificate for the stand-in; the bundle adds the CA to certifi, as the proxy does."""
    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "*.atlassian.net", GATEWAY, TOKEN_HOST)
    paths = Certs(workdir / "ca.pem", workdir / "chain.pem", workdir / "key.pem", workdir / "upstream-bundle.pem")
    ca.cert_pem.write_to_path(str(paths.ca))
    paths.chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(paths.key))
    paths.upstream_bundle.write_text(Path(certifi.where()).read_text() + "\n" + paths.ca.read_text())
    return paths


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
  uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {chain}; ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22 defaults to TLS 1.2 only; Atlassian speaks 1.3
    location = {small} {{ default_type application/json;
      return 200 '{{"accountId":"bench","displayName":"Bench User","emailAddress":"bench@acme.example"}}'; }}
    location = /download {{ alias {dir}/big.bin; default_type application/octet-stream; }}
    # mirror_request_body makes nginx read the whole upload before it answers (a bare `return`
    # would answer first and discard the body, so the client's timing would not cover it).
    location = /upload {{ client_max_body_size 0; mirror /discard; mirror_request_body on;
      default_type application/json; return 200 '{{"received":true}}'; }}
    location = /discard {{ internal; return 204; }}
    # --client-credentials: the token endpoint and the gateway's form of the small endpoint.
    location = /oauth/token {{ default_type application/json;
      return 200 '{{"access_token":"bench-access-token","expires_in":3600,"token_type":"Bearer"}}'; }}
    location = /ex/jira/{cloud_id}{small} {{ default_type application/json;
      return 200 '{{"accountId":"bench","displayName":"Bench Bot"}}'; }}
  }}
}}
"""


def start_nginx(workdir: Path, certs: Certs) -> Service:
    """nginx in the foreground with its own config; a sparse file is the download (no disk, no RAM)."""
    with (workdir / "big.bin").open("wb") as big:
        big.truncate(BIG_BYTES)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(dir=workdir, port=port, chain=certs.chain, key=certs.key, small=SMALL_PATH, cloud_id=CLOUD_ID)
    )
    service = launch("nginx", ["nginx", "-c", str(conf), "-p", str(workdir), "-e", "stderr"], port, workdir)
    wait_for_port(port, service.process)
    return service


def start_collector(workdir: Path) -> Service:
    """The tests' stand-in OTLP/HTTP collector, as a process of its own: its CPU is not the proxy's."""
    port = free_port()
    service = launch("otlp-collector", [sys.executable, str(COLLECTOR_SCRIPT), "--port", str(port)], port, workdir)
    wait_for_port(port, service.process)
    return service


def start_delay_link(workdir: Path, target_port: int) -> Service:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "delaylink.py"), "--listen-port", str(port)]
    argv += ["--target-port", str(target_port), "--rtt-ms", str(RTT_MS)]
    service = launch("delaylink", argv, port, workdir)
    wait_for_port(port, service.process)
    return service


# --- the proxies ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """What every proxy launch needs: where things are and where the upstream really listens."""

    workdir: Path
    confdir: Path
    certs: Certs
    upstream_port: int
    otlp_endpoint: str | None = None
    """The stand-in OTLP collector that the `proxy-otlp` setup sends its audit records to."""
    state_url: str | None = None
    """The local Redis server the `proxy-store` setup shares its state through (`--holds`)."""

    @property
    def client_ca(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    @property
    def connect_to(self) -> str:
        return f"*.atlassian.net=127.0.0.1:{self.upstream_port}"


def mitmdump_argv(stage: Stage, port: int, *extra: str) -> list[str]:
    argv = [venv_tool("mitmdump") or "mitmdump", "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port)]
    argv += ["--set", f"confdir={stage.confdir}", "--set", "stream_large_bodies=1m"]
    return [*argv, "--set", f"ssl_verify_upstream_trusted_ca={stage.certs.upstream_bundle}", *extra]


def proxy_argv(kind: str, stage: Stage, port: int) -> tuple[list[str], dict[str, str]]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("ATLASSIAN_PROXY_") and not k.lower().endswith("_proxy")
    }
    env["BENCH_CONNECT_TO"] = stage.connect_to
    if kind == "mitmdump":
        return mitmdump_argv(stage, port, "-s", str(BENCH_DIR / "mitm_connect_to.py")), env
    if kind == "warm-pool":
        script = str(BENCH_DIR / "experiments" / "warm_pool.py")
        env["BENCH_UPSTREAM_CA"] = str(stage.certs.upstream_bundle)
        return mitmdump_argv(stage, port, "--set", "connection_strategy=lazy", "-s", script), env
    env |= {
        "ATLASSIAN_PROXY_EMAIL": EMAIL,
        "ATLASSIAN_PROXY_API_TOKEN": TOKEN,
        "ATLASSIAN_PROXY_CONNECT_TO": stage.connect_to,
        "ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE": str(stage.certs.ca),
        "ATLASSIAN_PROXY_CONFDIR": str(stage.confdir),
    }
    if kind == "addon":
        return mitmdump_argv(stage, port, "-s", str(ADDON_SCRIPT)), env
    if kind == NO_POOL:
        env["ATLASSIAN_PROXY_UPSTREAM_POOL"] = "false"
    if kind == "proxy-otlp":
        assert stage.otlp_endpoint is not None
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = stage.otlp_endpoint
    if kind == "proxy-cc":
        config = stage.workdir / "service-account.toml"
        config.write_text(SERVICE_ACCOUNT_TOML)
        for name in ("ATLASSIAN_PROXY_EMAIL", "ATLASSIAN_PROXY_API_TOKEN"):
            del env[name]
        gateway = f"{GATEWAY}=127.0.0.1:{stage.upstream_port},{TOKEN_HOST}=127.0.0.1:{stage.upstream_port}"
        env |= {
            "ATLASSIAN_PROXY_CONFIG": str(config),
            "ATLASSIAN_PROXY_CONNECT_TO": f"{stage.connect_to},{gateway}",
            "BENCH_CLIENT_SECRET": CLIENT_SECRET,
        }
    if kind == "proxy-store":
        assert stage.state_url is not None
        env["ATLASSIAN_PROXY_STATE_URL"] = stage.state_url
    return [venv_tool("atlassian-auth-proxy") or "atlassian-auth-proxy", "run", "--listen-port", str(port)], env


def probe(port: int, ca_file: Path) -> bool:
    """One proxied GET for the small endpoint, done in-process so polling is cheap."""
    try:
        context = ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError):
        return False  # the proxy has not written its CA yet
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    conn.set_tunnel(HOST, 443)
    try:
        conn.request("GET", SMALL_PATH)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def start_proxy(kind: str, stage: Stage) -> tuple[Service, float]:
    """Launch a proxy and return it with the seconds until its first proxied request succeeded."""
    port = free_port()
    argv, env = proxy_argv(kind, stage, port)
    started = time.monotonic()
    service = launch(kind, argv, port, stage.workdir, env)
    deadline = started + WAIT_SECONDS
    while time.monotonic() < deadline:
        if probe(port, stage.client_ca):
            return service, time.monotonic() - started
        if service.process.poll() is not None:
            raise RuntimeError(f"{kind} exited with {service.process.returncode}; see {service.log}")
        time.sleep(0.005)
    service.stop()
    raise RuntimeError(f"{kind} did not serve a request within {WAIT_SECONDS:.0f}s; see {service.log}")


# --- clients --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """How a client reaches the stand-in in one configuration."""

    config: str
    upstream_port: int
    proxy: Service | None
    client_ca: Path

    def curl_args(self) -> list[str]:
        if self.proxy is None:
            return ["--connect-to", f"{HOST}:443:127.0.0.1:{self.upstream_port}", "--cacert", str(self.client_ca)]
        return ["--proxy", f"http://127.0.0.1:{self.proxy.port}", "--cacert", str(self.client_ca)]

    def hey_args(self, path: str) -> list[str]:
        """hey cannot redirect a connect, so direct uses the IP with Host/SNI set by -host."""
        if self.proxy is None:
            return ["-host", HOST, f"https://127.0.0.1:{self.upstream_port}{path}"]
        return ["-x", f"http://127.0.0.1:{self.proxy.port}", f"https://{HOST}{path}"]


CURL_FORMAT = "%{http_code} %{time_total} %{http_version} %{size_download} %{size_upload}"
CLIENT_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"}


def curl(route: Route, path: str, *extra: str, timeout: float = 120) -> dict[str, Any]:
    """One curl process, one connection, as in a shell loop; curl's own timing is the latency."""
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", CURL_FORMAT, "--max-time", str(timeout)]
    argv += [*route.curl_args(), *extra, f"https://{HOST}{path}"]
    done = subprocess.run(argv, capture_output=True, text=True, env=CLIENT_ENV, check=False, timeout=timeout + 10)
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 5 or fields[0] != "200":
        raise RuntimeError(f"curl via {route.config} failed ({done.returncode}): {done.stdout} {done.stderr.strip()}")
    return {
        "seconds": float(fields[1]),
        "http_version": fields[2],
        "down": int(float(fields[3])),
        "up": int(float(fields[4])),
    }


def curl_outcome(route: Route, *extra: str) -> float | None:
    """One curl as in `curl`, or None when the client saw an error (a failure or a status other than 200)."""
    try:
        return float(curl(route, SMALL_PATH, *extra, timeout=30)["seconds"])
    except (RuntimeError, subprocess.TimeoutExpired):
        return None


def curl_reusing(route: Route, count: int) -> list[float]:
    """`count` requests in one curl process: one connection, kept warm (the best a pool could do)."""
    argv = ["curl", "-sS", "--max-time", "120", *route.curl_args()]
    for _ in range(count):
        argv += ["-o", "/dev/null", "-w", "%{http_code} %{time_total}\\n", f"https://{HOST}{SMALL_PATH}"]
    done = subprocess.run(argv, capture_output=True, text=True, env=CLIENT_ENV, check=False, timeout=180)
    lines = [line.split() for line in done.stdout.splitlines()]
    if done.returncode != 0 or len(lines) != count or any(code != "200" for code, _ in lines):
        raise RuntimeError(f"curl (reusing) via {route.config} failed: {done.stderr.strip()}")
    return [float(seconds) for _, seconds in lines[1:]]  # the first one paid for the connection


def hey(route: Route, requests: int) -> dict[str, float]:
    """hey with keep-alive: it verifies no certificate (InsecureSkipVerify), which is fine for load."""
    argv = ["hey", "-n", str(requests), "-c", str(CONCURRENCY), "-t", "30", *route.hey_args(SMALL_PATH)]
    done = subprocess.run(argv, capture_output=True, text=True, env=CLIENT_ENV, check=False, timeout=600)
    return parse_hey(done.stdout, requests // CONCURRENCY * CONCURRENCY, route.config)  # hey sends n/c per client


def parse_hey(output: str, requests: int, config: str) -> dict[str, float]:
    result: dict[str, float] = {}
    for line in output.splitlines():
        words = line.split()
        if line.strip().startswith("Requests/sec:"):
            result["rps"] = float(words[1])
        elif len(words) == 4 and words[0] in ("50%", "99%") and words[1] == "in":
            result["p" + words[0].rstrip("%")] = float(words[2])
    if f"[200]\t{requests} responses" not in output or len(result) != 3:
        raise RuntimeError(f"hey via {config} did not get {requests} OK responses:\n{output[-2000:]}")
    return result


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Meter:
    """CPU seconds spent by proxy, client and upstream, and wall seconds, summed over runs.

    "other" is every other process on the machine: on a shared box it says how far to trust the
    figures (a few percent of a core is fine; a whole core means noisy neighbours).
    """

    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ROLES, 0.0))

    @contextmanager
    def measure(self, proxy: Service | None, upstream: Service) -> Iterator[None]:
        def snapshot() -> dict[str, float]:
            ours = {
                "proxy": cpu_seconds(proxy.process.pid) if proxy else 0.0,
                "client": children_cpu(),
                "upstream": cpu_seconds(upstream.process.pid),
            }
            return ours | {"other": machine_busy_seconds() - sum(ours.values())}

        before, started = snapshot(), time.monotonic()
        yield
        self.wall += time.monotonic() - started
        after = snapshot()
        for role in self.cpu:
            self.cpu[role] += after[role] - before[role]

    def summary(self) -> dict[str, Any]:
        load = {role: seconds / self.wall for role, seconds in self.cpu.items()} if self.wall else {}
        busiest = max(ROLES[:3], key=lambda role: load[role]) if load else None
        return {"wall_s": self.wall, "cpu_s": self.cpu, "cores": load, "bottleneck": busiest}


def rotations(rounds: int, configs: tuple[str, ...] = CONFIGS) -> Iterator[str]:
    """A B C, B C A, C A B, …: interleaved, and no setup always runs first or last."""
    for r in range(rounds):
        for i in range(len(configs)):
            yield configs[(r + i) % len(configs)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def w1(routes: dict[str, Route], upstream: Service, rounds: int, requests: int) -> dict[str, Any]:
    """W1: a new curl (so a new connection and TLS handshake) per request."""
    samples: dict[str, list[float]] = {c: [] for c in routes}
    meters = {c: Meter() for c in routes}
    versions: dict[str, set[str]] = {c: set() for c in routes}
    for config in rotations(rounds, tuple(routes)):
        route = routes[config]
        with meters[config].measure(route.proxy, upstream):
            for _ in range(requests):
                result = curl(route, SMALL_PATH)
                samples[config].append(result["seconds"])
                versions[config].add(result["http_version"])
    return {
        c: {
            "median_ms": statistics.median(samples[c]) * 1000,
            "p95_ms": percentile(samples[c], 0.95) * 1000,
            "http_version": sorted(versions[c]),
            "samples_ms": [s * 1000 for s in samples[c]],
            "load": meters[c].summary(),
        }
        for c in routes
    }


def w2(routes: dict[str, Route], upstream: Service, plan: Plan) -> dict[str, Any]:
    """W2: 16 keep-alive clients; each round's req/s is one sample, the median is reported."""
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in routes}
    meters = {c: Meter() for c in routes}
    for config in rotations(plan.rounds, tuple(routes)):
        with meters[config].measure(routes[config].proxy, upstream):
            runs[config].append(hey(routes[config], plan.w2_requests))
    return {
        c: {
            "rps": statistics.median(r["rps"] for r in runs[c]),
            "p50_ms": statistics.median(r["p50"] for r in runs[c]) * 1000,
            "p99_ms": statistics.median(r["p99"] for r in runs[c]) * 1000,
            "proxy_cpu_us": proxy_cpu_us(meters[c], len(runs[c]) * (plan.w2_requests // CONCURRENCY * CONCURRENCY)),
            "runs": runs[c],
            "load": meters[c].summary(),
        }
        for c in routes
    }


def proxy_cpu_us(meter: Meter, requests: int) -> float | None:
    """The proxy's CPU time per request. Unlike req/s it does not move with the client's share of
    the cores, so on a shared machine it is the steadier measure of the proxy's own work."""
    return meter.cpu["proxy"] / requests * 1e6 if requests and meter.cpu["proxy"] else None


def transfer(route: Route, direction: str, big_file: Path) -> dict[str, Any]:
    """One 256 MB transfer over HTTP/1.1 (curl 7.88 stalls on large HTTP/2 uploads to nginx)."""
    proxy_pid = route.proxy.process.pid if route.proxy else None
    reset = reset_peak_rss(proxy_pid) if proxy_pid else False
    if direction == "download":
        result = curl(route, "/download", "--http1.1")
        moved = result["down"]
    else:
        result = curl(route, "/upload", "--http1.1", "-T", str(big_file))
        moved = result["up"]
    if moved != BIG_BYTES:
        raise RuntimeError(f"{direction} via {route.config} moved {moved} bytes, not {BIG_BYTES}")
    peak = status_kb(proxy_pid, "VmHWM") if proxy_pid else None
    return {
        "seconds": result["seconds"],
        "mb_per_s": BIG_BYTES / result["seconds"] / 1e6,
        "peak_rss_mb": peak / 1024 if peak else None,
        "peak_is_per_transfer": reset,
    }


def w3(routes: dict[str, Route], upstream: Service, plan: Plan, big_file: Path) -> dict[str, Any]:
    """W3: 256 MB down and up; the reported time is the median over rounds, RSS the worst peak."""
    results: dict[str, Any] = {}
    for direction in ("download", "upload"):
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in routes}
        meters = {c: Meter() for c in routes}
        for config in rotations(plan.w3_rounds, tuple(routes)):
            with meters[config].measure(routes[config].proxy, upstream):
                runs[config].append(transfer(routes[config], direction, big_file))
        for c in routes:
            peaks = [r["peak_rss_mb"] for r in runs[c] if r["peak_rss_mb"] is not None]
            seconds = statistics.median(r["seconds"] for r in runs[c])
            results.setdefault(c, {})[direction] = {
                "seconds": seconds,
                "mb_per_s": BIG_BYTES / seconds / 1e6,
                "peak_rss_mb": max(peaks) if peaks else None,
                "runs": runs[c],
                "load": meters[c].summary(),
            }
    return results


def startup(stage: Stage, plan: Plan) -> dict[str, Any]:
    """Seconds from launching a proxy until its first proxied request succeeds (CA already made)."""
    samples: dict[str, list[float]] = {kind: [] for kind in PROXIES}
    for kind in rotations(plan.startup_runs, PROXIES):
        service, seconds = start_proxy(kind, stage)
        service.stop()
        samples[kind].append(seconds)
    return {k: {"median_s": statistics.median(v), "max_s": max(v), "samples_s": v} for k, v in samples.items()}


# --- orchestration --------------------------------------------------------------------------


@contextmanager
def proxies_for(stage: Stage, upstream_port: int, kinds: tuple[str, ...] = PROXIES) -> Iterator[dict[str, Route]]:
    """A route per configuration; the proxies run for the whole block and stop afterwards."""
    services: list[Service] = []
    try:
        routes = {"direct": Route("direct", upstream_port, None, stage.certs.ca)}
        for kind in kinds:
            service, _ = start_proxy(kind, stage)
            services.append(service)
            routes[kind] = Route(kind, upstream_port, service, stage.client_ca)
        yield routes
    finally:
        for service in services:
            service.stop()


def wan(stage: Stage, upstream: Service, plan: Plan, warm_pool: bool) -> dict[str, Any]:
    """W1 again with the upstream behind a 50 ms RTT link, plus a warm-connection floor.

    The proxy runs with its upstream pool (the default) and without it. With `warm_pool`, also the
    bench/experiments/warm_pool.py prototype (mitmdump answering from a shared upstream client).
    """
    link = start_delay_link(stage.workdir, upstream.port)
    far = Stage(stage.workdir, stage.confdir, stage.certs, link.port)
    kinds = ("mitmdump", NO_POOL, "proxy", *(("warm-pool",) if warm_pool else ()))
    try:
        with proxies_for(far, link.port, kinds) as routes:
            result = w1(routes, upstream, plan.rounds, plan.wan_requests)
            warm = curl_reusing(routes["direct"], plan.wan_requests + 1)
            result["direct-warm"] = {
                "median_ms": statistics.median(warm) * 1000,
                "p95_ms": percentile(warm, 0.95) * 1000,
            }
        return result
    finally:
        link.stop()


def start_chaos_site(workdir: Path) -> tuple[Service, Certs]:
    """tests/support/chaos_site.py as a process: it drops idle connections at random (FIN or RST) and
    some warm ones as their first request arrives; its CA is written for the clients and proxies."""
    ca = workdir / "chaos-ca.pem"
    port = free_port()
    argv = [sys.executable, str(CHAOS_SCRIPT), "--seed", "25", "--ca", str(ca), "--port", str(port)]
    argv += ["--arrival-age", str(CHAOS_ARRIVAL_AGE_S), "--lifetime", *map(str, CHAOS_LIFETIME_S)]
    service = launch("chaos-site", argv, port, workdir)
    wait_for_port(port, service.process)
    bundle = workdir / "chaos-bundle.pem"
    bundle.write_text(Path(certifi.where()).read_text() + "\n" + ca.read_text())
    return service, Certs(ca, ca, ca, bundle)


def chaos_summary(site: Service) -> dict[str, Any]:
    """The site's counts, which it prints as one JSON line when stopped."""
    site.stop()
    lines = [line for line in site.log.read_text().splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def chaos(stage: Stage, plan: Plan) -> dict[str, Any]:
    """The WAN workload through a site that drops connections: GETs with random gaps, client-visible errors counted.

    Direct curl sends the Basic credential itself (as a client without the proxy must); through the
    proxy it is injected. The site counts requests that reached it without one.
    """
    site, certs = start_chaos_site(stage.workdir)
    link = start_delay_link(stage.workdir, site.port)
    far = Stage(stage.workdir, stage.confdir, certs, link.port)
    rng = random.Random(25)
    per_round = max(1, plan.chaos_requests // plan.rounds)
    result: dict[str, Any] = {}
    try:
        with proxies_for(far, link.port, (NO_POOL, "proxy")) as routes:
            samples: dict[str, list[float]] = {c: [] for c in CHAOS_CONFIGS}
            errors = dict.fromkeys(CHAOS_CONFIGS, 0)
            for config in rotations(plan.rounds, CHAOS_CONFIGS):
                auth = ("-u", f"{EMAIL}:{TOKEN}") if config == "direct" else ()
                for _ in range(per_round):
                    time.sleep(rng.uniform(*CHAOS_GAP_S))
                    seconds = curl_outcome(routes[config], *auth)
                    if seconds is None:
                        errors[config] += 1
                    else:
                        samples[config].append(seconds)
            for c in CHAOS_CONFIGS:
                result[c] = {
                    "requests": per_round * plan.rounds,
                    "errors": errors[c],
                    "median_ms": statistics.median(samples[c]) * 1000 if samples[c] else None,
                }
    finally:
        link.stop()
        result["site"] = chaos_summary(site)
    return result


def idle_rss_mb(route: Route) -> float | None:
    assert route.proxy is not None
    rss = status_kb(route.proxy.process.pid, "VmRSS")
    return rss / 1024 if rss else None


def client_credentials(stage: Stage, upstream: Service, plan: Plan) -> dict[str, Any]:
    """W1 and W2 through a client-credentials site and a Basic site of the same proxy, interleaved.

    The token endpoint and the gateway are the same local nginx: after the first request mints,
    a warm access token should cost nothing a Basic token does not.
    """
    with proxies_for(stage, upstream.port, SITE_KINDS) as routes:
        sites = {kind: routes[kind] for kind in SITE_KINDS}
        return {"w1": w1(sites, upstream, plan.rounds, plan.w1_requests), "w2": w2(sites, upstream, plan)}


def run(
    plan: Plan, workdir: Path, say: Callable[[str], None], warm_pool: bool, otlp: bool, service_account: bool = False
) -> dict[str, Any]:
    certs = make_certs(workdir)
    confdir = workdir / "confdir"
    upstream = start_nginx(workdir, certs)
    collector = start_collector(workdir) if otlp else None
    endpoint = f"http://127.0.0.1:{collector.port}" if collector else None
    stage = Stage(workdir, confdir, certs, upstream.port, endpoint)
    results: dict[str, Any] = {}
    try:
        kinds = (*PROXIES, NO_POOL, "addon", *(("proxy-otlp",) if otlp else ()))
        with proxies_for(stage, upstream.port, kinds) as routes:
            main_routes = {c: routes[c] for c in CONFIGS}
            say("W1: a new connection per request (the proxy with and without its upstream pool)")
            results["w1"] = w1({**main_routes, NO_POOL: routes[NO_POOL]}, upstream, plan.rounds, plan.w1_requests)
            time.sleep(1.0)  # W1 left the pool warm; let the last connections settle
            results["idle_rss_mb"] = {c: idle_rss_mb(routes[c]) for c in ("proxy", NO_POOL)}
            say("W2: keep-alive, 16 clients (and the addon alone in mitmdump" + (", and with OTLP)" if otlp else ")"))
            results["w2"] = w2(routes, upstream, plan)
            say("W3: 256 MB download and upload")
            results["w3"] = w3(main_routes, upstream, plan, workdir / "big.bin")
        if service_account:
            say("W1 and W2 through a client-credentials site and a Basic site")
            results["client_credentials"] = client_credentials(stage, upstream, plan)
        say("startup")
        results["startup"] = startup(stage, plan)
        say(f"WAN: W1 over a {RTT_MS} ms RTT link")
        results["wan"] = wan(stage, upstream, plan, warm_pool)
        say(f"WAN chaos: GETs with random gaps through a site that drops connections, over {RTT_MS} ms")
        results["chaos"] = chaos(stage, plan)
    finally:
        upstream.stop()
        if collector is not None:
            collector.stop()
            results["otlp_collector"] = collector.log.read_text().strip().splitlines()[-1:]
    return results


# --- report ---------------------------------------------------------------------------------


def ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return ""
    return f"{value / reference:.2f}x"


def table_rows(results: dict[str, Any]) -> list[tuple[str, dict[str, float | None]]]:
    """(figure, value per configuration) for every figure in the table."""
    w1, w2, w3, wan = results["w1"], results["w2"], results["w3"], results["wan"]
    rows: list[tuple[str, dict[str, float | None]]] = [
        ("W1 median ms", {c: w1[c]["median_ms"] for c in CONFIGS}),
        ("W1 p95 ms", {c: w1[c]["p95_ms"] for c in CONFIGS}),
        ("W2 req/s", {c: w2[c]["rps"] for c in CONFIGS}),
        ("W2 p50 ms", {c: w2[c]["p50_ms"] for c in CONFIGS}),
        ("W2 p99 ms", {c: w2[c]["p99_ms"] for c in CONFIGS}),
        ("W2 proxy CPU us/req", {c: w2[c]["proxy_cpu_us"] for c in CONFIGS}),
    ]
    for direction in ("download", "upload"):
        rows.append((f"W3 {direction} s", {c: w3[c][direction]["seconds"] for c in CONFIGS}))
        rows.append((f"W3 {direction} MB/s", {c: w3[c][direction]["mb_per_s"] for c in CONFIGS}))
        rows.append((f"W3 {direction} peak RSS MB", {c: w3[c][direction]["peak_rss_mb"] for c in CONFIGS}))
    rows.append(("startup s (median)", {"direct": None, **{k: results["startup"][k]["median_s"] for k in PROXIES}}))
    rows.append(("WAN W1 median ms", {c: wan[c]["median_ms"] for c in CONFIGS}))
    rows.append(("WAN W1 p95 ms", {c: wan[c]["p95_ms"] for c in CONFIGS}))
    return rows


def format_pool(results: dict[str, Any]) -> str:
    """The upstream pool's own rows: the proxy with it (the default) against the proxy without it, and direct."""
    w1, w2, wan, rss, mess = results["w1"], results["w2"], results["wan"], results["idle_rss_mb"], results["chaos"]
    header = f"{'upstream pool':<26}{'direct':>10}{'mitmdump':>10}{'no pool':>10}{'pool':>10}{'pool/no':>9}"
    lines = [header, "-" * len(header)]

    def row(name: str, values: dict[str, Any]) -> None:
        cells = [f"{values[c]:.2f}" if values.get(c) is not None else "-" for c in WAN_CONFIGS]
        lines.append(
            f"{name:<26}" + "".join(f"{cell:>10}" for cell in cells) + f"{ratio(values['proxy'], values[NO_POOL]):>9}"
        )

    row("W1 median ms", {c: w1[c]["median_ms"] for c in WAN_CONFIGS})
    row("W2 req/s", {c: w2[c]["rps"] if c in w2 else None for c in WAN_CONFIGS})
    row("W2 proxy CPU us/req", {c: w2[c]["proxy_cpu_us"] if c in w2 else None for c in WAN_CONFIGS})
    row("idle RSS MB (after W1)", {"direct": None, "mitmdump": None, **rss})
    row("WAN W1 median ms", {c: wan[c]["median_ms"] for c in WAN_CONFIGS})
    row("WAN W1 p95 ms", {c: wan[c]["p95_ms"] for c in WAN_CONFIGS})
    direct = wan["direct"]["median_ms"]
    lines.append(f"{'WAN W1 / direct':<26}" + "".join(f"{ratio(wan[c]['median_ms'], direct):>10}" for c in WAN_CONFIGS))
    row("WAN chaos median ms", {"mitmdump": None, **{c: mess[c]["median_ms"] for c in CHAOS_CONFIGS}})
    lines.append(
        f"{'WAN chaos errors':<26}"
        + "".join(f"{mess[c]['errors'] if c in mess else '-'!s:>10}" for c in WAN_CONFIGS)
        + f"   of {mess['direct']['requests']} GETs each; site: {json.dumps(mess.get('site', {}))}"
    )
    return "\n".join(lines)


def format_table(results: dict[str, Any]) -> str:
    header = f"{'figure':<26}{'direct':>10}{'mitmdump':>10}{'/direct':>9}{'proxy':>10}{'/direct':>9}{'/mitmdump':>10}"
    lines = [header, "-" * len(header)]
    for name, v in table_rows(results):
        cells = [f"{v[c]:.2f}" if v[c] is not None else "-" for c in CONFIGS]
        lines.append(
            f"{name:<26}{cells[0]:>10}{cells[1]:>10}{ratio(v['mitmdump'], v['direct']):>9}"
            f"{cells[2]:>10}{ratio(v['proxy'], v['direct']):>9}{ratio(v['proxy'], v['mitmdump']):>10}"
        )
    addon, reference = results["w2"]["addon"], results["w2"]["mitmdump"]
    lines.append(
        f"{'W2 addon in mitmdump':<26}{addon['proxy_cpu_us']:>10.2f}   CPU us/req, "
        f"{ratio(addon['proxy_cpu_us'], reference['proxy_cpu_us'])} mitmdump; {addon['rps']:.2f} req/s, "
        f"{ratio(addon['rps'], reference['rps'])} (mitmdump -s proxy_addon/addon.py: the addon's own cost)"
    )
    if otlp := results["w2"].get("proxy-otlp"):
        proxy = results["w2"]["proxy"]
        lines.append(
            f"{'W2 proxy with OTLP':<26}{otlp['proxy_cpu_us']:>10.2f}   CPU us/req, "
            f"{ratio(otlp['proxy_cpu_us'], proxy['proxy_cpu_us'])} proxy; {otlp['rps']:.2f} req/s, "
            f"{ratio(otlp['rps'], proxy['rps'])} (audit records to the stand-in collector: "
            f"{', '.join(results.get('otlp_collector', [])) or 'nothing reported'})"
        )
    if cc := results.get("client_credentials"):
        basic, minted = cc["w1"]["proxy"], cc["w1"]["proxy-cc"]
        lines.append(
            f"{'W1 client credentials':<26}{minted['median_ms']:>10.2f}   median ms, "
            f"{ratio(minted['median_ms'], basic['median_ms'])} the Basic site's {basic['median_ms']:.2f}"
        )
        basic, minted = cc["w2"]["proxy"], cc["w2"]["proxy-cc"]
        lines.append(
            f"{'W2 client credentials':<26}{minted['rps']:>10.2f}   req/s, {ratio(minted['rps'], basic['rps'])} the "
            f"Basic site's {basic['rps']:.2f}; CPU us/req {minted['proxy_cpu_us']:.2f}, "
            f"{ratio(minted['proxy_cpu_us'], basic['proxy_cpu_us'])}"
        )
    warm = results["wan"]["direct-warm"]["median_ms"]
    lines.append(f"{'WAN warm conn. median ms':<26}{warm:>10.2f}   (direct, one curl reusing its connection)")
    if pool := results["wan"].get("warm-pool"):
        direct = results["wan"]["direct"]["median_ms"]
        lines.append(
            f"{'WAN warm-pool median ms':<26}{pool['median_ms']:>10.2f}   ({ratio(pool['median_ms'], direct)} direct;"
            " experiment: mitmdump + bench/experiments/warm_pool.py)"
        )
    return "\n".join(lines)


def format_load(results: dict[str, Any]) -> str:
    """Which process was busiest, in CPU cores used during each workload."""
    lines = ["CPU cores used (proxy / client / upstream / other processes) -> busiest of ours:"]
    sections = [("W1", results["w1"]), ("W2", results["w2"])]
    sections += [(f"W3 {d}", {c: results["w3"][c][d] for c in CONFIGS}) for d in ("download", "upload")]
    for name, by_config in sections:
        for c in CONFIGS:
            load = by_config[c]["load"]
            cores = " / ".join(f"{load['cores'][r]:.2f}" for r in ROLES)
            lines.append(f"  {name:<12}{c:<10}{cores}  -> {load['bottleneck']}")
    return "\n".join(lines)


def goals(results: dict[str, Any]) -> list[tuple[str, bool]]:
    w1, w2, w3, start = results["w1"], results["w2"], results["w3"], results["startup"]
    checks = [
        ("W1 median within 3% of mitmdump", w1["proxy"]["median_ms"] <= 1.03 * w1["mitmdump"]["median_ms"]),
        ("W2 req/s within 3% of mitmdump", w2["proxy"]["rps"] >= 0.97 * w2["mitmdump"]["rps"]),
        ("ready within 1.5 s of launch (median)", start["proxy"]["median_s"] <= 1.5),
    ]
    for d in ("download", "upload"):
        peak = w3["proxy"][d]["peak_rss_mb"]
        checks.append((f"W3 {d} peak RSS <= 100 MB", peak is not None and peak <= 100))
        checks.append((f"W3 {d} >= 0.95x mitmdump", w3["proxy"][d]["mb_per_s"] >= 0.95 * w3["mitmdump"][d]["mb_per_s"]))
    if NO_POOL in w1:
        checks.append(
            ("W1 with the pool no worse than without (3%)", w1["proxy"]["median_ms"] <= 1.03 * w1[NO_POOL]["median_ms"])
        )
        checks.append(("W2 req/s with the pool within 3% of without", w2["proxy"]["rps"] >= 0.97 * w2[NO_POOL]["rps"]))
        rss = results["idle_rss_mb"]
        if rss["proxy"] is not None and rss[NO_POOL] is not None:
            checks.append(("idle RSS with a warm pool within 10 MB of without", rss["proxy"] - rss[NO_POOL] <= 10))
        wan = results["wan"]
        checks.append(
            ("WAN W1 with the pool <= 0.50x direct", wan["proxy"]["median_ms"] <= 0.5 * wan["direct"]["median_ms"])
        )
        mess = results["chaos"]
        checks.append(("WAN chaos: no client-visible error with the pool", mess["proxy"]["errors"] == 0))
        checks.append(
            (
                "WAN chaos: every request reached the site with a credential",
                mess["site"].get("without_authorization") == 0,
            )
        )
    if otlp := w2.get("proxy-otlp"):
        within = otlp["proxy_cpu_us"] <= 1.10 * w2["proxy"]["proxy_cpu_us"]
        checks.append(("W2 proxy CPU/req with OTLP within 10% of without", within))
    if cc := results.get("client_credentials"):
        w1_cc, w2_cc = cc["w1"], cc["w2"]
        slower = w1_cc["proxy-cc"]["median_ms"] <= 1.05 * w1_cc["proxy"]["median_ms"]
        checks.append(("W1 median via a client-credentials site within 5% of a Basic site", slower))
        checks.append(
            (
                "W2 req/s via a client-credentials site within 5% of a Basic site",
                w2_cc["proxy-cc"]["rps"] >= 0.95 * w2_cc["proxy"]["rps"],
            )
        )
    return checks


def report(results: dict[str, Any]) -> str:
    wan = results["wan"]
    lines = [format_table(results), "", format_pool(results), "", format_load(results), "", "Goals:"]
    lines += [f"  [{'met' if ok else 'MISSED'}] {name}" for name, ok in goals(results)]
    lines.append(f"  WAN W1 proxy/direct: {wan['proxy']['median_ms'] / wan['direct']['median_ms']:.2f}x")
    lines.append(f"W1 HTTP versions: { {c: results['w1'][c]['http_version'] for c in CONFIGS} }")
    return "\n".join(lines)


# --- rate limits (--holds) -------------------------------------------------------------------

WINDOW_SECONDS = 2.0
"""The limited stand-in answers 429 for this long, then 200 for as long, again and again."""
LIMITED_PATH = "/rest/api/3/search/jql"
HOLD_RUN_SECONDS = 8
HOOK_LOOPS = 200_000


class WindowSite:
    """A TLS stand-in for acme.atlassian.net that answers 429 for 2 s out of every 4, as Atlassian does
    (Retry-After the rest of the window, RateLimit-Reason jira-burst-based, X-RateLimit-*), and notes when
    each request arrived and what it got."""

    def __init__(self, certs: Certs) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        site = self
        self.started = time.monotonic()
        self.arrivals: list[tuple[float, int]] = []
        self.lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                now = time.monotonic() - site.started
                phase = now % (2 * WINDOW_SECONDS)
                limited = phase < WINDOW_SECONDS
                with site.lock:
                    site.arrivals.append((now, 429 if limited else 200))
                body = b'{"message": "Rate limit exceeded."}' if limited else b'{"issues": []}'
                self.send_response(429 if limited else 200)
                if limited:
                    self.send_header("Retry-After", str(max(1, int(WINDOW_SECONDS - phase + 0.999))))
                    self.send_header("RateLimit-Reason", "jira-burst-based")
                    self.send_header("X-RateLimit-Limit", "100")
                    self.send_header("X-RateLimit-Remaining", "0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certs.chain, certs.key)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                with suppress(ssl.SSLError, OSError):
                    super().finish_request(context.wrap_socket(request, server_side=True), client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def phase(self) -> float:
        return (time.monotonic() - self.started) % (2 * WINDOW_SECONDS)

    def wait_for_phase(self, limited: bool) -> None:
        """Until a window (429s) or a quiet spell (200s) has just begun."""
        while (self.phase() < WINDOW_SECONDS) != limited or self.phase() % WINDOW_SECONDS > 0.05:
            time.sleep(0.005)

    def stop(self) -> None:
        self.server.shutdown()


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    port = free_port()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, process)
    return process, f"redis://127.0.0.1:{port}/0"


def per_window(arrivals: list[tuple[float, int]], since: float, until: float) -> list[dict[str, int]]:
    """For each 429 window between `since` and `until`: how many requests it answered 429, and how many of
    them arrived more than 10 ms after its first (sent after the first 429 could have started a hold)."""
    windows: dict[int, list[float]] = {}
    for at, status in arrivals:
        if status == 429 and since <= at < until:
            windows.setdefault(int(at // (2 * WINDOW_SECONDS)), []).append(at)
    return [
        {"limited": len(times), "after_first": sum(1 for t in times if t > min(times) + 0.010)}
        for _, times in sorted(windows.items())
    ]


def hammer(stage: Stage, site: WindowSite, kind: str) -> dict[str, Any]:
    """16 agents retrying at once on every answer, for two cycles of the stand-in's windows."""
    service, _ = start_proxy(kind, stage)
    try:
        site.wait_for_phase(limited=False)
        since = time.monotonic() - site.started
        argv = ["hey", "-z", f"{HOLD_RUN_SECONDS}s", "-c", str(CONCURRENCY), "-t", "30"]
        argv += ["-x", f"http://127.0.0.1:{service.port}", f"https://{HOST}{LIMITED_PATH}"]
        done = subprocess.run(argv, capture_output=True, text=True, env=CLIENT_ENV, check=False, timeout=120)
        until = time.monotonic() - site.started
    finally:
        service.stop()
    windows = per_window(site.arrivals, since, until)
    answered: dict[str, int] = {}
    for line in done.stdout.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].startswith("[") and words[0].endswith("]") and words[1].isdigit():
            answered[words[0].strip("[]")] = int(words[1])
    return {"windows": windows, "client_answers": answered}


def shared_hold_trials(stage: Stage, site: WindowSite, trials: int = 20) -> dict[str, Any]:
    """Two proxies on the store: right after one's client got the site's 429, the other's next request."""
    a, _ = start_proxy("proxy-store", stage)
    b, _ = start_proxy("proxy-store", stage)
    held, gaps = 0, []
    try:
        time.sleep(0.5)  # both subscribed (they connect in the background once serving)
        context = ssl.create_default_context(cafile=str(stage.client_ca))
        connections = []
        for service in (a, b):
            connection = http.client.HTTPSConnection("127.0.0.1", service.port, context=context, timeout=10)
            connection.set_tunnel(HOST, 443)
            connections.append(connection)
        site.wait_for_phase(limited=True)
        for n in range(trials):
            path = f"/rest/api/3/trial{n}x"
            connections[0].request("GET", path)
            first = connections[0].getresponse()
            first_body = first.read()
            seen_a = time.monotonic()
            connections[1].request("GET", path)
            second = connections[1].getresponse()
            second_body = second.read()
            gaps.append((time.monotonic() - seen_a) * 1000)
            if first.status == 429 and b"Rate limit exceeded" in first_body and b"rate_limited" in second_body:
                held += 1
        for connection in connections:
            connection.close()
    finally:
        a.stop()
        b.stop()
    return {"trials": trials, "held_by_the_other": held, "median_next_request_ms": statistics.median(gaps)}


def hook_cpu_us() -> float:
    """The proxy CPU the holds' and the cap's hooks add to an unbounded client's request (no hold lasting, no
    store), measured in this process: each hook as mitmproxy calls it, on one credentialed flow."""
    from mitmproxy import http as mhttp
    from mitmproxy.test import tflow, tutils

    from proxy_addon.addons.in_flight import InFlightCap
    from proxy_addon.addons.prepared import Prepared
    from proxy_addon.addons.rate_limit_holds import RateLimitHolds
    from proxy_addon.policy.record import Decision, FlowRecord
    from proxy_addon.policy.token_health import TokenHealth
    from proxy_addon.state.holds import SharedHolds
    from proxy_addon.state.store import Store

    holds = SharedHolds(Store())
    limits, cap = RateLimitHolds(holds), InFlightCap(holds, TokenHealth())
    cap.use(Prepared())
    flow = tflow.tflow(req=tutils.treq(host=HOST, port=443, path=LIMITED_PATH.encode()))
    record = FlowRecord.of(flow.metadata)
    record.decision, record.site, record.host, record.stamp = Decision.INJECT, "default", HOST, 0
    response = mhttp.Response.make(200, b"{}", {"Content-Type": "application/json"})
    started = time.process_time()
    for _ in range(HOOK_LOOPS):
        flow.response = None
        limits.requestheaders(flow)
        cap.requestheaders(flow)
        limits.request(flow)
        flow.response = response
        limits.responseheaders(flow)
        cap.response(flow)
    return (time.process_time() - started) / HOOK_LOOPS * 1e6


def run_holds(plan: Plan, workdir: Path, say: Callable[[str], None]) -> dict[str, Any]:
    certs = make_certs(workdir)
    confdir = workdir / "confdir"
    results: dict[str, Any] = {}
    say("hooks: the holds' and the cap's CPU per unbounded request")
    results["hook_cpu_us"] = hook_cpu_us()
    site = WindowSite(certs)
    redis = start_redis(workdir)
    state_url = redis[1] if redis else None
    limited = Stage(workdir, confdir, certs, site.port, state_url=state_url)
    try:
        for kind in ("mitmdump", "proxy"):
            say(f"429 windows: 16 agents hammering one endpoint through {kind}")
            results.setdefault("windows", {})[kind] = hammer(limited, site, kind)
        if redis is not None:
            say("store: one proxy's hold, the other's next request")
            results["shared"] = shared_hold_trials(limited, site)
        upstream = start_nginx(workdir, certs)
        try:
            if redis is not None:
                say("W2 with the store on and off")
                stage = Stage(workdir, confdir, certs, upstream.port, state_url=state_url)
                with proxies_for(stage, upstream.port, ("proxy", "proxy-store")) as routes:
                    del routes["direct"]
                    results["w2"] = w2(routes, upstream, plan)
        finally:
            upstream.stop()
    finally:
        site.stop()
        if redis is not None:
            redis[0].kill()
            redis[0].wait()
    return results


def report_holds(results: dict[str, Any]) -> str:
    lines = [f"holds and cap hooks: {results['hook_cpu_us']:.2f} us CPU per unbounded request (goal <= 20)"]
    for kind, found in results["windows"].items():
        windows = found["windows"]
        limited = [w["limited"] for w in windows]
        after = [w["after_first"] for w in windows]
        lines.append(
            f"429 windows via {kind:<9}: site answered 429 to {limited} requests per window; sent after the "
            f"window's first 429: {after}; clients got {found['client_answers']}"
        )
    if shared := results.get("shared"):
        lines.append(
            f"store: right after one proxy's client got the site's 429, the other proxy held the next request in "
            f"{shared['held_by_the_other']}/{shared['trials']} trials "
            f"(median {shared['median_next_request_ms']:.2f} ms between the two answers)"
        )
    if w2_results := results.get("w2"):
        off, on = w2_results["proxy"], w2_results["proxy-store"]
        cpu_on, cpu_off = on["proxy_cpu_us"], off["proxy_cpu_us"]
        lines.append(
            f"W2 store on/off: {on['rps']:.0f} / {off['rps']:.0f} req/s ({on['rps'] / off['rps']:.2f}x), CPU "
            f"{cpu_on:.0f} / {cpu_off:.0f} us/req ({cpu_on / cpu_off:.2f}x);"
            f" goal within 15%: {'met' if on['rps'] >= 0.85 * off['rps'] else 'MISSED'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark atlassian-auth-proxy against direct and plain mitmdump.")
    parser.add_argument("--quick", action="store_true", help="fewer runs: under two minutes, rougher figures")
    parser.add_argument("--warm-pool", action="store_true", help="WAN: also measure the warm-connection experiment")
    parser.add_argument("--otlp", action="store_true", help="W2: also the proxy sending audit records over OTLP")
    parser.add_argument(
        "--client-credentials",
        action="store_true",
        help="W1 and W2 through a client-credentials site against a Basic site (local token endpoint)",
    )
    parser.add_argument("--json", type=Path, default=BENCH_DIR / "results.json", help="where to write all results")
    parser.add_argument(
        "--holds", action="store_true", help="only the rate-limit workloads: 429 windows, the store, hook CPU"
    )
    args = parser.parse_args(argv)

    missing = missing_tools() + [t for t in ("mitmdump", "atlassian-auth-proxy") if venv_tool(t) is None]
    if missing:
        print(f"missing: {', '.join(missing)}. Hint: {INSTALL_HINT}; pip install -e '.[test]'", file=sys.stderr)
        return 2
    plan = QUICK if args.quick else FULL
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the `finally`s: stop nginx and the proxies

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    say(f"network: {isolate_network()}")
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="bench-", dir=base) as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # nginx workers may run as nobody
        if args.holds:
            results = run_holds(plan, workdir, say)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=2, default=str))
            print(report_holds(results))
            say(f"done; results in {args.json}")
            return 0
        results = run(plan, workdir, say, args.warm_pool, args.otlp, args.client_credentials)
    results["meta"] = {
        "quick": args.quick,
        "plan": plan.__dict__,
        "wall_s": time.monotonic() - started,
        "rtt_ms": RTT_MS,
        "otlp": args.otlp,
        "client_credentials": args.client_credentials,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    print(report(results))
    say(f"done; results in {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

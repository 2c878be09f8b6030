"""Shared test helpers: the real proxy in a subprocess, the tokens, the CLI runner, readiness waits."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from support import upstream

EMAIL = "me@acme.example"
TOKEN_24 = "Ab3dE6gH9jK2mN5pQ8sT1vWx"
TOKEN_192 = ("ATATT3xFfGF0" + "aZ09-_" * 29 + "A1b2c3d4e5f6g7h8=")[:192]
STAND_IN_NAMES = (
    "acme.atlassian.net",
    "*.atlassian.net",
    "api.atlassian.com",
    "*.atlassian.com",
    "api.media.atlassian.com",
    "api.bitbucket.org",
    "bitbucket.org",
    "jira.corp.example",
    "confluence.corp.example",
    "tracker.corp.example",
    "evilatlassian.net",
    "acme.atlassian.net.example.test",
    "other.example.test",
)
LISTENING = re.compile(r"listening on http://([\d.]+):(\d+)")
MITMDUMP_LISTENING = re.compile(r"listening at ([\d.]+):(\d+)")
ADDON = Path(__file__).resolve().parents[2] / "proxy_addon" / "addon.py"
STARTUP_SECONDS = 30


def basic(email: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()


def wait_for(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll a readiness condition; fail with a clear message rather than sleeping blindly."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class Proxy:
    process: subprocess.Popen[str]
    host: str
    port: int
    confdir: Path
    lines: list[str] = field(default_factory=list)
    ended: threading.Event = field(default_factory=threading.Event)
    """Set once the process's output reached its end: every line it wrote is in `lines`."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def proxy_env(site: upstream.UpstreamServer, ca_file: Path, confdir: Path, **overrides: str) -> dict[str, str]:
    """The proxy's environment: ours, with no setting of the caller's own (nor an OpenTelemetry
    collector of theirs: a test that wants the audit export sets its OTEL_* variables itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATLASSIAN_PROXY_", "OTEL_"))}
    env.update(
        ATLASSIAN_PROXY_EMAIL=EMAIL,
        ATLASSIAN_PROXY_API_TOKEN=TOKEN_192,
        ATLASSIAN_PROXY_CONNECT_TO=(
            f"*.atlassian.net=127.0.0.1:{site.port},evilatlassian.net=127.0.0.1:{site.port},"
            f"*.example.test=127.0.0.1:{site.port},*.atlassian.com=127.0.0.1:{site.port},"
            f"*.bitbucket.org=127.0.0.1:{site.port},bitbucket.org=127.0.0.1:{site.port},"
            f"*.corp.example=127.0.0.1:{site.port}"
        ),
        ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE=str(ca_file),
        ATLASSIAN_PROXY_CONFDIR=str(confdir),
        XDG_CONFIG_HOME=str(confdir / "xdg-config"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def command() -> list[str]:
    exe = shutil.which("atlassian-auth-proxy", path=str(Path(sys.executable).parent))
    assert exe, "atlassian-auth-proxy is not installed in this environment: pip install -e '.[test]'"
    return [exe]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, stdin: str = ""):
    """Run `atlassian-auth-proxy ARGS` to completion: for commands that are expected to exit."""
    return subprocess.run(
        [*command(), *args], env=env, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def start_proxy(env: dict[str, str], *args: str, cwd: Path | None = None) -> Proxy:
    """Start `atlassian-auth-proxy run` and wait for its listening line (not a sleep)."""
    return _start([*command(), "run", "--listen-port", "0", *args], env, LISTENING, cwd)


def start_mitmdump(env: dict[str, str], *args: str) -> Proxy:
    """Start plain mitmdump with this proxy's addon (and `args`) on 127.0.0.1, and wait until it listens."""
    argv = [mitmdump(), "-s", str(ADDON), "--listen-host", "127.0.0.1", "--listen-port", "0", *args]
    return _start(argv, env, MITMDUMP_LISTENING, None)


def _start(argv: list[str], env: dict[str, str], listening: re.Pattern[str], cwd: Path | None) -> Proxy:
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proxy = Proxy(process, "", 0, Path(env["ATLASSIAN_PROXY_CONFDIR"]))
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            proxy.lines.append(line)
            if not ready.is_set() and (match := listening.search(line)):
                proxy.host, proxy.port = match[1], int(match[2])
                ready.set()
        ready.set()
        proxy.ended.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(STARTUP_SECONDS) or not proxy.port:
        process.kill()
        raise AssertionError(f"proxy did not start:\n{proxy.output}")
    return proxy


REPO = Path(__file__).resolve().parents[2]


def base_image_python() -> str:
    """The interpreter matching the Dockerfile's default base `python:X.Y-...`, else the one running the tests."""
    match = re.search(r"^ARG BASE_IMAGE=python:(\d+\.\d+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    if match:
        candidates = [str(p) for p in sorted(Path.home().glob(f".pyenv/versions/{match[1]}.*/bin/python3"))]
        candidates += filter(None, [shutil.which(f"python{match[1]}")])
        for candidate in candidates:  # a pyenv shim exists even where it cannot run
            if subprocess.run([candidate, "-c", ""], capture_output=True, check=False).returncode == 0:
                return candidate
    return sys.executable


def mitmdump() -> str:
    """Plain mitmproxy's mitmdump from the environment the tests run in."""
    exe = shutil.which("mitmdump", path=str(Path(sys.executable).parent))
    assert exe, "mitmdump is not installed in this environment"
    return exe


SCOPED_SITE = """
[[sites]]
name = "acme"
hosts = ["acme.atlassian.net"]
email = "me@acme.example"
token_env = "ACME_TOKEN"
scoped = true
"""


def start_scoped(make_proxy, tmp_path: Path) -> Proxy:
    """The proxy with one scoped site, acme, whose token (TOKEN_192) only works through the gateway."""
    config = tmp_path / "scoped.toml"
    config.write_text(SCOPED_SITE)
    return make_proxy(
        "--config", str(config), ATLASSIAN_PROXY_EMAIL=None, ATLASSIAN_PROXY_API_TOKEN=None, ACME_TOKEN=TOKEN_192
    )


@contextmanager
def saving_mitmdump(env: dict[str, str], saved: Path) -> Iterator[int]:
    """Plain mitmdump with our addon on a free loopback port, saving every flow to `saved` (`-w`).

    Yields the port once mitmdump says it listens; stops mitmdump afterwards, so `saved` is complete.
    """
    proxy = start_mitmdump(env, "-w", str(saved))
    try:
        yield proxy.port
    finally:
        proxy.stop()


def site_toml(name: str, host: str, email: str, **keys: str) -> str:
    """One `[[sites]]` table for a test's TOML config (the tests that configure several sites)."""
    lines = ["[[sites]]", f'name = "{name}"', f'hosts = ["{host}"]', f'email = "{email}"']
    lines += [f'{key} = "{value}"' for key, value in keys.items()]
    return "\n".join(lines) + "\n\n"

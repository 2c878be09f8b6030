"""The image built from the Dockerfile, run by a real container engine as a sidecar.

test_deploy.py checks the image's contract without an engine; this file is the proof that the
image builds and behaves: `.ci/run` builds it (podman with runc) and names it in
ATLASSIAN_AUTH_PROXY_IMAGE. The proxy container uses the host's network namespace, because the
TLS stand-in for Atlassian listens on the host's loopback; the app container joins the proxy's
namespace with `--network container:NAME`, as a sidecar's app does. Without an engine or an
image the tests skip on a developer's machine and fail in CI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import otlp_collector
from support.adminclient import healthz
from support.clients import curl
from support.image import IMAGE, free_port
from support.proxy import EMAIL, LISTENING, TOKEN_24, TOKEN_192, basic, wait_for

MYSELF = "https://acme.atlassian.net/rest/api/3/myself"

ENGINE = "podman"  # the engine CI has; `save --format` and `rm --time` are podman's options
CONFDIR = IMAGE.env["ATLASSIAN_PROXY_CONFDIR"]
TOKEN_PATH = IMAGE.env["ATLASSIAN_PROXY_API_TOKEN_FILE"]
APP_MOUNT = "/etc/atlassian-auth-proxy"  # where the examples' app mounts the proxy's volume
APP_USER = "10002:10002"  # the app is another uid than the proxy's 10001, as in the examples
STOP_GRACE_SECONDS = 10  # docker's and podman's default for `stop`, which the README promises to fit in


def unavailable(reason: str) -> None:
    """Skip on a developer's machine without an engine or image; in CI that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def engine(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ENGINE, *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="session")
def image() -> str:
    if shutil.which(ENGINE) is None:
        unavailable(f"no container engine `{ENGINE}` (apt-get install podman runc; .ci/run installs them)")
    tag = os.environ.get("ATLASSIAN_AUTH_PROXY_IMAGE", "")
    if not tag:
        unavailable("ATLASSIAN_AUTH_PROXY_IMAGE is not set: build with `.ci/build-image TAG` and set it to TAG")
    found = engine("image", "inspect", tag)
    if found.returncode != 0:
        unavailable(f"image {tag} not found by {ENGINE}: {found.stderr.strip()}")
    return tag


@dataclass
class Sidecar:
    """A proxy container started with `ENGINE run` in the foreground: its output and exit code are ours."""

    name: str
    process: subprocess.Popen[str]
    port: int
    admin_port: int
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return engine("exec", self.name, *command)


@pytest.fixture
def sidecar(image: str, site, ca_file: Path) -> Iterator:
    """Start proxy containers hardened as the examples run them (read-only, no capabilities) but on
    the host's network, where the stand-in listens; remove them and their volumes after."""
    started: list[Sidecar] = []
    volumes: list[str] = []

    def start(*mounts: str, wait: bool = True, **env: str) -> Sidecar:
        name = f"aap-test-{uuid.uuid4().hex[:10]}"
        volume = f"{name}-confdir"
        volumes.append(volume)
        port, admin_port = free_port(), free_port()
        settings = {
            "ATLASSIAN_PROXY_EMAIL": EMAIL,
            "ATLASSIAN_PROXY_HOSTS": "acme.atlassian.net",
            "ATLASSIAN_PROXY_CONNECT_TO": f"acme.atlassian.net=127.0.0.1:{site.port}",
            "ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE": "/etc/stand-in-ca.pem",
            "ATLASSIAN_PROXY_LISTEN_PORT": str(port),
            "ATLASSIAN_PROXY_ADMIN_PORT": str(admin_port),
            **env,
        }
        command = [ENGINE, "run", "--name", name, "--network", "host", "--read-only", "--cap-drop", "ALL"]
        command += ["--security-opt", "no-new-privileges", "-v", f"{volume}:{CONFDIR}"]
        command += ["-v", f"{ca_file}:/etc/stand-in-ca.pem:ro", *mounts]
        command += [arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")]
        process = subprocess.Popen([*command, image], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        running = Sidecar(name, process, port, admin_port)
        started.append(running)
        threading.Thread(target=lambda: running.lines.extend(process.stdout or ()), daemon=True).start()
        if wait:
            wait_for(
                lambda: LISTENING.search(running.output) or process.poll() is not None,
                timeout=60,
                what="the proxy container to listen",
            )
            assert process.poll() is None, running.output
        return running

    yield start
    for running in started:
        engine("rm", "--force", "--time", "0", running.name)
        running.process.wait(30)
    for volume in volumes:
        engine("volume", "rm", "--force", volume)


def ca_cert_of(proxy: Sidecar, tmp_path: Path) -> Path:
    """The proxy's CA certificate, copied out of the container, for clients on the host."""
    result = proxy.exec("cat", f"{CONFDIR}/mitmproxy-ca-cert.pem")
    assert result.returncode == 0, result.stderr
    path = tmp_path / f"{proxy.name}-ca.pem"
    path.write_text(result.stdout)
    return path


def token_file(tmp_path: Path, token: str) -> Path:
    """A token file uid 10001 can read: as root, the README's 0600 owned by 10001; else world-readable."""
    path = tmp_path / "atlassian_api_token"
    path.write_text(token + "\n")
    if os.geteuid() == 0:
        path.chmod(0o600)
        os.chown(path, 10001, 10001)
    else:  # rootless engines map uid 10001 to a subordinate uid this user cannot chown to
        path.chmod(0o644)
    return path


def image_config(image: str) -> dict:
    (config,) = json.loads(engine("image", "inspect", image).stdout)
    return config


def image_healthcheck(image: str) -> dict:
    """The image's HEALTHCHECK: docker reports it in Config, podman beside it."""
    config = image_config(image)
    return config["Config"].get("Healthcheck") or config["Healthcheck"]


def healthcheck(proxy: Sidecar, image: str) -> subprocess.CompletedProcess[str]:
    """Run the image's own HEALTHCHECK command in the container (podman schedules none without systemd)."""
    kind, *command = image_healthcheck(image)["Test"]
    assert kind == "CMD"
    return proxy.exec(*command)


APP = """
import json, os, urllib.request
out = {}
request = urllib.request.Request(os.environ["URL"], headers={"Authorization": "Bearer the-apps-own"})
with urllib.request.urlopen(request, timeout=30) as r:
    out["status"], out["body"] = r.status, json.load(r)
for name in ("atlassian-auth-proxy-ca-bundle.pem", "mitmproxy-ca-cert.pem", "mitmproxy-ca.pem", "mitmproxy-ca.p12"):
    try:
        open(os.path.join(os.environ["CA_DIR"], name), "rb").read()
        out[name] = "read"
    except PermissionError:
        out[name] = "denied"
print(json.dumps(out))
"""


def run_app(image: str, proxy: Sidecar, volume: str) -> dict:
    """The app container: the proxy's network namespace, its own uid, the CA volume read-only."""
    result = engine(
        "run", "--rm", "--network", f"container:{proxy.name}", "--user", APP_USER, "--read-only",
        "--cap-drop", "ALL", "-v", f"{volume}:{APP_MOUNT}:ro",
        "-e", f"HTTPS_PROXY={proxy.url}", "-e", f"SSL_CERT_FILE={APP_MOUNT}/atlassian-auth-proxy-ca-bundle.pem",
        "-e", f"CA_DIR={APP_MOUNT}", "-e", f"URL={MYSELF}", "--entrypoint", "python3", image, "-c", APP,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_the_image_runs_as_uid_10001_with_its_health_check_and_no_wheels_in_any_layer(image, tmp_path):
    assert image_config(image)["Config"]["User"] == "10001:10001"
    assert image_healthcheck(image)["Test"] == ["CMD", *IMAGE.healthcheck]
    archive = tmp_path / "image.tar"
    saved = engine("save", "--format", "docker-archive", "--output", str(archive), image, timeout=120)
    assert saved.returncode == 0, saved.stderr
    with tarfile.open(archive) as outer:
        (manifest,) = json.load(outer.extractfile("manifest.json"))
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                wheels = [m.name for m in inner if m.name.endswith(".whl") and "atlassian_auth_proxy" in m.name]
                assert not wheels, f"layer {layer} still holds {wheels}"


def test_the_app_container_gets_credentials_through_the_sidecar_and_reads_the_ca_but_not_its_key(
    sidecar, image, site, tmp_path
):
    proxy = sidecar("-v", f"{token_file(tmp_path, TOKEN_192)}:{TOKEN_PATH}:ro")
    assert proxy.exec("id", "-u").stdout.strip() == "10001"
    assert proxy.exec("id", "-g").stdout.strip() == "10001"

    seen = run_app(image, proxy, f"{proxy.name}-confdir")

    assert seen["status"] == 200
    assert seen["body"]["displayName"] == "Test User"
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
    assert seen["atlassian-auth-proxy-ca-bundle.pem"] == "read"
    assert seen["mitmproxy-ca-cert.pem"] == "read"
    assert seen["mitmproxy-ca.pem"] == "denied", "the app must not be able to read the CA's private key"
    assert seen["mitmproxy-ca.p12"] == "denied", "the app must not be able to read the CA's private key"
    records = [json.loads(line) for line in proxy.lines if line.startswith("{")]
    assert any(r.get("decision") == "injected" and r.get("status") == 200 for r in records)
    assert TOKEN_192 not in proxy.output


def test_health_is_ok_then_503_while_draining_and_a_slow_request_finishes_with_exit_0(sidecar, image, site, tmp_path):
    proxy = sidecar("-v", f"{token_file(tmp_path, TOKEN_192)}:{TOKEN_PATH}:ro")
    ca = ca_cert_of(proxy, tmp_path)
    ok = healthcheck(proxy, image)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert healthz(proxy.admin_port) == (200, {"status": "ok"})  # as the app in the namespace sees it

    site.record.slow_arrived.clear()
    site.record.slow_release.clear()
    result: list[subprocess.CompletedProcess[str]] = []
    client = threading.Thread(target=lambda: result.append(curl(proxy.url, "https://acme.atlassian.net/slow", ca)))
    client.start()
    assert site.record.slow_arrived.wait(15), "the slow request never reached the site"
    started = time.monotonic()
    # SIGTERM as the kubelet sends it: the container keeps running, so its probes still run
    # (`ENGINE stop` would refuse `exec` until the container is gone).
    assert engine("kill", "--signal", "TERM", proxy.name).returncode == 0
    wait_for(lambda: "no longer accepting" in proxy.output, what="the proxy to start draining")
    status, body = healthz(proxy.admin_port)
    assert status == 503, body
    draining = healthcheck(proxy, image)
    assert draining.returncode == 1, draining.stdout + draining.stderr
    assert "unavailable" in draining.stdout
    site.record.slow_release.set()
    client.join(30)

    assert result, "the client never finished"
    assert result[0].returncode == 0, result[0].stderr
    assert '"slow": "done"' in result[0].stdout
    assert proxy.process.wait(30) == 0, proxy.output
    assert time.monotonic() - started < STOP_GRACE_SECONDS


def test_a_request_longer_than_the_drain_still_ends_in_exit_0_within_the_default_stop_grace(sidecar, site, tmp_path):
    proxy = sidecar("-v", f"{token_file(tmp_path, TOKEN_192)}:{TOKEN_PATH}:ro")
    ca = ca_cert_of(proxy, tmp_path)
    site.record.slow_arrived.clear()
    site.record.slow_release.clear()
    client = threading.Thread(target=curl, args=(proxy.url, "https://acme.atlassian.net/slow", ca))
    client.start()
    try:
        assert site.record.slow_arrived.wait(15), "the slow request never reached the site"
        started = time.monotonic()
        stopped = engine("stop", proxy.name)  # default grace: SIGKILL after it, which would be exit 137
        elapsed = time.monotonic() - started
        assert stopped.returncode == 0, stopped.stderr
        assert proxy.process.wait(30) == 0, proxy.output
        assert elapsed < STOP_GRACE_SECONDS
        assert "still running after" in proxy.output
    finally:
        site.record.slow_release.set()
        client.join(30)


def test_the_image_sends_audit_records_over_otlp_and_stops_within_the_grace_with_an_export_pending(
    sidecar, site, tmp_path
):
    """The `[otlp]` extra is in the image; a hung collector and a request longer than the drain
    together still leave `stop` inside its default grace."""
    collector = otlp_collector.start()
    try:
        proxy = sidecar(
            "-v", f"{token_file(tmp_path, TOKEN_192)}:{TOKEN_PATH}:ro",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BLRP_SCHEDULE_DELAY="200",
        )  # fmt: skip
        ca = ca_cert_of(proxy, tmp_path)
        assert curl(proxy.url, MYSELF, ca).returncode == 0
        (record,) = collector.wait_records(1, timeout=8)
        assert record.resource["service.name"] == "atlassian-auth-proxy"
        assert record.attributes["atlassian_proxy.decision"] == "injected"
        assert TOKEN_192 not in repr(record)

        collector.behaviour.hold = True
        assert curl(proxy.url, MYSELF, ca).returncode == 0
        collector.wait(lambda c: c.posts >= 2, 10, "an export to be pending")
        site.record.slow_arrived.clear()
        site.record.slow_release.clear()
        client = threading.Thread(target=curl, args=(proxy.url, "https://acme.atlassian.net/slow", ca))
        client.start()
        assert site.record.slow_arrived.wait(15), "the slow request never reached the site"
        started = time.monotonic()
        stopped = engine("stop", proxy.name)
        elapsed = time.monotonic() - started
        assert stopped.returncode == 0, stopped.stderr
        assert proxy.process.wait(30) == 0, proxy.output
        assert elapsed < STOP_GRACE_SECONDS
        assert "still running after" in proxy.output
    finally:
        site.record.slow_release.set()
        collector.shutdown()


def test_a_token_rewritten_in_place_in_a_single_file_mount_is_used_but_one_replaced_by_rename_is_not_seen(
    sidecar, site, tmp_path
):
    """The README's rotation caveat for compose secrets and `-v file:file` mounts, both halves."""
    token = token_file(tmp_path, TOKEN_192)
    proxy = sidecar("-v", f"{token}:{TOKEN_PATH}:ro")
    ca = ca_cert_of(proxy, tmp_path)
    assert curl(proxy.url, MYSELF, ca).returncode == 0
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)

    with token.open("r+") as f:  # same inode: what a single-file bind mount can see
        f.truncate(0)
        f.write(TOKEN_24 + "\n")

    def uses_new_token() -> bool:
        return curl(proxy.url, MYSELF, ca).returncode == 0 and site.record.last().header("Authorization") == basic(
            EMAIL, TOKEN_24
        )

    wait_for(uses_new_token, timeout=15, what="the rewritten token to be used")
    assert TOKEN_24 not in proxy.output
    assert TOKEN_192 not in proxy.output

    replacement = tmp_path / "replacement"
    replacement.write_text(TOKEN_192 + "\n")
    replacement.replace(token)  # what `mv` and many editors do: a new inode under the old name
    assert proxy.exec("cat", TOKEN_PATH).stdout.strip() == TOKEN_24, "the mount should still show the old file"


def test_a_kubernetes_style_symlink_swap_of_a_mounted_secret_directory_is_used_without_a_restart(
    sidecar, site, tmp_path
):
    """A Secret volume: `token -> ..data/token`, `..data -> ..<timestamp>`, swapped by one rename."""
    secret = tmp_path / "secret"
    (secret / "..2026_01").mkdir(parents=True)
    (secret / "..2026_01" / "token").write_text(TOKEN_192)
    (secret / "..data").symlink_to("..2026_01")
    (secret / "token").symlink_to("..data/token")
    proxy = sidecar(
        "-v", f"{secret}:/run/secrets/atlassian:ro", ATLASSIAN_PROXY_API_TOKEN_FILE="/run/secrets/atlassian/token"
    )
    ca = ca_cert_of(proxy, tmp_path)
    assert curl(proxy.url, MYSELF, ca).returncode == 0
    assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)

    (secret / "..2026_02").mkdir()
    (secret / "..2026_02" / "token").write_text(TOKEN_24)
    (secret / "..data_tmp").symlink_to("..2026_02")
    (secret / "..data_tmp").replace(secret / "..data")  # the kubelet's atomic swap
    shutil.rmtree(secret / "..2026_01")

    def uses_new_token() -> bool:
        return curl(proxy.url, MYSELF, ca).returncode == 0 and site.record.last().header("Authorization") == basic(
            EMAIL, TOKEN_24
        )

    wait_for(uses_new_token, timeout=15, what="the swapped token to be used")


def test_a_token_file_uid_10001_cannot_read_exits_2_naming_the_setting(sidecar, tmp_path):
    token = tmp_path / "atlassian_api_token"
    token.write_text(TOKEN_192)
    token.chmod(0o600)  # owned by the user running the tests, not by the container's uid 10001
    proxy = sidecar("-v", f"{token}:{TOKEN_PATH}:ro", wait=False)
    assert proxy.process.wait(60) == 2, proxy.output
    assert "ATLASSIAN_PROXY_API_TOKEN_FILE" in proxy.output
    assert "Traceback" not in proxy.output
    assert TOKEN_192 not in proxy.output

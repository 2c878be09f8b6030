"""Every config example and every TOML snippet in the README and the docs loads as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from proxy_addon.credentials.sources import sites_with_sources
from proxy_addon.settings.loading import load_settings

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

"""The root's chain as docs/architecture.md lists it, and how settings reach its children: through `use` only."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
from mitmproxy.test import taddons

from proxy_addon.addons.prepared import DEFAULTS
from proxy_addon.runtime import root as root_module
from proxy_addon.runtime.root import HOOK_ORDER, AtlassianAuthProxy
from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.model import Settings

DOC = Path(__file__).parents[2] / "docs" / "architecture.md"
ROW = re.compile(r"\| (\d+) \| `(\w+)` \| `([\w.]+)` \| (.+) \|")


def documented_order() -> list[tuple[str, str, str]]:
    section = DOC.read_text().partition("## The hook order")[2].partition("\n## ")[0]
    rows = [ROW.fullmatch(line) for line in section.splitlines() if line.startswith("| ")]
    found = [row for row in rows if row is not None]
    assert [int(row[1]) for row in found] == list(range(1, len(found) + 1)), "numbered 1, 2, 3, ..."
    return [(row[2], row[3], row[4]) for row in found]


def test_the_document_lists_exactly_the_chain_in_the_codes_order():
    code = [(link.addon.__name__, link.addon.__module__.removeprefix("proxy_addon."), link.role) for link in HOOK_ORDER]
    assert documented_order() == code


def test_the_root_chains_one_child_of_each_class_in_that_order():
    root = AtlassianAuthProxy()
    assert [type(child) for child in root.children] == [link.addon for link in HOOK_ORDER]


@pytest.fixture
def settings(monkeypatch, tmp_path) -> Settings:
    for name in list(os.environ):
        if name.startswith("ATLASSIAN_PROXY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return load_settings(
        None,
        email="me@example.test",
        api_token="tok3n-for-hook-tests",
        upstream_timeout=7,
        client_timeout=9,
        log_format="json",
        proxy_auth="ci:Pr0xy-pa55word-9f3e",
    )


def test_each_child_holds_the_models_defaults_until_configure_hands_it_the_settings(settings):
    root = AtlassianAuthProxy(settings)
    before = (root.faults.timeout, root.client_limits.head_timeout, root.outbound.timeout)
    assert before == (DEFAULTS.upstream_timeout, DEFAULTS.client_timeout, DEFAULTS.upstream_timeout)
    with taddons.context(root) as tctx:
        tctx.configure(root, atlassian_proxy_config=None)
        assert (root.faults.timeout, root.client_limits.head_timeout, root.outbound.timeout) == (7, 9, 7)
        assert root.request_log.json
        assert root.fail_closed.login_required
        assert root.safe_options.proxy_auth
        assert root.proxy_auth.login == settings.proxy_login
        assert root.readiness.problem() is None, "the credentials are loaded"


def test_the_root_writes_into_no_child():
    """Settings reach a child through its `use` only: no `self.<child>.<name> = ...` in the root."""
    tree = ast.parse(Path(root_module.__file__).read_text())
    written = [
        ast.unparse(target)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute)
    ]
    assert written == []

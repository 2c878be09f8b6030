"""The test lanes by folder, and fixtures of real parts only: a TLS stand-in for Atlassian on loopback, the real
proxy in a subprocess, a fresh install."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from support import upstream
from support.lanes import confined, lane_of
from support.proxy import REPO, STAND_IN_NAMES, Proxy, base_image_python, proxy_env, start_proxy


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test gets its folder's lane: `unit`, `e2e` or `deploy` (support/lanes.py)."""
    for item in items:
        item.add_marker(lane_of(item.path))


def _confined_if_unit(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("unit") is None:
        return (yield)
    violations: list[str] = []
    with confined(violations):
        result = yield
    if violations:
        pytest.fail(f"a unit test {violations[0]}; move it to tests/e2e/ (see CONTRIBUTING.md)", pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    return (yield from _confined_if_unit(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _confined_if_unit(item))


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "test-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="session")
def site(ca: trustme.CA) -> Iterator[upstream.UpstreamServer]:
    server = upstream.start(ca.issue_cert(*STAND_IN_NAMES))
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def plain_site() -> Iterator[upstream.UpstreamServer]:
    """A plain-http server on loopback, for requests that are not for a credential host."""
    server = upstream.start(None)
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def confdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("confdir")


@pytest.fixture(scope="session")
def proxy(site: upstream.UpstreamServer, ca_file: Path, confdir: Path) -> Iterator[Proxy]:
    """The proxy many tests share, for the whole session. Its upstream pool is off: it outlives the tests that count
    the shared stand-in's connections, and would replace its warm ones among them every few seconds. Proxies a test
    makes (`make_proxy`, module fixtures) run with the pool on, the default."""
    running = start_proxy(proxy_env(site, ca_file, confdir, ATLASSIAN_PROXY_UPSTREAM_POOL="false"))
    yield running
    running.stop()


@pytest.fixture
def make_proxy(site: upstream.UpstreamServer, ca_file: Path, confdir: Path) -> Iterator:
    started: list[Proxy] = []

    def make(*args: str, cwd: Path | None = None, **env: str) -> Proxy:
        running = start_proxy(proxy_env(site, ca_file, confdir, **env), *args, cwd=cwd)
        started.append(running)
        return running

    yield make
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


@pytest.fixture(scope="session")
def fresh_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv with nothing but the wheel built from this checkout (and its dependencies)."""
    root = tmp_path_factory.mktemp("fresh-install")
    pip = [sys.executable, "-m", "pip", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(root / "dist"), str(REPO)], check=True)
    (wheel,) = (root / "dist").glob("atlassian_auth_proxy-*.whl")
    subprocess.run([base_image_python(), "-m", "venv", str(root / "venv")], check=True)
    subprocess.run([str(root / "venv/bin/python"), "-m", "pip", "--quiet", "install", str(wheel)], check=True)
    return root / "venv" / "bin"


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No ATLASSIAN_PROXY_* from the outside, and a working directory without a .env."""
    for name in list(os.environ):
        if name.startswith("ATLASSIAN_PROXY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return tmp_path

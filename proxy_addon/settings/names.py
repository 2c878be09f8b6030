"""How settings are named to users (every message names a setting the way the user set it), and
the fixed facts that need no settings model to read: cheap to import for probes."""

from __future__ import annotations

ENV_PREFIX = "ATLASSIAN_PROXY_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
ADMIN_HOST = "127.0.0.1"
"""The admin endpoint listens on loopback only: probes run beside the proxy, never across a network."""


class SettingsError(Exception):
    """A setting is missing or malformed. `str()` is one line naming it and the fix."""


def env_name(field: str) -> str:
    """The environment variable of a settings field: `api_token` -> `ATLASSIAN_PROXY_API_TOKEN`."""
    return ENV_PREFIX + field.upper()

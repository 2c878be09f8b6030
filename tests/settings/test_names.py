"""How settings are named to users: each field's environment variable."""

from __future__ import annotations

from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import CONFIG_ENV, ENV_PREFIX, env_name


def test_every_setting_is_named_by_its_environment_variable():
    assert env_name("api_token") == "ATLASSIAN_PROXY_API_TOKEN"
    assert CONFIG_ENV == "ATLASSIAN_PROXY_CONFIG"
    assert Settings.model_config["env_prefix"] == ENV_PREFIX, "the model reads the names users are told"

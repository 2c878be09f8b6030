"""Loading the settings: every source read once, in a fixed order, and a bad value told in one line.

Sources, strongest first: command-line flags, `ATLASSIAN_PROXY_*` environment, `.env`, a TOML
file (`--config` or `ATLASSIAN_PROXY_CONFIG`, else the user's config file if it exists), defaults.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import CONFIG_ENV, SettingsError, env_name
from proxy_addon.settings.tables import TABLES


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Read every source once; raise SettingsError with a one-line message on bad input.

    `flags` are command-line values; None means the flag was not given.
    """
    flags = {name: value for name, value in flags.items() if value is not None}
    toml_file, source = _config_path(config_file)

    class _FromSources(Settings):
        model_config = SettingsConfigDict(toml_file=toml_file)

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, dotenv_settings, StrictToml(settings_cls)

    try:
        return _FromSources(**flags)
    except ValidationError as e:
        raise SettingsError(_describe(e.errors()[0], flags, toml_file)) from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{source}: {toml_file} is not valid TOML ({e}); fix the file") from None


class StrictToml(TomlConfigSettingsSource):
    """The TOML file, where a key the settings do not define is an error: a misspelt `hosts`
    would otherwise leave the default `*.atlassian.net` in force without a word.

    (Environment variables are not checked: other tools read names under the same prefix.)
    """

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        known = set(settings_cls.model_fields)
        for key in self.toml_data:
            if key not in known:
                raise SettingsError(unknown_key(self.toml_file_path, key, known, "at the top level"))


def unknown_key(path: Any, key: str, known: set[str], where: str) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "see config/example.toml for the keys"
    return f"config file {path}: unknown key {key!r} {where}; {hint}"


def user_config_path() -> Path:
    """Where `login` records the email and site: $XDG_CONFIG_HOME/atlassian-auth-proxy/config.toml."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "atlassian-auth-proxy" / "config.toml"


def _config_path(flag: Path | None) -> tuple[Path | None, str]:
    """The TOML file to read, and the name of the setting that chose it (for messages).

    Without --config or ATLASSIAN_PROXY_CONFIG, the user's config file is read if it exists.
    """
    if flag is not None:
        path, source = flag, "--config"
    elif env := os.environ.get(CONFIG_ENV):
        path, source = Path(env), CONFIG_ENV
    else:
        path = user_config_path()
        return (path if path.is_file() else None), f"the user config {path}"
    path = path.expanduser()
    if not path.is_file():
        raise SettingsError(f"{source}: {str(path)!r} is not a readable file; point it at a TOML config file")
    return path, source


def _describe(error: ErrorDetails, flags: dict[str, Any], toml_file: Path | None) -> str:
    loc = error["loc"]
    message = error["msg"].removeprefix("Value error, ")
    if not loc:
        return message
    field = str(loc[0])
    if len(loc) > 2 and isinstance(loc[1], int):
        table = f"[[{field}]] number {loc[1] + 1}"
        if error["type"] == "extra_forbidden":
            known = set(TABLES[field].model_fields) if field in TABLES else set()
            return unknown_key(toml_file, str(loc[2]), known, f"in {table}")
        where = table + "".join(f", {part}" for part in loc[2:])
        return f"config file {toml_file}: {where}: {message}"
    if len(loc) == 2 and isinstance(loc[1], int):
        return f"config file {toml_file}: [[{field}]] number {loc[1] + 1}: {message}"
    name = "--" + field.replace("_", "-") if field in flags else env_name(field)
    return f"{name}: {message}"

"""The one settings model: everything the proxy is told, each value checked, and settings that contradict each other
refused, so the request path only reads what was prepared.

`loading.load_settings` reads it from its sources; its values are typed in `values`, its TOML
tables in `tables`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from proxy_addon.policy.clients import ClientTable
from proxy_addon.policy.hosts import HostPattern
from proxy_addon.policy.proxy_login import ProxyLogin
from proxy_addon.policy.sites import Site, SiteConflict, SiteTable
from proxy_addon.settings.names import ENV_PREFIX, env_name
from proxy_addon.settings.otlp import SECRET_VARIABLES as OTLP_SECRET_VARIABLES
from proxy_addon.settings.tables import ClientSettings, SiteSettings, Table
from proxy_addon.settings.values import (
    ConnectToSetting,
    DateSetting,
    EmailSetting,
    ExistingFile,
    HostsSetting,
    ProxyLoginFileSetting,
    ProxyLoginSetting,
    ReverseSetting,
    SiteSetting,
    TokenSetting,
    UpstreamProxySetting,
)

SINGLE_SITE_FIELDS = ("email", "api_token", "api_token_file", "hosts", "token_expires")


def holds_secret(value: Any) -> bool:
    """Whether a loaded setting holds a non-empty `SecretStr` anywhere inside it."""
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    if isinstance(value, BaseModel):
        return any(holds_secret(item) for _, item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(holds_secret(getattr(value, item.name)) for item in dataclasses.fields(value))
    if isinstance(value, tuple | list):
        return any(holds_secret(item) for item in value)
    return False


class Settings(BaseSettings):
    """Everything the proxy is told; see README's settings table for the meaning of each."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        frozen=True,
        arbitrary_types_allowed=True,
        hide_input_in_errors=True,
    )

    email: EmailSetting | None = None
    api_token: TokenSetting | None = None
    api_token_file: ExistingFile | None = None
    token_expires: DateSetting | None = None
    hosts: HostsSetting = (HostPattern.parse("*.atlassian.net"),)
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=0, le=65535)
    confdir: Path = Path("~/.mitmproxy")
    connect_to: ConnectToSetting = ()
    upstream_ca_bundle: ExistingFile | None = None
    site: SiteSetting | None = None
    sites: tuple[SiteSettings, ...] = ()
    clients: tuple[ClientSettings, ...] = ()
    reverse: ReverseSetting | None = None
    upstream_proxy: UpstreamProxySetting | None = None
    allow_insecure_keyring: bool = False
    admin_port: int | None = Field(default=None, ge=0, le=65535)
    log_format: Literal["text", "json"] = "text"
    proxy_auth: ProxyLoginSetting | None = None
    proxy_auth_file: ProxyLoginFileSetting | None = None
    allow_browsers: bool = False
    upstream_timeout: float = Field(default=60.0, gt=0, le=3600)
    client_timeout: float = Field(default=60.0, gt=0, le=3600)
    upstream_pool: bool = Field(
        default=True,
        description="Keep warm upstream connections (TLS ClientHello already sent, the site's answer verified by "
        "mitmproxy at use) to credential hosts used recently, shared by all clients; `false` turns it off. "
        "Not used with an upstream proxy.",
    )
    upstream_pool_size: int = Field(
        default=2, ge=1, le=16, description="Warm upstream connections kept per credential host (and TLS settings)."
    )
    upstream_pool_idle_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="A credential host stays warm this long after the last request that used it.",
    )
    upstream_pool_max_age_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Longest a warm connection waits before it is replaced: keep it below the site's timeout for "
        "an unfinished TLS handshake (the pool also lowers it when the site closes waiting connections sooner).",
    )
    _client_table: ClientTable = PrivateAttr(default_factory=ClientTable)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Settings that contradict each other never load, so no caller has to check them again."""
        for one, other in (("api_token", "api_token_file"), ("proxy_auth", "proxy_auth_file")):
            if getattr(self, one) is not None and getattr(self, other) is not None:
                raise ValueError(f"{env_name(one)} and {env_name(other)} are both set: keep only one")
        if self.reverse is not None and self.upstream_proxy is not None:
            raise ValueError("reverse mode and an upstream proxy cannot be combined: choose one")
        if self.sites:
            mixed = [
                env_name(name).removeprefix(ENV_PREFIX) for name in SINGLE_SITE_FIELDS if name in self.model_fields_set
            ]
            if mixed:
                raise ValueError(
                    f"[[sites]] and the single-site settings ({', '.join(mixed)}) are both set: "
                    "describe every site in [[sites]]"
                )
            names = [entry.name for entry in self.sites]
            if len(set(names)) != len(names):
                raise ValueError("[[sites]]: two sites have the same name; give each a unique name")
        try:
            table = self.site_table()
        except SiteConflict as e:
            raise ValueError(f"sites: {e}") from None
        if self.reverse is not None and table.lookup(self.reverse.host, self.reverse.port) is None:
            raise ValueError(
                f"{env_name('reverse')}: {self.reverse.host} gets credentials from no site; add it to HOSTS"
            )
        if self.clients:
            self._client_table = self._clients(table)
        return self

    def _clients(self, table: SiteTable) -> ClientTable:
        """`[[clients]]` replace the one proxy login, name each other uniquely and name only real sites."""
        for login in ("proxy_auth", "proxy_auth_file"):
            if getattr(self, login) is not None:
                raise ValueError(
                    f"[[clients]] and {env_name(login)} are both set: with [[clients]] each client has its own "
                    f"login; unset {env_name(login)}"
                )
        names = [entry.name for entry in self.clients]
        if twice := sorted({name for name in names if names.count(name) > 1}):
            raise ValueError(f"[[clients]]: two clients are named {twice[0]!r}; give each a unique name")
        known = [site.name for site in table.sites]
        for entry in self.clients:
            for name in entry.sites or ():
                if name not in known:
                    raise ValueError(
                        f"[[clients]] {entry.name!r}: sites names {name!r}, which is not a configured site "
                        f"(the sites are: {', '.join(known)})"
                    )
        return ClientTable.of(entry.client() for entry in self.clients)

    def site_list(self) -> tuple[Site, ...]:
        """Every configured site: the [[sites]] tables, or else the one the single-site settings describe."""
        if self.sites:
            return tuple(entry.site() for entry in self.sites)
        return (Site("default", self.hosts, self.email or "", token_expires=self.token_expires),)

    def site_table(self) -> SiteTable:
        return SiteTable.of(self.site_list())

    @property
    def proxy_login(self) -> ProxyLogin | None:
        """The one login clients must present, from PROXY_AUTH or PROXY_AUTH_FILE."""
        return self.proxy_auth or self.proxy_auth_file

    @property
    def client_table(self) -> ClientTable:
        """Every `[[clients]]` client by name; empty (false) without `[[clients]]`."""
        return self._client_table

    @property
    def login_required(self) -> bool:
        """Every request must carry a proxy login: PROXY_AUTH's, or one client's."""
        return self.proxy_login is not None or bool(self._client_table)

    def secret_variables(self) -> frozenset[str]:
        """The environment variables that hold a secret of these settings: what `exec` keeps from CMD.

        Decided from the loaded values, not a list kept by hand: each setting whose value holds a
        secret anywhere inside (a `SecretStr`: the token, PROXY_AUTH's login, a corporate-proxy
        password) is read from its `ATLASSIAN_PROXY_` variable, and every `*_env` key of a table
        (`token_env`, `password_env`, ...) names a variable that holds one. A new secret setting or
        key is covered by being one of these. OpenTelemetry's header variables are the audit
        export's: they may carry a collector's API key.
        """
        names: set[str] = set(OTLP_SECRET_VARIABLES)
        for name in type(self).model_fields:
            value = getattr(self, name)
            if holds_secret(value):
                names.add(env_name(name))
            if isinstance(value, tuple):
                names.update(
                    variable for entry in value if isinstance(entry, Table) for variable in entry.secret_variables()
                )
        return frozenset(names)

    @field_validator("confdir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

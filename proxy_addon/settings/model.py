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
    StateUrlSetting,
    TokenSetting,
    UpstreamProxySetting,
)

MAX_IN_FLIGHT = 16
QUEUE_TIMEOUT_SECONDS = 30.0
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
    """Everything the proxy is told. Each field's `description` is its documentation: docs/reference/settings.md
    and toml.md are generated from this model (tests/support/docs_reference.py)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        frozen=True,
        arbitrary_types_allowed=True,
        hide_input_in_errors=True,
    )

    email: EmailSetting | None = Field(
        default=None,
        description="The Atlassian account email: the Basic user, and the keyring entry's user. Needed unless "
        "`[[sites]]` describe the sites.",
    )
    api_token: TokenSetting | None = Field(
        default=None,
        description="The API token, of any length (24-character legacy tokens and the longer ones issued since "
        "18 January 2023). Prefer `api_token_file` or the keyring: a variable can leak into other processes.",
    )
    api_token_file: ExistingFile | None = Field(
        default=None,
        description="A file holding the token (a Docker or Kubernetes secret), surrounding whitespace ignored. "
        "Re-read within a second of a change, without a restart; a file caught empty or invalid keeps the "
        "previous token and logs why.",
    )
    token_expires: DateSetting | None = Field(
        default=None,
        description="The date the token expires, shown when you created it: a warning from 14 days ahead, the "
        "gauge `atlassian_proxy_token_expiry_timestamp_seconds` and `/healthz` 503 once past "
        "(`login --expires` records it).",
    )
    hosts: HostsSetting = Field(
        default=(HostPattern.parse("*.atlassian.net"),),
        description="The hosts that get credentials: an exact name (`acme.atlassian.net`) or `*.` and a domain "
        "(subdomains only), optionally with `:port`. Case-insensitive, one trailing dot ignored; anything else "
        "(`*`, `a.*.net`, a regex) is refused. Name your own site to keep the token from other tenants.",
    )
    listen_host: str = Field(
        default="127.0.0.1",
        description="The address the proxy listens on. Anything but loopback is refused without a proxy login "
        "(`proxy_auth` or `[[clients]]`).",
    )
    listen_port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="The port the proxy listens on; `0` picks a free one and logs it. `exec` always picks a free "
        "port unless given `--listen-port`.",
    )
    confdir: Path = Field(
        default=Path("~/.mitmproxy"),
        description="mitmproxy's directory: the CA clients trust is `<confdir>/mitmproxy-ca-cert.pem`; the proxy "
        "writes its CA bundle and Java truststore beside it. Keep it private: it holds the CA's key.",
    )
    connect_to: ConnectToSetting = Field(
        default=(),
        description="For hosts matching PATTERN, open the TCP connection to HOST:PORT instead of resolving the "
        "name, like curl's `--connect-to`; SNI, Host, certificate checks and every credential decision keep the "
        "original name.",
    )
    upstream_ca_bundle: ExistingFile | None = Field(
        default=None,
        description="An extra CA file trusted for upstream TLS (a staging site, tests), added to the public CAs.",
    )
    site: SiteSetting | None = Field(
        default=None,
        description="Your site: where `check` and `login` ask, and the home whose identity page judges a rejected "
        "token. Defaults to the single exact name in `hosts`.",
    )
    sites: tuple[SiteSettings, ...] = Field(
        default=(),
        description="One `[[sites]]` table per site, in the TOML file only. Not combinable with the single-site "
        "settings (`email`, the token, `hosts`, `token_expires`).",
    )
    clients: tuple[ClientSettings, ...] = Field(
        default=(),
        description="One `[[clients]]` table per client: its own proxy login and bounds, in the TOML file only. "
        "Not combinable with `proxy_auth`.",
    )
    reverse: ReverseSetting | None = Field(
        default=None,
        description="Serve a plain-HTTP base URL on loopback that forwards to this credential host over TLS "
        "(`run --reverse URL`), for tools that can neither use a proxy nor trust a CA.",
    )
    upstream_proxy: UpstreamProxySetting | None = Field(
        default=None,
        description="Send every upstream connection through this (corporate) proxy; its password is never "
        "logged. Not with `reverse`.",
    )
    allow_insecure_keyring: bool = Field(
        default=False,
        description="`true` accepts keyring backends that keep secrets in plain files (such as `keyrings.alt`).",
    )
    admin_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="A port on 127.0.0.1 serving `/healthz`, `/livez` and `/metrics`; `0` picks a free one and "
        "logs it. Unset: no admin port.",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`json`: one JSON object per request, and every other line as a JSON object too.",
    )
    proxy_auth: ProxyLoginSetting | None = Field(
        default=None,
        description="The login clients must send as `Proxy-Authorization` (Basic), or get 407; the password has "
        "at least 16 characters. Allows a non-loopback listen host. Not with `[[clients]]`.",
    )
    proxy_auth_file: ProxyLoginFileSetting | None = Field(
        default=None,
        description="A file holding `user:password` (a regular file of at most 4 KiB, surrounding whitespace "
        "ignored), read at start; instead of `proxy_auth`.",
    )
    allow_browsers: bool = Field(
        default=False,
        description="`true` lets requests from web browsers (an `Origin` header, or `Sec-Fetch-Site` other than "
        "`none`) get credentials; by default they get 403.",
    )
    upstream_timeout: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds to wait for the site's response headers before answering 504; also the longest a "
        "request waits for the proxy's own check of the token after a pause.",
    )
    client_timeout: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds a client has to send a complete request head before its connection is closed.",
    )
    max_in_flight: int = Field(
        default=MAX_IN_FLIGHT,
        ge=1,
        le=10_000,
        description="Requests of a site at the site at once, per proxy process; the rest wait in arrival order. "
        "For the default site, and for each [[sites]] site without its own max_in_flight.",
    )
    queue_timeout_seconds: float = Field(
        default=QUEUE_TIMEOUT_SECONDS,
        gt=0,
        le=3600,
        description="The longest a request waits for a place among max_in_flight; then a local 503 with "
        "Retry-After (decision queue-timeout). For the default site, and for each [[sites]] site without its own.",
    )
    state_url: StateUrlSetting | None = Field(
        default=None,
        description="A Redis or Valkey server (redis://HOST:PORT/DB, rediss://..., unix:///PATH?db=N) where every "
        "proxy process on it shares rate-limit holds, token pauses, the confirmation of an ambiguous 401 and "
        "clients' requests_per_minute windows; its password is a secret. Unset: each process keeps its own, "
        "in memory.",
    )
    upstream_pool: bool = Field(
        default=True,
        description="Keep warm upstream connections (TLS ClientHello already sent, the site's answer verified by "
        "mitmproxy at use) to credential hosts used recently, shared by all clients; `false` turns it off. "
        "Not used with an upstream proxy.",
    )
    upstream_pool_size: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Warm upstream connections kept per credential host (and TLS settings); never more than the "
        "site's max_in_flight.",
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
            cloud_ids = [entry.cloud_id for entry in self.sites if entry.cloud_id is not None]
            if twice := sorted({cloud_id for cloud_id in cloud_ids if cloud_ids.count(cloud_id) > 1}):
                raise ValueError(
                    f"[[sites]]: two sites have cloud_id {twice[0]!r}; a cloudId is one site's, give it to one"
                )
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

    def in_flight(self) -> dict[str, tuple[int, float]]:
        """Each site's `max_in_flight` and `queue_timeout_seconds`: its `[[sites]]` keys, else the top-level ones."""
        if not self.sites:
            return {"default": (self.max_in_flight, self.queue_timeout_seconds)}
        return {
            entry.name: (
                entry.max_in_flight or self.max_in_flight,
                entry.queue_timeout_seconds or self.queue_timeout_seconds,
            )
            for entry in self.sites
        }

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

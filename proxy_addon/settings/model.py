"""The one settings model, read once at start.

Sources, strongest first: command-line flags, `ATLASSIAN_PROXY_*` environment, `.env`, a TOML
file (`--config` or `ATLASSIAN_PROXY_CONFIG`), defaults. Every value is parsed and checked
here, so the request path only reads what was prepared.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from proxy_addon.policy.clients import NO_CLIENT, Client, ClientTable
from proxy_addon.policy.connect_rules import ConnectToRule
from proxy_addon.policy.hosts import HostPattern, HostPatternError, normalize_host
from proxy_addon.policy.layouts import Product, declared, is_cloud_host
from proxy_addon.policy.proxy_login import ProxyLogin, short_password
from proxy_addon.policy.sites import Scheme, Site, SiteConflict, SiteTable
from proxy_addon.policy.tokens import TokenFormatError, parse_token
from proxy_addon.settings.files import UnreadableFile, read_secret_text
from proxy_addon.settings.modes import ReverseTarget, UpstreamProxy
from proxy_addon.settings.names import CONFIG_ENV, ENV_PREFIX, SettingsError, env_name


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item for item in (part.strip() for part in value.split(",")) if item]
    return value


def _hosts(value: Any) -> Any:
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        return value
    try:
        patterns = tuple(HostPattern.parse(item) for item in value)
    except HostPatternError as e:
        raise ValueError(str(e)) from None
    if not patterns:
        raise ValueError("is empty: name at least one host pattern, e.g. *.atlassian.net")
    return patterns


def _connect_to(value: list[str]) -> tuple[ConnectToRule, ...]:
    try:
        return tuple(ConnectToRule.parse(item) for item in value)
    except HostPatternError as e:
        raise ValueError(str(e)) from None


def _token(value: Any) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        try:
            return parse_token(value)
        except TokenFormatError as e:
            raise ValueError(f"the token {e}") from None
    return value


def _login(value: Any) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return ProxyLogin.parse(value) if isinstance(value, str) else value


MAX_PASSWORD_FILE = 4 * 1024


def _login_file(value: Any) -> Any:
    """The login in a file, read without blocking (a FIFO in its place must not stall the start)."""
    if not isinstance(value, str | Path):
        return value
    path = Path(value).expanduser()
    try:
        text = read_secret_text(path, MAX_PASSWORD_FILE, "a proxy login")
    except UnreadableFile as e:
        raise ValueError(f"cannot read {str(path)!r} ({e}); fix the path or its permissions") from None
    try:
        return ProxyLogin.parse(text)
    except ValueError as e:
        raise ValueError(f"the login in {str(path)!r} {e}") from None


def _existing_file(path: Path) -> Path:
    path = path.expanduser()
    if not path.is_file():
        raise ValueError(f"{str(path)!r} is not a readable file")
    return path


def _email(value: str) -> str:
    value = value.strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or ":" in value or not value.isprintable() or " " in value:
        raise ValueError(f"{value!r} is not an email address: use your Atlassian account email")
    return value


CONTEXT_PATH = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?")


def _context_path(value: str) -> str:
    """Where a Data Center product is served: `/`, or plain segments such as `/jira` (a trailing `/` is dropped)."""
    if not value.startswith("/") or not CONTEXT_PATH.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a context path: write / or the path the product is served under, such as /jira "
            "(letters, digits, . _ ~ -, no dot segments)"
        )
    return value.rstrip("/") or "/"


def parse_date(value: Any) -> Any:
    """An ISO date (`2026-12-31`), as text or as a TOML date; parsed once, here."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-12-31") from None
    return value


DateSetting = Annotated[date, BeforeValidator(parse_date)]


# Before-validators run last-declared first: split the comma list, then parse each item.
def _parsed(kind: Any) -> Any:
    """A before-validator that builds `kind` from text; its ValueError becomes the message."""

    def parse(value: Any) -> Any:
        return kind.parse(value) if isinstance(value, str) else value

    return parse


def parse_site(value: str) -> str:
    """A site as users write it (`acme.atlassian.net`, `https://acme.atlassian.net/`) -> its host."""
    name = normalize_host(value.strip().removeprefix("https://").rstrip("/"))
    if name is None:
        raise ValueError(f"{value!r} is not a host name: use your site, e.g. acme.atlassian.net")
    return name


HostsSetting = Annotated[tuple[HostPattern, ...], NoDecode, BeforeValidator(_hosts), BeforeValidator(_split_list)]
ConnectToSetting = Annotated[
    tuple[ConnectToRule, ...], NoDecode, BeforeValidator(_connect_to), BeforeValidator(_split_list)
]


SECRET_ENV_SUFFIX = "_env"  # noqa: S105 - a key suffix, not a secret
"""A table key with this suffix names the environment variable that holds a secret."""


class Table(BaseModel):
    """A table of the TOML config: a key it does not define is an error, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    def secret_variables(self) -> set[str]:
        """The variables its `*_env` keys name: each holds a secret (a token, a password)."""
        return {value for key, value in self if key.endswith(SECRET_ENV_SUFFIX) and isinstance(value, str)}


class SiteSettings(Table):
    """One `[[sites]]` table of the TOML config."""

    name: str = Field(min_length=1)
    hosts: HostsSetting
    email: str | None = None
    token_env: str | None = None
    token_file: Annotated[Path, AfterValidator(_existing_file)] | None = None
    scheme: Literal["basic", "bearer"] = "basic"
    read_only: bool = False
    scoped: bool = False
    token_expires: DateSetting | None = None
    product: Literal["jira", "confluence"] | None = None
    context_path: Annotated[str, AfterValidator(_context_path)] | None = None

    @model_validator(mode="after")
    def _complete(self) -> SiteSettings:
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("set token_env or token_file, not both")
        if self.context_path is not None and self.product is None:
            raise ValueError("context_path needs product: the product served there, jira or confluence")
        if self.product is not None and (self.scoped or any(is_cloud_host(p.domain) for p in self.hosts)):
            raise ValueError(
                "product and context_path are for Data Center and Server sites: Atlassian Cloud hosts and scoped "
                "sites have Cloud's layout (Jira at /, Confluence at /wiki); remove them"
            )
        if self.email is None and (self.scheme == "basic" or (self.token_env is None and self.token_file is None)):
            raise ValueError("needs email: the Basic user, and the keyring user when no token_env/token_file is set")
        if self.email is not None and (":" in self.email or not self.email.isprintable()):
            raise ValueError(f"email {self.email!r} cannot be a Basic user (no ':' or control characters)")
        return self

    def site(self) -> Site:
        return Site(
            self.name,
            self.hosts,
            self.email or "",
            Scheme(self.scheme),
            self.read_only,
            self.scoped,
            self.token_expires,
            declared(Product[self.product.upper()], self.context_path or "/") if self.product else None,
        )


JIRA_PROJECT_KEY = re.compile(r"[A-Z][A-Z0-9_]*")
CONFLUENCE_SPACE_KEY = re.compile(r"~?[A-Z0-9]+")


def _keys(kind: str, pattern: re.Pattern[str], rule: str) -> Any:
    """An after-validator: every key matches `pattern` once upper-cased; the bound holds upper-case keys."""

    def check(keys: tuple[str, ...] | None) -> frozenset[str] | None:
        if keys is None:
            return None
        for key in keys:
            if not key.isascii() or not pattern.fullmatch(key.upper()):
                raise ValueError(f"{key!r} is not a {kind} key: {rule}")
        return frozenset(key.upper() for key in keys)

    return AfterValidator(check)


class ClientSettings(Table):
    """One `[[clients]]` table: who may use the proxy, with which login, within which bounds."""

    name: str = Field(min_length=1)
    password_env: str | None = Field(default=None, min_length=1)
    password_file: Path | None = None
    sites: tuple[str, ...] | None = Field(default=None, min_length=1)
    read_only: bool = False
    jira_projects: Annotated[
        tuple[str, ...] | None,
        _keys("Jira project", JIRA_PROJECT_KEY, "letters, digits and _, starting with a letter (e.g. OPS)"),
    ] = None
    confluence_spaces: Annotated[
        tuple[str, ...] | None,
        _keys("Confluence space", CONFLUENCE_SPACE_KEY, "letters and digits, or ~ and them for a personal space"),
    ] = None
    requests_per_minute: int | None = Field(default=None, ge=1, strict=True)
    _login: ProxyLogin = PrivateAttr()

    @model_validator(mode="after")
    def _complete(self) -> ClientSettings:
        """The login is read once, here, and kept as a digest (and a secret for `env --client`)."""
        if ":" in self.name or not self.name.isprintable() or self.name != self.name.strip():
            raise ValueError(
                f"name {self.name!r} cannot be a proxy-login user (no ':', spaces around or control characters)"
            )
        if self.name == NO_CLIENT:
            raise ValueError(f"name {NO_CLIENT!r} stands for requests without a login in /metrics: choose another")
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError(f"client {self.name!r}: set password_env or password_file (exactly one)")
        password = self._password().strip()
        if not password:
            raise ValueError(f"client {self.name!r}: the password in {self._password_source()} is empty")
        if not password.isprintable():
            raise ValueError(f"client {self.name!r}: the password in {self._password_source()} has control characters")
        if problem := short_password(password):
            raise ValueError(f"client {self.name!r}: the password in {self._password_source()} {problem}")
        self._login = ProxyLogin.of(self.name, password)
        return self

    def _password_source(self) -> str:
        return f"password_env {self.password_env}" if self.password_env else f"password_file {self.password_file}"

    def _password(self) -> str:
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ValueError(
                    f"client {self.name!r}: {self.password_env} is not set: it should hold the client's proxy password"
                )
            return value
        path = Path(self.password_file or "").expanduser()
        try:
            return read_secret_text(path, MAX_PASSWORD_FILE, "a password")
        except UnreadableFile as e:
            raise ValueError(f"client {self.name!r}: cannot read password_file {str(path)!r} ({e})") from None

    def client(self) -> Client:
        return Client(
            self.name,
            self._login,
            frozenset(self.sites) if self.sites is not None else None,
            self.read_only,
            self.jira_projects,
            self.confluence_spaces,
            self.requests_per_minute,
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

    email: Annotated[str, AfterValidator(_email)] | None = None
    api_token: Annotated[SecretStr, BeforeValidator(_token)] | None = None
    api_token_file: Annotated[Path, AfterValidator(_existing_file)] | None = None
    token_expires: DateSetting | None = None
    hosts: HostsSetting = (HostPattern.parse("*.atlassian.net"),)
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=8080, ge=0, le=65535)
    confdir: Path = Path("~/.mitmproxy")
    connect_to: ConnectToSetting = ()
    upstream_ca_bundle: Annotated[Path, AfterValidator(_existing_file)] | None = None
    site: Annotated[str, AfterValidator(parse_site)] | None = None
    sites: tuple[SiteSettings, ...] = ()
    clients: tuple[ClientSettings, ...] = ()
    reverse: Annotated[ReverseTarget, BeforeValidator(_parsed(ReverseTarget))] | None = None
    upstream_proxy: Annotated[UpstreamProxy, BeforeValidator(_parsed(UpstreamProxy))] | None = None
    allow_insecure_keyring: bool = False
    admin_port: int | None = Field(default=None, ge=0, le=65535)
    log_format: Literal["text", "json"] = "text"
    proxy_auth: Annotated[ProxyLogin, BeforeValidator(_login)] | None = None
    proxy_auth_file: Annotated[ProxyLogin, BeforeValidator(_login_file)] | None = None
    allow_browsers: bool = False
    upstream_timeout: float = Field(default=60.0, gt=0, le=3600)
    client_timeout: float = Field(default=60.0, gt=0, le=3600)
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
        key is covered by being one of these.
        """
        names: set[str] = set()
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


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Read every source once; raise SettingsError with a one-line message on bad input.

    `flags` are command-line values; None means the flag was not given.
    """
    flags = {name: value for name, value in flags.items() if value is not None}
    toml_file, source = _config_path(config_file)

    class _FromSources(Settings):
        model_config = SettingsConfigDict(toml_file=toml_file)

    try:
        return _FromSources(**flags)
    except ValidationError as e:
        raise SettingsError(_describe(e.errors()[0], flags, toml_file)) from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{source}: {toml_file} is not valid TOML ({e}); fix the file") from None


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


def _describe(error: Any, flags: dict[str, Any], toml_file: Path | None) -> str:
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


TABLES: dict[str, type[Table]] = {"sites": SiteSettings, "clients": ClientSettings}
"""The TOML tables by key, for naming the keys a misspelt one might have meant."""

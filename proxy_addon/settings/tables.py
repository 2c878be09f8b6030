"""The tables of the TOML config, `[[sites]]` and `[[clients]]`: one model each, where an unknown key is an error."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from proxy_addon.policy.clients import NO_CLIENT, Client
from proxy_addon.policy.layouts import Product, declared, is_cloud_host
from proxy_addon.policy.proxy_login import ProxyLogin, short_password
from proxy_addon.policy.sites import Scheme, Site
from proxy_addon.settings.files import UnreadableFile, read_secret_text
from proxy_addon.settings.values import MAX_PASSWORD_FILE, DateSetting, ExistingFile, HostsSetting

CONTEXT_PATH = re.compile(r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?")


def _context_path(value: str) -> str:
    """Where a Data Center product is served: `/`, or plain segments such as `/jira` (a trailing `/` is dropped)."""
    if not value.startswith("/") or not CONTEXT_PATH.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a context path: write / or the path the product is served under, such as /jira "
            "(letters, digits, . _ ~ -, no dot segments)"
        )
    return value.rstrip("/") or "/"


CLOUD_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,256}")


def _cloud_id(value: str) -> str:
    if not CLOUD_ID.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a cloudId: it is the site's id, letters, digits and -, as "
            "https://SITE.atlassian.net/_edge/tenant_info shows it"
        )
    return value


def _client_id(value: str) -> str:
    if not CLIENT_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not an OAuth client id: letters, digits and . _ ~ - only")
    return value


SECRET_ENV_SUFFIX = "_env"  # noqa: S105 - a key suffix, not a secret
"""A table key with this suffix names the environment variable that holds a secret."""


class Table(BaseModel):
    """A table of the TOML config: a key it does not define is an error, never ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    def secret_variables(self) -> set[str]:
        """The variables its `*_env` keys name: each holds a secret (a token, a password)."""
        return {value for key, value in self if key.endswith(SECRET_ENV_SUFFIX) and isinstance(value, str)}


CLIENT_KEYS = ("client_id", "client_secret_env", "client_secret_file")
CLIENT_KEYRING_PREFIX = "client:"
"""The keyring username of a client secret is this and the client id: `client:<client_id>`."""


class SiteSettings(Table):
    """One `[[sites]]` table of the TOML config."""

    name: str = Field(
        min_length=1,
        description="The site's name: in the log, the metrics' `site` label, a client's `sites` and "
        "`login`/`logout --site`.",
    )
    hosts: HostsSetting = Field(
        description="The hosts that get this site's credentials, written as `ATLASSIAN_PROXY_HOSTS` (optionally "
        "with `:port`); across sites, an exact name beats a wildcard and a longer wildcard a shorter one."
    )
    email: str | None = Field(
        default=None,
        description="The account email: the Basic user, and the keyring user when neither `token_env` nor "
        "`token_file` is set. Needed for `basic`.",
    )
    token_env: str | None = Field(default=None, description="The environment variable holding this site's token.")
    token_file: ExistingFile | None = Field(
        default=None, description="A file holding this site's token, re-read when it changes."
    )
    scheme: Literal["basic", "bearer", "client_credentials"] = Field(
        default="basic",
        description="`basic`: `email:token` (Atlassian Cloud, Bitbucket Cloud); `bearer`: a Data Center or Server "
        "personal access token; `client_credentials`: a service account's OAuth client id and secret, "
        "the proxy minting its access tokens.",
    )
    read_only: bool = Field(
        default=False,
        description="`true`: only reads pass (GET, HEAD, OPTIONS and the read-only searches); any other request "
        "gets 403 and nothing is sent.",
    )
    scoped: bool = Field(
        default=False,
        description="`true` for a scoped API token: the site's `/rest/` and `/wiki/` requests go through the API "
        "gateway, whose cloudId the proxy looks up at start.",
    )
    token_expires: DateSetting | None = Field(
        default=None,
        description='The date the token expires (a TOML date or `"YYYY-MM-DD"`), as `ATLASSIAN_PROXY_TOKEN_EXPIRES`.',
    )
    product: Literal["jira", "confluence"] | None = Field(
        default=None,
        description="Data Center or Server only: the product the site serves, for bounds, read-only searches and "
        "the identity page.",
    )
    context_path: Annotated[str, AfterValidator(_context_path)] | None = Field(
        default=None,
        description="Data Center or Server only, with `product`: the path the product is served under, such as "
        "`/jira`; absent: `/`.",
    )
    max_in_flight: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        strict=True,
        description="Requests of this site at the site at once, per proxy process; else the top-level max_in_flight.",
    )
    queue_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="The longest a request of this site waits for a place; else the top-level queue_timeout_seconds.",
    )
    client_id: Annotated[str, AfterValidator(_client_id)] | None = Field(
        default=None,
        description='With scheme = "client_credentials": the service account\'s OAuth client id; the proxy mints '
        "its access tokens at https://auth.atlassian.com/oauth/token.",
    )
    client_secret_env: str | None = Field(
        default=None,
        min_length=1,
        description="The environment variable holding the client secret (else client_secret_file, else the "
        "keyring: service atlassian-auth-proxy, username client:<client_id>).",
    )
    client_secret_file: ExistingFile | None = Field(
        default=None,
        description="A file holding the client secret (a Docker or Kubernetes secret); re-read when it changes.",
    )
    cloud_id: Annotated[str, AfterValidator(_cloud_id)] | None = Field(
        default=None,
        description="The Cloud site's cloudId. Scoped and client-credentials sites look it up at start without "
        "it; with it, requests in the API gateway's form for this cloudId get this site's credentials.",
    )

    @model_validator(mode="after")
    def _complete(self) -> SiteSettings:
        if self.token_env is not None and self.token_file is not None:
            raise ValueError("set token_env or token_file, not both")
        if self.cloud_id is not None and (self.product is not None or self.scheme == "bearer"):
            raise ValueError(
                "cloud_id is for Atlassian Cloud sites (and the API gateway); remove it from a Data Center site"
            )
        if self.scheme == "client_credentials":
            return self._client_credentials()
        if any(getattr(self, key) is not None for key in CLIENT_KEYS):
            raise ValueError('client_id, client_secret_env and client_secret_file need scheme = "client_credentials"')
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

    def _client_credentials(self) -> SiteSettings:
        """A service account's site: a client id, at most one place for its secret, one Cloud host named exactly."""
        if self.client_id is None:
            raise ValueError('scheme = "client_credentials" needs client_id: the service account\'s OAuth client id')
        if self.client_secret_env is not None and self.client_secret_file is not None:
            raise ValueError("set client_secret_env or client_secret_file, not both")
        extra = [key for key in ("email", "token_env", "token_file", "token_expires") if getattr(self, key) is not None]
        if self.scoped:
            extra.append("scoped")
        if extra:
            raise ValueError(
                'scheme = "client_credentials" mints its own access tokens for the API gateway: '
                f"remove {', '.join(extra)}"
            )
        for pattern in self.hosts:
            if pattern.wildcard or not is_cloud_host(pattern.domain):
                raise ValueError(
                    f'scheme = "client_credentials": a service account acts on one Cloud site; name its host exactly '
                    f"(e.g. acme.atlassian.net), not {pattern}"
                )
        if len(self.hosts) != 1:
            raise ValueError(
                'scheme = "client_credentials": a service account acts on one Cloud site, whose cloudId its tokens '
                f"are for; name its one host, not {len(self.hosts)} (give each site a [[sites]] table of its own)"
            )
        return self

    @property
    def client_keyring_user(self) -> str:
        """The keyring username of this site's client secret: `client:<client_id>`."""
        return f"{CLIENT_KEYRING_PREFIX}{self.client_id}"

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
            self.cloud_id,
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

    name: str = Field(
        min_length=1,
        description="The proxy-login user; names the client in the log (`user`) and the metrics (`client`). "
        "Unique, printable, no `:`, not `none`.",
    )
    password_env: str | None = Field(
        default=None,
        min_length=1,
        description="The environment variable holding the client's proxy password, at least 16 characters "
        "(`openssl rand -base64 24`). This or `password_file`.",
    )
    password_file: Path | None = Field(
        default=None,
        description="A file holding the client's proxy password (a regular file of at most 4 KiB, surrounding "
        "whitespace ignored). Read once at start, kept only as a digest.",
    )
    sites: tuple[str, ...] | None = Field(
        default=None,
        min_length=1,
        description="The names of the sites this client may use (the single-site settings' site is `default`); "
        "absent: every site.",
    )
    read_only: bool = Field(default=False, description="`true`: on every site, only reads pass.")
    jira_projects: Annotated[
        tuple[str, ...] | None,
        _keys("Jira project", JIRA_PROJECT_KEY, "letters, digits and _, starting with a letter (e.g. OPS)"),
    ] = Field(
        default=None,
        description="The Jira project keys this client is bounded to (case ignored; `[]`: none); absent: no bound.",
    )
    confluence_spaces: Annotated[
        tuple[str, ...] | None,
        _keys("Confluence space", CONFLUENCE_SPACE_KEY, "letters and digits, or ~ and them for a personal space"),
    ] = Field(
        default=None,
        description="The Confluence space keys this client is bounded to (`~` first for a personal space; case "
        "ignored; `[]`: none); absent: no bound.",
    )
    requests_per_minute: int | None = Field(
        default=None,
        ge=1,
        strict=True,
        description="At most this many requests in any 60 seconds, the id lookups they cause included; absent: "
        "no limit.",
    )
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
            frozenset(self.jira_projects) if self.jira_projects is not None else None,
            frozenset(self.confluence_spaces) if self.confluence_spaces is not None else None,
            self.requests_per_minute,
        )


TABLES: dict[str, type[Table]] = {"sites": SiteSettings, "clients": ClientSettings}
"""The TOML tables by key, for naming the keys a misspelt one might have meant."""

"""`login`, `logout` and `check`: store, remove and verify the token, never showing it."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import TextIO

import tomlkit
from pydantic import SecretStr

from proxy_addon import keyring_store
from proxy_addon.credentials import Credentials, require_email, resolve_credentials
from proxy_addon.myself import Answer, Unreachable, ask_myself
from proxy_addon.settings import CONFIG_ENV, ENV_PREFIX, Settings, SettingsError, parse_site, user_config_path
from proxy_addon.tokens import TokenFormatError, parse_token


class Rejected(Exception):
    """The site refused the credentials (exit 1)."""


def site_of(settings: Settings, flag: str | None) -> str:
    """The site to ask: --site, else ATLASSIAN_PROXY_SITE, else the only exact host pattern."""
    if flag is not None:
        try:
            return parse_site(flag)
        except ValueError as e:
            raise SettingsError(f"--site: {e}") from None
    if settings.site is not None:
        return settings.site
    exact = [p.domain for p in settings.hosts.patterns if not p.wildcard]
    if len(exact) == 1:
        return exact[0]
    raise SettingsError(f"{ENV_PREFIX}SITE is not set: set it to your site (e.g. acme.atlassian.net), or pass --site")


def check(settings: Settings, out: TextIO) -> None:
    """Resolve the credentials exactly as `run` does and ask the site who they belong to."""
    site = site_of(settings, None)
    source, credentials = resolve_credentials(settings)
    answer = _ask(site, credentials, settings)
    print(f"{site}: signed in as {_who(answer)} with the token from {source.description}", file=out)


def login(settings: Settings, email: str | None, site: str | None, verify: bool, stdin: TextIO, out: TextIO) -> None:
    email = email or require_email(settings)
    site = site_of(settings, site) if (site or verify) else None
    token = _read_token(email, stdin)
    if verify and site is not None:
        answer = _ask(site, Credentials.of(email, token, "login"), settings)
        print(f"{site}: the token belongs to {_who(answer)}", file=out)
    backend = keyring_store.store_token(email, token, allow_insecure=settings.allow_insecure_keyring)
    print(f"stored the token for {email} in the keyring ({backend})", file=out)
    path = _config_in_effect()
    record_account(path, email, site)
    where = f"; credentials now go only to {site}" if site else ""
    print(f"recorded the email{' and site' if site else ''} in {path}{where}", file=out)


def logout(settings: Settings, email: str | None, out: TextIO) -> None:
    email = email or require_email(settings)
    if keyring_store.delete_token(email, allow_insecure=settings.allow_insecure_keyring):
        print(f"removed the token for {email} from the keyring", file=out)
    else:
        print(f"the keyring held no token for {email}", file=out)


def record_account(path: Path, email: str, site: str | None) -> None:
    """Write email (and site, pinning HOSTS to it) into a TOML file, keeping its other content."""
    document = tomlkit.parse(path.read_text()) if path.is_file() else tomlkit.document()
    document["email"] = email
    if site is not None:
        document["site"] = site
        document["hosts"] = [site]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps(document))


def _config_in_effect() -> Path:
    env = os.environ.get(CONFIG_ENV)
    return Path(env).expanduser() if env else user_config_path()


def _read_token(email: str, stdin: TextIO) -> SecretStr:
    text = getpass.getpass(f"Atlassian API token for {email} (input hidden): ") if stdin.isatty() else stdin.read()
    try:
        return parse_token(text)
    except TokenFormatError as e:
        source = "typed" if stdin.isatty() else "read from stdin"
        raise SettingsError(f"the token {source} {e}") from None


def _ask(site: str, credentials: Credentials, settings: Settings) -> Answer:
    try:
        answer = ask_myself(site, credentials, settings.connect_to, settings.upstream_ca_bundle)
    except Unreachable as e:
        raise SettingsError(str(e)) from None
    if answer.rejection is not None:
        raise Rejected(
            f"{site} rejected the token for {credentials.email} ({answer.rejection}): it may be wrong, revoked "
            "or expired; create a new one at https://id.atlassian.com/manage-profile/security/api-tokens"
        )
    if answer.status != 200:
        raise SettingsError(f"{site} answered HTTP {answer.status} to /rest/api/3/myself: is it a Jira site?")
    return answer


def _who(answer: Answer) -> str:
    return f"{answer.display_name or 'an unnamed account'} (accountId {answer.account_id or '?'})"

"""`login`, `logout` and `check`: store, remove and verify tokens (and service accounts' client secrets), never
showing them."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TextIO

import tomlkit
from pydantic import SecretStr

from proxy_addon.credentials import keyring_store
from proxy_addon.credentials.http_client import Reach, Unreachable, fetch, json_object
from proxy_addon.credentials.identity import Answer, CheckTarget, ask_myself, check_target, cloud_id, identity_path
from proxy_addon.credentials.minted import TOKEN_HOST, MintRejected, mint
from proxy_addon.credentials.sources import (
    ClientSecret,
    Credentials,
    Resolved,
    checked_secret,
    checked_token,
    require_email,
    resolve_sites,
    sites_with_sources,
)
from proxy_addon.policy.expiry import days, days_left
from proxy_addon.policy.scoped import GATEWAY
from proxy_addon.policy.sites import Scheme, Site, pinnable_site
from proxy_addon.policy.token_health import API_TOKENS_PAGE, rejection_reason
from proxy_addon.policy.unauthorized import SCOPE_CHECK
from proxy_addon.settings.loading import load_settings, user_config_path
from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import CONFIG_ENV, SettingsError
from proxy_addon.settings.tables import CLIENT_ID, CLIENT_KEYRING_PREFIX
from proxy_addon.settings.values import parse_site


class Rejected(Exception):
    """The site refused the credentials (exit 1)."""


def login_command(args: argparse.Namespace) -> int:
    if args.client_id is not None:
        _only_client_id(args, "email", "site", "expires")
        return _outcome(lambda: login_client(load_settings(), args.client_id, args.verify, sys.stdin, sys.stdout))
    return _outcome(
        lambda: login(load_settings(), args.email, args.site, args.verify, sys.stdin, sys.stdout, args.expires)
    )


def logout_command(args: argparse.Namespace) -> int:
    if args.client_id is not None:
        _only_client_id(args, "email", "site")
        return _outcome(lambda: logout_client(load_settings(), args.client_id, sys.stdout))
    return _outcome(lambda: logout(load_settings(), args.email, args.site, sys.stdout))


def _only_client_id(args: argparse.Namespace, *flags: str) -> None:
    given = [f"--{flag}" for flag in flags if getattr(args, flag) is not None]
    if given:
        raise SettingsError(f"--client-id is a service account's client secret: {', '.join(given)} are for API tokens")


def check_command(args: argparse.Namespace) -> int:
    return _outcome(lambda: check(load_settings(), sys.stdout))


def _outcome(action: Callable[[], None]) -> int:
    """Exit 0 when the action succeeds, 1 when the site rejected the credentials."""
    try:
        action()
    except Rejected as e:
        print(f"atlassian-auth-proxy: {e}", file=sys.stderr)
        return 1
    return 0


def check(settings: Settings, out: TextIO) -> None:
    """Resolve every site's credentials exactly as `run` does and ask each site who they are."""
    _, resolved = resolve_sites(settings)
    problems: list[Exception] = []
    for entry in resolved:
        prefix = f"site {entry.site.name}: " if len(resolved) > 1 else ""
        try:
            target = check_target(entry.site, settings.site)
            if entry.client is not None:
                print(f"{prefix}{check_service_account(entry, entry.client, target.host, settings)}", file=out)
                continue
            if target.path is None or entry.credentials is None:
                print(f"{prefix}{target.host}: not checked (no identity page there)", file=out)
                continue
            answer = _ask(target, target.path, entry.credentials, settings)
        except (Rejected, SettingsError) as e:
            print(f"{prefix}{e}", file=out)
            problems.append(e)
            continue
        print(
            f"{prefix}{target.host}: signed in as {_who(answer)} with the token from {entry.source.description}",
            file=out,
        )
        if entry.site.token_expires is not None:
            print(f"{prefix}{target.host}: {expiry_note(entry.site.token_expires, time.time())}", file=out)
    if len(problems) == 1 and len(resolved) == 1:
        raise problems[0]
    if problems:
        worst = next((p for p in problems if isinstance(p, SettingsError)), problems[0])
        raise type(worst)(f"{len(problems)} of {len(resolved)} sites failed the check")


def check_service_account(entry: Resolved, client: ClientSecret, host: str, settings: Settings) -> str:
    """Mint an access token as `run` does and ask the gateway's identity page whose it is: one line saying so."""
    reach = Reach.of(settings)
    try:
        known = entry.site.cloud_id or cloud_id(host, reach)
        minted = mint(client, reach)
    except MintRejected as e:
        raise Rejected(
            f"{TOKEN_HOST} rejected the client credentials of client_id {client.client_id} ({e.why}) with the secret "
            f"from {entry.source.description}: the secret may be wrong, rotated or revoked"
        ) from None
    except Unreachable as e:
        raise SettingsError(str(e)) from None
    path = f"/ex/jira/{known}/rest/api/3/myself"
    try:
        status, headers, body = fetch(
            GATEWAY, 443, path, Credentials(client.client_id, "mint", minted.authorization), reach
        )
    except Unreachable as e:
        raise SettingsError(str(e)) from None
    minted_note = (
        f"an access token minted with the secret from {entry.source.description} (for {minted.lifetime:.0f} s)"
    )
    if status == 401 and headers.get("x-failure-category", "").strip().upper() == SCOPE_CHECK:
        return (
            f"{host}: {minted_note} is accepted by the API gateway; its identity page needs the scope read:jira-user "
            "to say whose it is"
        )
    if (reason := rejection_reason(status, headers)) is not None:
        raise Rejected(
            f"{GATEWAY} refused {minted_note} for {host} ({reason}): does the service account have access to this "
            f"site (cloudId {known})?"
        )
    if not 200 <= status < 300:
        raise SettingsError(f"{GATEWAY} answered HTTP {status} to {path}, which says nothing of the access token")
    profile = json_object(body)
    who = _who(Answer(status, None, profile.get("displayName"), profile.get("accountId")))
    return f"{host}: signed in through the API gateway as {who}, client_id {client.client_id}, with {minted_note}"


def login_client(settings: Settings, client_id: str, verify: bool, stdin: TextIO, out: TextIO) -> None:
    """Store a service account's client secret under `client:<client_id>`, after minting a token with it to verify."""
    if not CLIENT_ID.fullmatch(client_id):
        raise SettingsError(f"--client-id: {client_id!r} is not an OAuth client id (letters, digits and . _ ~ - only)")
    prompt = f"client secret of {client_id} (input hidden): "
    text = getpass.getpass(prompt) if stdin.isatty() else stdin.read()
    secret = checked_secret(text, "the client secret " + ("typed" if stdin.isatty() else "read from stdin"))
    if verify:
        try:
            minted = mint(ClientSecret(client_id, secret), Reach.of(settings))
        except MintRejected as e:
            raise Rejected(
                f"{TOKEN_HOST} rejected the client credentials of client_id {client_id} ({e.why}): check the id and "
                "the secret; nothing was stored"
            ) from None
        except Unreachable as e:
            raise SettingsError(str(e)) from None
        print(
            f"{TOKEN_HOST}: the client credentials work (minted an access token for {minted.lifetime:.0f} s)", file=out
        )
    user = f"{CLIENT_KEYRING_PREFIX}{client_id}"
    backend = keyring_store.store_token(user, secret, allow_insecure=settings.allow_insecure_keyring)
    print(f"stored the client secret of {client_id} in the keyring ({backend}, user {user})", file=out)


def logout_client(settings: Settings, client_id: str, out: TextIO) -> None:
    user = f"{CLIENT_KEYRING_PREFIX}{client_id}"
    if keyring_store.delete_token(user, allow_insecure=settings.allow_insecure_keyring):
        print(f"removed the client secret of {client_id} from the keyring", file=out)
    else:
        print(f"the keyring held no client secret of {client_id}", file=out)


def expiry_note(day: date, now: float) -> str:
    left = days_left(day, now)
    if left < 0:
        return f"the token expired on {day.isoformat()} ({days(-left)} ago); create a new one at {API_TOKENS_PAGE}"
    return f"the token expires on {day.isoformat()} ({days(left)} left)"


def login(
    settings: Settings,
    email: str | None,
    site: str | None,
    verify: bool,
    stdin: TextIO,
    out: TextIO,
    expires: date | None = None,
) -> None:
    """Store a token. `--site` names a [[sites]] entry when those exist, else the user's own site.

    `expires` (the date Atlassian showed when the token was created) is recorded next to the email.
    """
    named = _named_site(settings, site)
    pin = None
    if named is not None:
        user, scheme = email or named.user, named.scheme
        target = check_target(named, None) if verify else None
    else:
        user, scheme = email or require_email(settings), Scheme.BASIC
        pin = _parse_site_flag(site, settings) if site else None
        default = Site("default", settings.hosts, user)
        target = (
            (CheckTarget(pin, 443, identity_path(default, pin, 443)) if pin else check_target(default, settings.site))
            if verify
            else None
        )
    token = _read_token(user, stdin)
    if target is not None and target.path is not None:
        answer = _ask(target, target.path, Credentials.of(user, token, "login", scheme), settings)
        print(f"{target.host}: the token belongs to {_who(answer)}", file=out)
    backend = keyring_store.store_token(user, token, allow_insecure=settings.allow_insecure_keyring)
    print(f"stored the token for {user} in the keyring ({backend})", file=out)
    if named is None:
        path = _config_in_effect()
        record_account(path, user, pin, expires)
        where = f" and site; credentials now go only to {pin}" if pin else ""
        when = f" and the expiry date {expires.isoformat()}" if expires else ""
        print(f"recorded the email{where}{when} in {path}", file=out)
    elif expires is not None:
        print(
            f"to be warned before it expires, add token_expires = {expires.isoformat()} to [[sites]] {named.name!r}",
            file=out,
        )


def logout(settings: Settings, email: str | None, site: str | None, out: TextIO) -> None:
    named = _named_site(settings, site)
    user = email or (named.user if named else require_email(settings))
    if keyring_store.delete_token(user, allow_insecure=settings.allow_insecure_keyring):
        print(f"removed the token for {user} from the keyring", file=out)
    else:
        print(f"the keyring held no token for {user}", file=out)


def record_account(path: Path, email: str, site: str | None, expires: date | None = None) -> None:
    """Write email (and site, pinning HOSTS to it, and the token's expiry date) into a TOML file,
    keeping its other content."""
    document = tomlkit.parse(path.read_text()) if path.is_file() else tomlkit.document()
    document["email"] = email
    if expires is not None:
        document["token_expires"] = expires
    if site is not None:
        document["site"] = site
        document["hosts"] = [site]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomlkit.dumps(document))


def _named_site(settings: Settings, name: str | None) -> Site | None:
    """With [[sites]] configured, --site names one of them."""
    if not settings.sites or name is None:
        return None
    for site, _ in sites_with_sources(settings):
        if site.name == name:
            return site
    names = ", ".join(entry.name for entry in settings.sites)
    raise SettingsError(f"--site: no site named {name!r} in [[sites]] (have: {names})")


def _parse_site_flag(text: str, settings: Settings) -> str:
    """The site to send the token to and pin HOSTS to; only a real site name (see `pinnable_site`)."""
    try:
        name = parse_site(text)
    except ValueError as e:
        raise SettingsError(f"--site: {e}") from None
    if not pinnable_site(name, settings.hosts):
        raise SettingsError(
            f"--site: {name} is not an Atlassian Cloud site (NAME.atlassian.net) nor a host ATLASSIAN_PROXY_HOSTS "
            "names exactly; the token is not sent to it. Check the spelling, or add the host to HOSTS first"
        )
    return name


def _config_in_effect() -> Path:
    env = os.environ.get(CONFIG_ENV)
    return Path(env).expanduser() if env else user_config_path()


def _read_token(user: str, stdin: TextIO) -> SecretStr:
    prompt = f"Atlassian API token for {user} (input hidden): "
    text = getpass.getpass(prompt) if stdin.isatty() else stdin.read()
    return checked_token(text, "the token " + ("typed" if stdin.isatty() else "read from stdin"))


def _ask(target: CheckTarget, path: str, credentials: Credentials, settings: Settings) -> Answer:
    try:
        answer = ask_myself(target.host, credentials, Reach.of(settings), target.port, path)
    except Unreachable as e:
        raise SettingsError(str(e)) from None
    if answer.rejection is not None:
        raise Rejected(
            f"{target.host} rejected the token for {credentials.user or 'this site'} ({answer.rejection}): it may "
            f"be wrong, revoked or expired; create a new one at {API_TOKENS_PAGE}"
        )
    if not 200 <= answer.status < 300:
        raise SettingsError(
            f"{target.host} answered HTTP {answer.status} to {path}, which says nothing of the token: is this the "
            "right site (and, for Data Center, its product and context_path)?"
        )
    return answer


def _who(answer: Answer) -> str:
    return f"{answer.display_name or 'an unnamed account'} (accountId {answer.account_id or '?'})"

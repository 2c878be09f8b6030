"""The OS keyring as a token store: service `atlassian-auth-proxy`, user = the account email
(a service account's client secret: user = `client:<client_id>`).

A missing entry and a keyring that is locked or unreachable are different problems with
different fixes, so each gets its own message; either way the proxy does not start. Backends
that keep secrets in plain files are refused unless the user opts in.
"""

from __future__ import annotations

from collections.abc import Callable

import keyring
import keyring.backend
import keyring.errors
from pydantic import SecretStr

from proxy_addon.policy.tokens import TokenFormatError, parse_client_secret, parse_token
from proxy_addon.settings.names import SettingsError, env_name

SERVICE = "atlassian-auth-proxy"
ALLOW_INSECURE_ENV = env_name("allow_insecure_keyring")
NO_TOKEN = (
    f"no API token: set {env_name('api_token')}, or {env_name('api_token_file')} to a file holding it, "
    "or store it in the keyring with `atlassian-auth-proxy login`"
)
MISSING_CLIENT = (
    "no client secret: set client_secret_env or client_secret_file in the site's [[sites]] table, or store it "
    "in the keyring with `atlassian-auth-proxy login --client-id ID`"
)
SECURE_BACKEND_MODULES = (
    "keyring.backends.SecretService",
    "keyring.backends.libsecret",
    "keyring.backends.kwallet",
    "keyring.backends.macOS",
    "keyring.backends.Windows",
)


class KeyringUnavailable(SettingsError):
    """No usable keyring, or it is locked: the fix is on the keyring side, not the entry."""


class KeyringEntryMissing(SettingsError):
    """The keyring works but holds no token for this email."""


def backend_name(backend: keyring.backend.KeyringBackend) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def is_secure(backend: keyring.backend.KeyringBackend) -> bool:
    """True for backends that keep secrets in an OS secret store, not in a file we can read."""
    inner = getattr(backend, "backends", None)
    if inner is not None:
        return bool(inner) and all(is_secure(b) for b in inner)
    return type(backend).__module__.startswith(SECURE_BACKEND_MODULES)


def _backend(allow_insecure: bool) -> keyring.backend.KeyringBackend:
    backend = keyring.get_keyring()
    name = backend_name(backend)
    if name == "keyring.backends.fail.Keyring":
        raise KeyringUnavailable(
            "no OS keyring is available here (keyring.backends.fail.Keyring): start a Secret Service "
            f"such as gnome-keyring, or use {env_name('api_token_file')}"
        )
    if not allow_insecure and not is_secure(backend):
        raise KeyringUnavailable(
            f"the keyring backend {name} stores secrets in plain files; use an OS keyring, "
            f"{env_name('api_token_file')}, or set {ALLOW_INSECURE_ENV}=true to accept it"
        )
    return backend


def _unavailable(e: keyring.errors.KeyringError, backend: keyring.backend.KeyringBackend) -> KeyringUnavailable:
    if isinstance(e, keyring.errors.KeyringLocked):
        return KeyringUnavailable(
            f"the keyring ({backend_name(backend)}) is locked: unlock it (log in to your desktop session, "
            "or unlock gnome-keyring) and try again"
        )
    return KeyringUnavailable(f"the keyring ({backend_name(backend)}) failed: {type(e).__name__}; is it running?")


def read_token(email: str, *, allow_insecure: bool = False) -> SecretStr:
    return _read(email, allow_insecure, NO_TOKEN, "atlassian-auth-proxy login", parse_token)


def read_client_secret(user: str, *, allow_insecure: bool = False) -> SecretStr:
    """A service account's client secret, stored under `client:<client_id>` by `login --client-id`."""
    client_id = user.partition(":")[2]
    return _read(
        user,
        allow_insecure,
        MISSING_CLIENT,
        f"atlassian-auth-proxy login --client-id {client_id}",
        parse_client_secret,
    )


def _read(user: str, allow_insecure: bool, missing: str, store: str, parse: Callable[[str], SecretStr]) -> SecretStr:
    try:
        backend = _backend(allow_insecure)
    except KeyringUnavailable as e:
        raise KeyringUnavailable(f"{missing}; the keyring cannot be used: {e}") from None
    try:
        text = backend.get_password(SERVICE, user)
    except keyring.errors.KeyringError as e:
        raise _unavailable(e, backend) from None
    if text is None:
        raise KeyringEntryMissing(f"{missing}; the keyring has no entry (service {SERVICE!r}, user {user!r})")
    try:
        return parse(text)
    except TokenFormatError as e:
        raise KeyringEntryMissing(
            f"the keyring entry ({SERVICE!r}, {user!r}) {e}; store it again with `{store}`"
        ) from None


def store_token(email: str, token: SecretStr, *, allow_insecure: bool = False) -> str:
    """Store the token; returns the backend's name for the user's information."""
    backend = _backend(allow_insecure)
    try:
        backend.set_password(SERVICE, email, token.get_secret_value())
    except keyring.errors.KeyringError as e:
        raise _unavailable(e, backend) from None
    return backend_name(backend)


def delete_token(email: str, *, allow_insecure: bool = False) -> bool:
    """Remove the entry; False when there was none."""
    backend = _backend(allow_insecure)
    try:
        backend.delete_password(SERVICE, email)
    except keyring.errors.PasswordDeleteError:
        return False
    except keyring.errors.KeyringError as e:
        raise _unavailable(e, backend) from None
    return True

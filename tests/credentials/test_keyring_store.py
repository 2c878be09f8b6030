"""The OS keyring as a token store: a missing entry and an unusable keyring are told apart; plain files are refused."""

from __future__ import annotations

import keyring
import keyring.backend
import keyring.errors
import pytest
from keyring.backends import fail
from pydantic import SecretStr

from proxy_addon.credentials.keyring_store import (
    SERVICE,
    KeyringEntryMissing,
    KeyringUnavailable,
    delete_token,
    is_secure,
    read_client_secret,
    read_token,
    store_token,
)

from support.proxy import EMAIL, TOKEN_24


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring in memory; its module is not an OS secret store's, so it counts as insecure."""

    def __init__(self, locked: bool = False) -> None:
        super().__init__()
        self.locked = locked
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        if self.locked:
            raise keyring.errors.KeyringLocked("locked")
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError("no such entry")


@pytest.fixture
def memory(monkeypatch) -> MemoryKeyring:
    """The keyring the store gets; keyring's own choice is never made (it probes backends in subprocesses)."""
    backend = MemoryKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: backend)
    return backend


def test_a_plain_file_backend_is_refused_unless_allowed(memory):
    with pytest.raises(KeyringUnavailable, match="stores secrets in plain files"):
        store_token(EMAIL, SecretStr(TOKEN_24))
    assert store_token(EMAIL, SecretStr(TOKEN_24), allow_insecure=True).endswith("MemoryKeyring")
    assert memory.entries == {(SERVICE, EMAIL): TOKEN_24}
    assert read_token(EMAIL, allow_insecure=True).get_secret_value() == TOKEN_24


def test_a_missing_entry_and_a_locked_keyring_are_different_problems(memory):
    with pytest.raises(KeyringEntryMissing, match=f"no entry \\(service '{SERVICE}', user '{EMAIL}'\\)"):
        read_token(EMAIL, allow_insecure=True)
    memory.locked = True
    with pytest.raises(KeyringUnavailable, match="is locked: unlock it"):
        read_token(EMAIL, allow_insecure=True)


def test_a_malformed_entry_is_named_without_its_content(memory):
    memory.entries[(SERVICE, EMAIL)] = "secret part"
    with pytest.raises(KeyringEntryMissing, match="store it again") as raised:
        read_token(EMAIL, allow_insecure=True)
    assert "secret part" not in str(raised.value)


def test_delete_says_whether_there_was_an_entry(memory):
    store_token(EMAIL, SecretStr(TOKEN_24), allow_insecure=True)
    assert delete_token(EMAIL, allow_insecure=True)
    assert not delete_token(EMAIL, allow_insecure=True)


def test_no_keyring_at_all_says_what_to_use_instead(monkeypatch):
    monkeypatch.setattr(keyring, "get_keyring", fail.Keyring)
    with pytest.raises(KeyringUnavailable, match="no OS keyring is available here"):
        read_token(EMAIL)


def test_a_chain_is_secure_only_if_every_backend_in_it_is():
    secret_service = type("Keyring", (), {"__module__": "keyring.backends.SecretService"})()
    chain = type("ChainerBackend", (), {})
    assert is_secure(secret_service)
    assert not is_secure(MemoryKeyring())
    for backends, secure in (([secret_service], True), ([secret_service, MemoryKeyring()], False), ([], False)):
        one = chain()
        one.backends = backends
        assert is_secure(one) is secure


def test_a_client_secret_is_read_under_client_and_its_id(memory):
    user = "client:sa-client"
    with pytest.raises(KeyringEntryMissing, match=r"no client secret: .*login --client-id ID") as raised:
        read_client_secret(user, allow_insecure=True)
    assert f"user '{user}'" in str(raised.value)
    store_token(user, SecretStr("the-Client-secret!"), allow_insecure=True)
    assert read_client_secret(user, allow_insecure=True).get_secret_value() == "the-Client-secret!"
    memory.entries[(SERVICE, user)] = "two words"
    with pytest.raises(KeyringEntryMissing, match="login --client-id sa-client") as raised:
        read_client_secret(user, allow_insecure=True)
    assert "two words" not in str(raised.value)

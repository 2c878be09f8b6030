"""Secrets handed over by pipe (red team #5): what goes into the pipe, what stays out of the environment, and the
receiver's side, in this process (e2e/test_handoff.py hands them to a real one)."""

from __future__ import annotations

import os

import pytest

from proxy_addon.commands import handoff
from proxy_addon.settings.names import SettingsError

TOKEN = "handed-0ver-T0ken-for-the-pipe"


@pytest.fixture
def receiver(monkeypatch) -> list[str]:
    """This process as a receiver: its own environment and record of what it took, and `prctl` left alone."""
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr(handoff, "_received", [])
    calls: list[str] = []
    monkeypatch.setattr(handoff, "undumpable", lambda: calls.append("undumpable"))
    return calls


def test_taking_over_reads_the_pipe_into_the_environment_after_becoming_undumpable(receiver):
    fd = handoff.hand_over({"ACME_TOKEN": TOKEN})
    os.environ[handoff.SECRETS_FD] = str(fd)
    handoff.take_over()
    assert os.environ["ACME_TOKEN"] == TOKEN
    assert handoff.SECRETS_FD not in os.environ
    assert receiver == ["undumpable"]
    assert handoff.handed_over()
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)  # the pipe is closed once read


def test_without_a_pipe_nothing_is_taken_over(receiver):
    handoff.take_over()
    assert receiver == []
    assert not handoff.handed_over()


@pytest.mark.parametrize("value", ["abc", "-1", "999"])
def test_a_secrets_fd_that_is_no_pipe_is_refused_in_one_line(receiver, value):
    os.environ[handoff.SECRETS_FD] = value
    with pytest.raises(SettingsError, match=f"^{handoff.SECRETS_FD} is for exec's own use") as refused:
        handoff.take_over()
    assert "\n" not in str(refused.value)
    assert not handoff.handed_over()


def test_secrets_too_large_for_a_pipe_are_refused_with_one_line_naming_no_value():
    with pytest.raises(SettingsError, match="put the larger ones in files") as refused:
        handoff.hand_over({"ACME_TOKEN": "x" * handoff.MAX_SECRETS})
    assert "xxxx" not in str(refused.value)


def test_the_secret_environment_goes_by_the_names_the_settings_read():
    environ = {"ATLASSIAN_PROXY_API_TOKEN": "a", "atlassian_proxy_api_token": "b", "ACME_TOKEN": "c", "PATH": "/bin"}
    names = frozenset({"ATLASSIAN_PROXY_API_TOKEN", "ACME_TOKEN"})
    secrets = handoff.secret_environment(environ, names)
    assert secrets == {"ATLASSIAN_PROXY_API_TOKEN": "a", "atlassian_proxy_api_token": "b", "ACME_TOKEN": "c"}
    assert handoff.without({**environ, handoff.SECRETS_FD: "3"}, secrets) == {"PATH": "/bin"}

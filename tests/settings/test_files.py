"""Small secret files read without ever blocking: regular files only, bounded, and never their content in an error."""

from __future__ import annotations

import os

import pytest

from proxy_addon.settings.files import UnreadableFile, read_regular_file, read_secret_text


def test_a_regular_file_is_read_up_to_its_limit(tmp_path):
    path = tmp_path / "token"
    path.write_bytes(b"x" * 2049)
    assert read_regular_file(path, 2049) == b"x" * 2049
    with pytest.raises(ValueError, match="larger than 2 KiB, so not a password"):
        read_regular_file(path, 2048, "a password")


def test_a_fifo_is_refused_at_once_rather_than_waited_on(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        read_regular_file(fifo, 64)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.mkdir(), "not a regular file"),
        (lambda p: None, "No such file or directory"),
        (lambda p: p.write_bytes(b"secret-\xff"), "not UTF-8 text"),
        (lambda p: p.write_text("s" * 65), "larger than 0 KiB, so not a token"),
    ],
    ids=["directory", "missing", "not-utf8", "too-large"],
)
def test_why_a_secret_file_cannot_be_read_is_said_without_its_content(tmp_path, make, reason):
    path = tmp_path / "secret"
    make(path)
    with pytest.raises(UnreadableFile, match=reason) as raised:
        read_secret_text(path, 64, "a token")
    assert "secret-" not in str(raised.value)


def test_the_text_of_a_secret_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text("ci:Pr0xy-pa55word-9f3e\n")
    assert read_secret_text(path, 64, "a login") == "ci:Pr0xy-pa55word-9f3e\n"

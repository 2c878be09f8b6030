"""Each setting's value type: read and checked once at load, one line naming the setting when it is bad."""

from __future__ import annotations

import os
import re

import pytest

from proxy_addon.settings.loading import load_settings
from proxy_addon.settings.names import SettingsError

PASSWORD = "Pr0xy-pa55word-9f3e"


@pytest.mark.usefixtures("clean_env")
def test_a_login_file_with_a_bad_login_names_the_file_not_the_content(tmp_path):
    login_file = tmp_path / "login"
    login_file.write_text(PASSWORD)
    with pytest.raises(SettingsError, match=re.escape(str(login_file))) as raised:
        load_settings(proxy_auth_file=str(login_file))
    assert PASSWORD not in str(raised.value)


@pytest.mark.usefixtures("clean_env")
def test_a_fifo_as_the_login_file_is_refused_at_once_instead_of_blocking_the_start(tmp_path):
    fifo = tmp_path / "login"
    os.mkfifo(fifo)
    with pytest.raises(SettingsError, match=re.escape(f"cannot read {str(fifo)!r} (not a regular file)")):
        load_settings(proxy_auth_file=str(fifo))

"""Reading the small secret files settings point at (tokens, passwords), without ever blocking.

Here rather than in `credentials`, so the settings model can read a client's password file at
load while the token sources read their files the same way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_regular_file(path: Path, limit: int, what: str = "a token") -> bytes:
    """At most `limit` bytes of a regular file; ValueError for a FIFO, device or directory, or a larger file.

    Opened without blocking, so a FIFO put in place of the file cannot stall the reader (and
    with it the watcher and shutdown) until someone writes to it.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"larger than {limit // 1024} KiB, so not {what}")
    return data


class UnreadableFile(ValueError):
    """Why a secret file could not be read, in words fit for a one-line message (never its content)."""


def read_secret_text(path: Path, limit: int, what: str) -> str:
    """The UTF-8 text of a small regular file (see `read_regular_file`); UnreadableFile says why not."""
    try:
        return read_regular_file(path, limit, what).decode("utf-8")
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except OSError as e:
        reason = e.strerror or "unreadable"
    except ValueError as e:  # after UnicodeDecodeError, which is one
        reason = str(e)
    raise UnreadableFile(reason)

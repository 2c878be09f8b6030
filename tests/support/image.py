"""The image's contract as the Dockerfile states it (its final stage), and a free loopback port."""

from __future__ import annotations

import json
import re
import shlex
import socket
from dataclasses import dataclass, field

from support.proxy import REPO


@dataclass
class Stage:
    """What the final stage of a Dockerfile says about how the image runs."""

    base: str = ""
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    user: str = "root"
    workdir: str = "/"
    volumes: list[str] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        result.append((keyword.upper(), rest.strip()))
        pending = ""
    return result


def final_stage(text: str) -> Stage:
    """The last stage, its base image with the build arguments' defaults filled in."""
    stage, args = Stage(), {}
    for keyword, rest in instructions(text):
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            stage = Stage(base=re.sub(r"\$\{?(\w+)\}?", lambda m: args[m[1]], rest.split()[0]))
        elif keyword == "ENV":
            stage.env.update(item.split("=", 1) for item in shlex.split(rest))
        elif keyword in ("ENTRYPOINT", "CMD"):
            setattr(stage, keyword.lower(), json.loads(rest))
        elif keyword == "HEALTHCHECK":
            stage.healthcheck = json.loads(rest.partition(" CMD ")[2])
        elif keyword == "USER":
            stage.user = rest
        elif keyword == "WORKDIR":
            stage.workdir = rest
        elif keyword == "VOLUME":
            stage.volumes += json.loads(rest)
    return stage


IMAGE = final_stage((REPO / "Dockerfile").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

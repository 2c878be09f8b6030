"""The generated parts of the reference: the settings, the TOML keys and the decisions, from the code itself.

Each reference page holds its generated tables between two markers,

    <!-- BEGIN GENERATED settings -->
    ...
    <!-- END GENERATED settings -->

and keeps its own prose around them. `tests/docs/test_reference.py` fails when a page and the
code disagree; this file, run as a script, rewrites the tables:

    .venv/bin/python tests/support/docs_reference.py

The settings come from the settings model (`Settings`, `SiteSettings`, `ClientSettings`: each
field's name, type, default and `description`), the decisions from `Decision` (its members and
the docstrings under them in `policy/record.py`) and the proxy's own answers (`REFUSALS`).
"""

from __future__ import annotations

import ast
import itertools
import re
import types
import typing
from collections.abc import Callable
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from proxy_addon.policy import record as record_module
from proxy_addon.policy.record import Decision
from proxy_addon.policy.refusals import REFUSALS, Reply
from proxy_addon.settings import values
from proxy_addon.settings.model import Settings
from proxy_addon.settings.names import env_name
from proxy_addon.settings.tables import ClientSettings, SiteSettings

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
COMMAND = ".venv/bin/python tests/support/docs_reference.py"
BLOCK = re.compile(r"(<!-- BEGIN GENERATED (\S+) -->\n)(.*?)(<!-- END GENERATED \2 -->)", re.S)

TYPES: dict[object, str] = {
    values.EmailSetting: "email address",
    values.TokenSetting: "secret text",
    values.ExistingFile: "path of a file",
    values.DateSetting: "date `YYYY-MM-DD`",
    values.HostsSetting: "host patterns",
    values.ConnectToSetting: "`PATTERN=HOST:PORT` rules",
    values.SiteSetting: "host name",
    values.ReverseSetting: "URL `https://HOST[:PORT]`",
    values.UpstreamProxySetting: "URL `http://[USER:PASSWORD@]HOST:PORT`",
    values.ProxyLoginSetting: "`USER:PASSWORD` (secret)",
    values.ProxyLoginFileSetting: "path of a file",
}
"""The settings' own value types by their names in `settings/values.py`; plain types are named below."""
PLAIN = {str: "text", bool: "`true` or `false`", int: "integer", float: "number", Path: "path", date: "date"}


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _bounds(field: FieldInfo) -> str:
    words = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    found = [
        f"{sign} {getattr(item, name):g}"
        for item in field.metadata
        for name, sign in words.items()
        if hasattr(item, name)
    ]
    return f" ({', '.join(found)})" if found else ""


def type_name(annotation: Any, field: FieldInfo, toml: bool = False) -> str:
    """How a user writes the value: the settings' own types by name, lists as lists (TOML) or comma lists."""
    annotation = _without_none(annotation)
    if annotation in TYPES:
        name = TYPES[annotation]
        if annotation in (values.HostsSetting, values.ConnectToSetting):
            return f"list of {name}" if toml else f"{name}, comma-separated"
        if annotation is values.DateSetting and toml:
            return 'TOML date or `"YYYY-MM-DD"`'
        return name
    base = typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation
    base = _without_none(base)
    if typing.get_origin(base) is Literal:
        return " or ".join(f"`{value}`" for value in typing.get_args(base))
    if typing.get_origin(base) is tuple:
        item = typing.get_args(base)[0]
        if isinstance(item, type) and issubclass(item, BaseModel):
            return "tables"
        return f"list of {type_name(item, FieldInfo(), toml)}"
    if base is SecretStr:
        return "secret text"
    return PLAIN.get(base, getattr(base, "__name__", str(base))) + _bounds(field)


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default()
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    if isinstance(value, tuple):
        return ", ".join(f"`{item}`" for item in value)
    return f"`{value}`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _hints(model: type[BaseModel]) -> dict[str, Any]:
    return typing.get_type_hints(model, include_extras=True)


TOML_ONLY = {"sites", "clients"}
"""Settings that are TOML tables: no environment variable reads them."""


def settings_table() -> str:
    hints = _hints(Settings)
    rows = ["| environment variable | type | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        if name in TOML_ONLY:
            continue
        rows.append(
            f"| `{env_name(name)}` | {type_name(hints[name], field)} | {default_text(field)} | "
            f"{_cell(field.description)} |"
        )
    return "\n".join(rows) + "\n"


def toml_table(model: type[BaseModel]) -> str:
    hints = _hints(model)
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        kind = type_name(hints[name], field, toml=True)
        if model is Settings and name in TOML_ONLY:
            kind = f"`[[{name}]]` tables (below)"
        rows.append(f"| `{name}` | {kind} | {default_text(field)} | {_cell(field.description)} |")
    return "\n".join(rows) + "\n"


def member_docstrings(enum: type[Enum], module: types.ModuleType) -> dict[str, str]:
    """The string under each member of `enum` in its module's source (Python keeps no such docstring)."""
    tree = ast.parse(Path(module.__file__ or "").read_text())
    (body,) = [node.body for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and node.name == enum.__name__]
    found: dict[str, str] = {}
    for before, after in itertools.pairwise(body):
        if (
            isinstance(before, ast.Assign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            (target,) = before.targets
            if isinstance(target, ast.Name):
                found[target.id] = after.value.value
    return found


def answer(reply: Reply) -> str:
    text = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", reply.template)
    if reply.error:
        text = f'JSON `{{"error": "{reply.error}", ...}}`: {text}'
    headers = ", ".join(f"`{name}`" for name, _ in reply.headers)
    return f"{text}{f' (with {headers})' if headers else ''}"


def decisions_table() -> str:
    meaning = member_docstrings(Decision, record_module)
    rows = ["| decision | metrics label | status | the proxy's answer | when |", "|---|---|---|---|---|"]
    for decision in Decision:
        replies = [reply for reply in REFUSALS.values() if reply.decision is decision]
        status = ", ".join(sorted({str(reply.status) for reply in replies})) or "the site's"
        answers = "; ".join(f"{reply.status}: {answer(reply)}" for reply in replies) or "—"
        label = "refused" if decision.startswith("refused-") else str(decision)
        rows.append(
            f"| `{decision}` | `{label}` | {status} | {_cell(answers)} | {_cell(meaning.get(decision.name, ''))} |"
        )
    return "\n".join(rows) + "\n"


def other_answers_table() -> str:
    rows = ["| status | the proxy's answer |", "|---|---|"]
    for reply in REFUSALS.values():
        if reply.decision is None:
            rows.append(f"| {reply.status} | {_cell(answer(reply))} |")
    return "\n".join(rows) + "\n"


GENERATED: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "toml-top-level": lambda: toml_table(Settings),
    "toml-sites": lambda: toml_table(SiteSettings),
    "toml-clients": lambda: toml_table(ClientSettings),
    "decisions": decisions_table,
    "other-answers": other_answers_table,
}
"""Each generated block by the name its markers give."""


def regenerated(text: str) -> str:
    """`text` with every generated block written anew; an unknown block name is an error."""

    def fill(match: re.Match[str]) -> str:
        name = match[2]
        if name not in GENERATED:
            raise KeyError(f"no generator for block {name!r}; known: {', '.join(GENERATED)}")
        return match[1] + GENERATED[name]() + match[4]

    return BLOCK.sub(fill, text)


def pages() -> list[Path]:
    """Every docs page with a generated block."""
    return sorted(path for path in DOCS.rglob("*.md") if BLOCK.search(path.read_text()))


def main() -> None:
    for path in pages():
        text = path.read_text()
        new = regenerated(text)
        if new != text:
            path.write_text(new)
            print(f"rewrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()

"""The settings reference, generated from the `Settings` tree itself so the documentation cannot drift.

`python -m config.reference > docs/settings.md` writes it; a test fails when the file is stale.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from config.durations import format_duration
from config.schedules import Schedule
from config.settings import ENV_PREFIX, JOB_MODELS, GroupSettings, ScheduledSettings, Settings

_HEADER = """# Settings reference

Every setting of ct-sync, generated from the `Settings` tree (`python -m config.reference > docs/settings.md`).
Set them in the environment (`CTSYNC_` prefix, `__` between levels) or in a TOML file named by `CTSYNC_CONFIG`
(sections as in the names: `[crowdtwist]` `api_key = "..."`); the environment wins. A wrong value stops ct-sync at
start with one line naming the setting.
"""


def settings_reference() -> str:
    lines = [_HEADER]
    sections: list[tuple[str, type[BaseModel]]] = []
    top_rows: list[str] = []
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if name in ("jobs", "groups"):
            continue  # tables of the TOML file, documented after the sections
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections.append((name, annotation))
        else:
            top_rows.append(_row(ENV_PREFIX + name.upper(), info))
    lines += ["## General", "", "| setting | default | meaning |", "|---|---|---|", *top_rows, ""]
    for name, model in sections:
        lines += [f"## {name}", ""]
        if model.__doc__:
            lines += [" ".join(model.__doc__.split()), ""]
        lines += ["| setting | default | meaning |", "|---|---|---|"]
        lines += [
            _row(f"{ENV_PREFIX}{name.upper()}__{field.upper()}", info) for field, info in model.model_fields.items()
        ]
        lines.append("")
    return "\n".join(lines + _jobs_reference())


def _jobs_reference() -> list[str]:
    """Jobs and groups are TOML tables, `[jobs.NAME]` and `[groups.NAME]`: their options by kind."""
    lines = [
        "## jobs and groups",
        "",
        "Tables of the TOML file: `[jobs.NAME]` (one `kind` each) and `[groups.NAME]`. Every job and group has:",
        "",
        "| option | default | meaning |",
        "|---|---|---|",
        *(_row(field, info) for field, info in ScheduledSettings.model_fields.items()),
        "",
    ]
    for kind, model in JOB_MODELS.items():
        shared = ScheduledSettings.model_fields
        own = [(field, info) for field, info in model.model_fields.items() if field not in shared]
        lines += [f'### `kind = "{kind}"`', "", " ".join((model.__doc__ or "").split()), ""]
        options = [_row(field, info) for field, info in own if field != "kind"]
        if options:
            lines += ["| option | default | meaning |", "|---|---|---|", *options]
        else:
            lines.append("No options of its own.")
        lines.append("")
    lines += ["### `[groups.NAME]`", "", " ".join((GroupSettings.__doc__ or "").split()), ""]
    lines += ["| option | default | meaning |", "|---|---|---|", _row("jobs", GroupSettings.model_fields["jobs"]), ""]
    return lines


def _row(variable: str, info: FieldInfo) -> str:
    if info.is_required():
        return f"| `{variable}` | (required) | {info.description or ''} |"
    return f"| `{variable}` | {_default(info)} | {info.description or ''} |"


def _default(info: FieldInfo) -> str:
    value: Any = info.default
    if value is PydanticUndefined and info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    if isinstance(value, Schedule):
        return f"`{value.text}`"
    if isinstance(value, list | dict) and not value:
        return "—"
    return f"`{value}`"


if __name__ == "__main__":
    print(settings_reference(), end="")

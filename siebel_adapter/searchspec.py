"""Siebel `searchspec`, written safely: every value quoted, quotes doubled, nothing ever pasted raw. The REST store
builds every query through these functions; the sandbox's Siebel emulator parses what they write
(`sandbox.siebel.search`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

SIEBEL_DATETIME = "%m/%d/%Y %H:%M:%S"


def quote(value: str) -> str:
    """A searchspec string literal: single quotes, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def field_is(field: str, value: str) -> str:
    return f"[{field}] = {quote(value)}"


def any_of(field: str, values: Sequence[str]) -> str:
    return "(" + " OR ".join(field_is(field, value) for value in values) + ")"


def compare(field: str, op: str, value: datetime | str) -> str:
    """`[Field] op 'value'`; a datetime in Siebel's format (UTC, to the second)."""
    text = value.astimezone(UTC).strftime(SIEBEL_DATETIME) if isinstance(value, datetime) else value
    return f"[{field}] {op} {quote(text)}"


def all_of(*parts: str) -> str:
    return " AND ".join(part for part in parts if part)


def after_key(time_field: str, moment: datetime, id_field: str, row_id: str) -> str:
    """Keyset paging: records strictly after (moment, row_id) in (time_field, id_field) order. Parenthesised
    whole, so that ANDed with other conditions it stays one condition (AND binds before OR)."""
    return (
        f"(({compare(time_field, '>', moment)}) OR "
        f"({all_of(compare(time_field, '=', moment), compare(id_field, '>', row_id))}))"
    )

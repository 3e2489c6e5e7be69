"""Test data: a valid Siebel member, varied by keyword (Siebel field names or model names)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sync_worker.core.member import Member

PROGRAM = "1-PRG"
_rows = itertools.count(1)


def siebel_member(**fields: Any) -> dict[str, Any]:
    """A member as the Siebel workflow would post it; keyword names with spaces go through `**{"First Name": ...}`."""
    number = next(_rows)
    document: dict[str, Any] = {
        "Id": f"1-ROW{number}",
        "Member Number": f"296-{2185000 + number}",
        "Status": "Active",
        "Member Type": "Individual",
        "Program Id": PROGRAM,
        "First Name": "Ann",
        "Last Name": "Lee",
        "Email Address": f"ann.lee.{number}@example.com",
        "Date of Birth": "1979-11-30",
        "Primary Postal Code": "10001",
        "Primary City": "New York",
        "Primary Country Code": "US",
        "M/F": "F",
        "Language": "en",
        "Updated": "2026-11-22T10:00:00Z",
    }
    document.update(fields)
    return document


def member(**fields: Any) -> Member:
    return Member.model_validate(siebel_member(**fields))


def changed(current: Member, *, seconds: int = 60, **fields: Any) -> Member:
    """The same member edited in Siebel: new values, a later Updated stamp."""
    return current.model_copy(update={**fields, "updated": current.updated + timedelta(seconds=seconds)})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)

"""The loyalty member as Siebel names it: one pydantic model, Siebel field names as aliases.

Pure: imports pydantic only. Dates arrive as ISO 8601 or Siebel's `MM/DD/YYYY[ HH:MM:SS]`; Siebel sends empty
strings for empty fields, which become `None` here so every later rule has one notion of "empty".
"""

from __future__ import annotations

import enum
import hashlib
import json
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from sync_worker.core.errors import InvalidRecord

# Siebel business component field names, in one place for the store adapters, the intake and the docs.
ROW_ID = "Id"
MEMBER_NUMBER = "Member Number"
UPDATED = "Updated"

ACTIVE = "Active"
INDIVIDUAL = "Individual"

_SIEBEL_DATE = "%m/%d/%Y"
_SIEBEL_DATETIME = "%m/%d/%Y %H:%M:%S"


def _empty_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def parse_siebel_date(value: Any) -> Any:
    """Accept `1979-11-30`, `11/30/1979` or a date; leave anything else for pydantic to refuse."""
    value = _empty_to_none(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.strptime(text, _SIEBEL_DATE).date()
        except ValueError:
            pass
        try:  # Siebel sometimes sends a date field with a 00:00:00 time part
            return datetime.strptime(text, _SIEBEL_DATETIME).date()
        except ValueError:
            return text
    return value


def parse_siebel_datetime(value: Any) -> Any:
    """Accept ISO 8601 or `MM/DD/YYYY HH:MM:SS`; a stamp without a zone is taken as UTC."""
    value = _empty_to_none(value)
    if isinstance(value, str):
        text = value.strip()
        if text[:4].isdigit():  # ISO 8601: skip the two Siebel patterns (strptime failures cost most of a read)
            return _from_iso(text)
        for pattern in (_SIEBEL_DATETIME, _SIEBEL_DATE):
            try:
                return datetime.strptime(text, pattern).replace(tzinfo=UTC)
            except ValueError:
                continue
        return _from_iso(text)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _from_iso(text: str) -> datetime | str:
    """An ISO 8601 stamp, UTC when it names no zone; the text itself when it is none (pydantic refuses it)."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


OptionalText = Annotated[str | None, BeforeValidator(_empty_to_none)]
SiebelDate = Annotated[date | None, BeforeValidator(parse_siebel_date)]
SiebelDateTime = Annotated[datetime, BeforeValidator(parse_siebel_datetime)]
MemberNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Member(BaseModel):
    """A Siebel loyalty member with the fields the CrowdTwist mapping needs, plus the row id for write-back."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True, str_strip_whitespace=True)

    row_id: str = Field(alias=ROW_ID, min_length=1)
    member_number: MemberNumber = Field(alias=MEMBER_NUMBER)
    status: OptionalText = Field(default=None, alias="Status")
    member_type: OptionalText = Field(default=None, alias="Member Type")
    program_id: OptionalText = Field(default=None, alias="Program Id")
    first_name: OptionalText = Field(default=None, alias="First Name")
    last_name: OptionalText = Field(default=None, alias="Last Name")
    middle_name: OptionalText = Field(default=None, alias="Middle Name")
    email_address: OptionalText = Field(default=None, alias="Email Address")
    date_of_birth: SiebelDate = Field(default=None, alias="Date of Birth")
    postal_code: OptionalText = Field(default=None, alias="Primary Postal Code")
    city: OptionalText = Field(default=None, alias="Primary City")
    country_code: OptionalText = Field(default=None, alias="Primary Country Code")
    gender: OptionalText = Field(default=None, alias="M/F")
    language: OptionalText = Field(default=None, alias="Language")
    updated: SiebelDateTime = Field(alias=UPDATED)
    # Read from the configurable write-back fields by the store adapters, never sent by the intake.
    ct_user_id: int | None = Field(default=None, exclude=True)
    sync_status: str | None = Field(default=None, exclude=True)

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    def to_siebel(self) -> dict[str, Any]:
        """The member as Siebel field names with Siebel-style JSON values (ISO dates)."""
        return self.model_dump(mode="json", by_alias=True)


class SyncStatus(enum.StrEnum):
    """The CT Sync Status values written back to the member (design.md)."""

    SYNCED = "Synced"
    DATA_ERROR = "Data Error"
    CT_FAILURE = "CT Failure"
    OIC_FAILURE = "OIC Failure"


FAILURE_STATUSES = (SyncStatus.DATA_ERROR, SyncStatus.CT_FAILURE, SyncStatus.OIC_FAILURE)


def fit_text(text: str, length: int) -> str:
    """`text` cut to at most `length` characters for a Siebel field, with an ellipsis, never between a letter and
    its combining marks (a cut 'प्रिया' must not end on a bare vowel sign)."""
    if len(text) <= length:
        return text
    end = length - 1
    while end > 0 and unicodedata.category(text[end]) in ("Mn", "Mc", "Me"):
        end -= 1  # text[end] would open the next piece with a mark: cut before its base letter instead
    return text[:end].rstrip() + "…"


class SyncOutcome(BaseModel):
    """What the worker (or the intake) writes back onto the member."""

    model_config = ConfigDict(frozen=True)

    status: SyncStatus
    error: str | None = None
    ct_user_id: int | None = None
    at: datetime


def skip_reason(member: Member, *, program_id: str | None) -> str | None:
    """Why a member is not for CrowdTwist at all (another program, not Individual), or None when it is.

    Pure and shared by the poller (don't publish) and the worker (don't sync). "Inactive and never seen by
    CrowdTwist" is decided by the worker, which alone knows what CrowdTwist has seen.
    """
    if program_id is not None and member.program_id != program_id:
        return f"member of program {member.program_id or '(none)'}, not {program_id}"
    if member.member_type != INDIVIDUAL:
        return f"{member.member_type or 'untyped'} member: only Individual members are synced"
    return None


# The Siebel fields a member is read from, but for the stamp every write moves: what makes a record "the same".
_MEMBER_FIELDS = tuple(
    sorted(info.alias for name, info in Member.model_fields.items() if info.alias and name != "updated")
)


def record_fingerprint(document: dict[str, Any]) -> str:
    """A stable hash of the member fields of a raw record; write-back fields and `Updated` do not count."""
    canonical = json.dumps([str(document.get(name)) for name in _MEMBER_FIELDS], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def member_from_record(document: dict[str, Any], *, ct_user_id_field: str, status_field: str) -> Member:
    """A store record → Member with its write-back fields. A record that is no valid member raises InvalidRecord,
    whose text names the fields (never their values), so the worker can write it back as a Data Error."""
    try:
        member = Member.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors(include_url=False)
        )
        number = document.get(MEMBER_NUMBER)
        raise InvalidRecord(
            f"Siebel record is not a valid member: {problems}",
            row_id=str(document.get(ROW_ID, "")),
            member_number=number.strip() if isinstance(number, str) and number.strip() else None,
            fingerprint=record_fingerprint(document),
            sync_status=document.get(status_field) or None,
        ) from None
    ct_user_id = str(document.get(ct_user_id_field) or "")
    return member.model_copy(
        update={
            "ct_user_id": int(ct_user_id) if ct_user_id.isdigit() else None,
            "sync_status": document.get(status_field) or None,
        }
    )


def member_or_invalid(document: dict[str, Any], read: Callable[[dict[str, Any]], Member]) -> Member | InvalidRecord:
    """For streams of many members: a record that is no valid member comes as its `InvalidRecord`, not raised, so
    one bad record is reported without ending the stream."""
    try:
        return read(document)
    except InvalidRecord as exc:
        return exc

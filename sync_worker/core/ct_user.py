"""CrowdTwist request and response models.

Requests are strict (`UserPayload`: only the fields ct-sync sends). Answers are read leniently: Oracle adds fields
and changes their types without a version change (seen: `"gender_id": "2"`, booleans `true`/`false` where the docs
say 0/1, `""` for an empty field). Only `id` is strict, because it is the one value the sync relies on; every other
field that cannot be read as its type is read as `None`, so a member CrowdTwist already stored is never failed over a
field the worker does not use. Unknown fields are ignored. `scrub_personal_data` keeps a member's own values out of
the error texts CrowdTwist answers.

Pure: pydantic and the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# The fields of a payload that are a member's personal data (the Member Number, codes and flags are not).
PERSONAL_FIELDS = (
    "first_name", "last_name", "middle_name", "email_address", "postal_code", "city_name", "date_of_birth",
    "mobile_phone_number",
)  # fmt: skip


def scrub_personal_data(text: str, body: Mapping[str, Any]) -> str:
    """`text` (an error CrowdTwist answered) with the member's own values from `body` replaced by their field names:
    CrowdTwist may echo "j.smith@example.com is already taken", and error texts reach CT Sync Error, the ledger, logs
    and emails. Whole words only, and no value shorter than three characters (it would shred ordinary words)."""
    for field in PERSONAL_FIELDS:
        value = body.get(field)
        if value is None or len(str(value)) < 3:
            continue
        text = re.sub(rf"(?<!\w){re.escape(str(value))}(?!\w)", f"[{field}]", text, flags=re.IGNORECASE)
    return text


class UserPayload(BaseModel):
    """The user fields ct-sync sends on create or update. `None` means "not sent" (partial bodies)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    third_party_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    email_address: str | None = None
    email_is_verified: int | None = None
    postal_code: str | None = None
    country_code: str | None = None
    city_id: int | None = None
    city_name: str | None = None
    date_of_birth: int | None = None  # Unix epoch seconds
    mobile_phone_number: str | None = None
    lang_pref: str | None = None
    gender_id: int | None = None
    receive_email_updates: int | None = None
    is_active: int | None = None  # update only
    remove_points: int | None = None  # update only

    def body(self) -> dict[str, Any]:
        """The JSON body: only the fields that are set."""
        return self.model_dump(exclude_none=True)

    def for_create(self) -> UserPayload:
        """Create does not accept the update-only fields."""
        return self.model_copy(update={"is_active": None, "remove_points": None})


def _text_or_none(value: object) -> str | None:
    """A string field: numbers become their digits (a numeric third_party_id), empty or odd values None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _number_or_none(value: object) -> int | None:
    """A whole-number field: `"2"` and `2.0` are 2; booleans 0/1; a date string or anything else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


_FLAG_WORDS = {"1": True, "true": True, "0": False, "false": False}


def _flag_or_none(value: object) -> bool | None:
    """A yes/no field: CrowdTwist documents 0/1 and answers true/false; either, or their strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _FLAG_WORDS.get(value.strip().lower())
    return None


LenientText = Annotated[str | None, BeforeValidator(_text_or_none)]
LenientNumber = Annotated[int | None, BeforeValidator(_number_or_none)]
LenientFlag = Annotated[bool | None, BeforeValidator(_flag_or_none)]


class CtUser(BaseModel):
    """A CrowdTwist user as returned by create, update and look-up: `id` strict, everything else lenient."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: Annotated[int, Field(strict=True, gt=0)]
    third_party_id: LenientText = None
    first_name: LenientText = None
    last_name: LenientText = None
    middle_name: LenientText = None
    email_address: LenientText = None
    postal_code: LenientText = None
    country_code: LenientText = None
    city_id: LenientNumber = None
    city_name: LenientText = None
    date_of_birth: LenientNumber = None
    lang_pref: LenientText = None
    gender_id: LenientNumber = None
    is_active: LenientFlag = None
    total_points: LenientNumber = None
    redeemable_points: LenientNumber = None
    date_created: LenientNumber = None
    date_last_updated: LenientNumber = None


class DeletionTicket(BaseModel):
    """The answer to DELETE: deletion is asynchronous (`{"user_id": 564865656, "status": "Queued"}`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: int
    status: str


class DeletionStep(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: str
    date: str | int | None = None


class DeletionStatus(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_id: int
    initiated_by: str | None = None
    status: str  # Deletion_initiated | Deletion_in_progress | Deletion_completed
    status_history: list[DeletionStep] = []

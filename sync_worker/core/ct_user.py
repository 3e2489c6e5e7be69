"""CrowdTwist request and response models. Responses ignore unknown fields: Oracle adds fields without notice.

Pure: pydantic only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

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


class CtUser(BaseModel):
    """A CrowdTwist user as returned by create, update and look-up."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: int
    third_party_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    email_address: str | None = None
    postal_code: str | None = None
    country_code: str | None = None
    city_id: int | None = None
    city_name: str | None = None
    date_of_birth: int | None = None
    lang_pref: str | None = None
    gender_id: int | None = None
    is_active: int | None = None
    total_points: int | None = None
    redeemable_points: int | None = None
    date_created: int | None = None
    date_last_updated: int | None = None


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

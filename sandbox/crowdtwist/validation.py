"""CrowdTwist's documented rules for the fields of a user, as pure functions: which fields a create or an update
accepts, and the first rule a set of fields breaks, worded as CrowdTwist words it.

The name rule is Oracle's `/^[-\\’ \\p{L}0-9- _@\\.,]+$/u` read as "letters of any script": a letter may carry
combining marks (Unicode categories Mn, Mc, Me), as in 'प्रिया' or 'محمّد', which `str.isalpha` alone refuses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

# User Create (docs and Oracle's captured calls): the fields a create may carry.
CREATE_FIELDS = frozenset(
    {
        "first_name", "last_name", "middle_name", "email_address", "email_is_verified", "postal_code",
        "country_code", "city_id", "city_name", "date_of_birth", "third_party_id", "mobile_phone_number", "lang_pref",
        "gender_id", "receive_email_updates", "username", "password", "send_verify_email", "sign_up_channel_id",
        "invite_code",
    }
)  # fmt: skip
UPDATE_FIELDS = CREATE_FIELDS | {"is_active", "remove_points"}
FLAG_FIELDS = frozenset(
    {"email_is_verified", "receive_email_updates", "is_active", "remove_points", "send_verify_email"}
)
_NUMBER_FIELDS = ("date_of_birth", "gender_id", "city_id", "sign_up_channel_id", *sorted(FLAG_FIELDS))
_NAME_FIELDS = (("first_name", "First Name"), ("last_name", "Last Name"), ("middle_name", "Middle Name"))
_NAME_PUNCTUATION = frozenset(" -’_@.,")
_MARKS = frozenset({"Mn", "Mc", "Me"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_US_POSTAL = re.compile(r"^\d{5}(?:-?\d{4})?$")
_CA_POSTAL = re.compile(r"^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$")


def missing_on_create(fields: Mapping[str, Any]) -> str | None:
    """The refusal of a create without a field it requires, or None."""
    for key, label in (("first_name", "First Name"), ("last_name", "Last Name"), ("email_address", "Email")):
        if not fields.get(key):
            return f"{label} is required"
    return None


def refusal(fields: Mapping[str, Any], *, country: str) -> str | None:
    """The first documented rule `fields` break (`country`: the member's ISO-2 code after the change), or None."""
    for key, label in _NAME_FIELDS:
        value = fields.get(key)
        if value is not None and not valid_name(str(value)):
            return f"{label} contains invalid characters"
    email = fields.get("email_address")
    if email is not None and not _EMAIL.match(str(email)):
        return "Email Address is invalid"
    postal_code = fields.get("postal_code")
    if postal_code is not None and country == "US" and not _US_POSTAL.match(str(postal_code)[:10]):
        return "Postal Code is invalid"
    if postal_code is not None and country == "CA" and not _CA_POSTAL.match(str(postal_code)):
        return "Postal Code is invalid"
    if "country_code" in fields and country not in ("US", "CA", "") and fields.get("city_id") is None:
        return "City is required"
    for key in _NUMBER_FIELDS:
        if fields.get(key) is not None and not isinstance(fields[key], int):
            return f"{key} must be a number"
    return None


def valid_name(value: str) -> bool:
    """Letters of any script (each may carry combining marks), digits, and ` -’_@.,`."""
    after_letter = False
    for char in value:
        if unicodedata.category(char) in _MARKS:
            if not after_letter:
                return False  # a mark must sit on a letter
            continue
        after_letter = char.isalpha()
        if not (after_letter or char.isdigit() or char in _NAME_PUNCTUATION):
            return False
    return True

"""Member → CrowdTwist payload, per the fixed mapping of siebel-sync-rules.md, and the pre-check of CrowdTwist's
documented rules, so data CrowdTwist would refuse becomes a `Data Error` without spending a call.

Pure: no I/O. Problem texts name the Siebel field and the rule, never the member's value (they reach the ledger and
alert emails, which must carry no personal data).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from config.settings import DefaultsSettings
from sync_worker.core.ct_user import UserPayload
from sync_worker.core.member import Member

# CrowdTwist's name rule (doc): letters of any script, digits, space, and - ’ _ @ . ,
_NAME_PUNCTUATION = frozenset(" -’_@.,")
_COMBINING_MARKS = frozenset({"Mn", "Mc", "Me"})
# Longest name we send. CrowdTwist does not publish one (guess: its user table's 255-character columns).
MAX_NAME_LENGTH = 255
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit on a forward path
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f.]+$")
_US_POSTAL = re.compile(r"^\d{5}(?:-?\d{4})?$")
_CA_POSTAL = re.compile(r"^[A-Za-z]\d[A-Za-z] ?\d[A-Za-z]\d$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
# Countries whose addresses CrowdTwist checks by postal code; elsewhere it needs a city id (doc).
_POSTAL_CODE_COUNTRIES = frozenset({"US", "CA"})
# Siebel's own language codes, for deployments that send them instead of ISO 639-1.
_SIEBEL_LANGUAGES = {
    "ENU": "en", "ENG": "en", "FRA": "fr", "DEU": "de", "ESN": "es", "ITA": "it", "NLD": "nl",
    "PTB": "pt", "PTG": "pt", "JPN": "ja", "KOR": "ko", "CHS": "zh", "CHT": "zh",
}  # fmt: skip


@dataclass(frozen=True)
class Mapping:
    """The payload a member maps to, and every rule it breaks (empty when CrowdTwist should accept it)."""

    payload: UserPayload
    problems: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def error_text(self) -> str:
        """What the Siebel admin reads in CT Sync Error."""
        return "; ".join(self.problems)

    def fingerprint(self) -> str:
        """A stable hash of the payload: equal fingerprints mean CrowdTwist would receive identical data."""
        canonical = json.dumps(self.payload.body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def map_member(member: Member, defaults: DefaultsSettings) -> Mapping:
    """Map one Siebel member to its CrowdTwist payload and pre-check it against CrowdTwist's documented rules."""
    problems: list[str] = []
    country = _country(member, defaults, problems)
    payload = UserPayload(
        third_party_id=member.member_number,
        first_name=_name("First Name", member.first_name, problems, required=True),
        last_name=_name("Last Name", member.last_name, problems, required=True),
        middle_name=_name("Middle Name", member.middle_name, problems, required=False),
        email_address=_email(member, defaults, problems),
        country_code=country,
        postal_code=_postal_code(member, defaults, country, problems),
        city_name=member.city,
        city_id=_city_id(country, defaults, problems),
        date_of_birth=_epoch_seconds(member),
        lang_pref=_language(member.language),
        gender_id=defaults.gender_ids.get((member.gender or "").upper()),
        is_active=1 if member.is_active else 0,
    )
    return Mapping(payload=payload, problems=problems)


def _name(label: str, value: str | None, problems: list[str], *, required: bool) -> str | None:
    if value is None:
        if required:
            problems.append(f"{label} is empty: CrowdTwist requires it")
        return None
    # An ASCII apostrophe (O'Brien) becomes the typographic one CrowdTwist's rule allows (design decision).
    text = unicodedata.normalize("NFC", value).replace("'", "’")
    if len(text) > MAX_NAME_LENGTH:
        problems.append(f"{label} is longer than {MAX_NAME_LENGTH} characters")
    elif not name_follows_the_rule(text):
        problems.append(
            f"{label} has characters CrowdTwist refuses: only letters, digits, spaces and - ’ _ @ . , are allowed"
        )
    return text


def name_follows_the_rule(text: str) -> bool:
    """CrowdTwist's name rule: letters of any script, digits, space, and - ’ _ @ . , — where a letter may carry
    combining marks (Unicode Mn/Mc/Me), as most Indic and Arabic names do: 'प्रिया', 'محمّد'. A mark that
    follows no letter is refused."""
    after_letter = False
    for char in text:
        if unicodedata.category(char) in _COMBINING_MARKS:
            if not after_letter:
                return False
            continue
        after_letter = char.isalpha()
        if not (after_letter or char.isdigit() or char in _NAME_PUNCTUATION):
            return False
    return True


def _email(member: Member, defaults: DefaultsSettings, problems: list[str]) -> str | None:
    if member.email_address is None:
        if defaults.email_domain is None:
            problems.append("Email Address is empty and no default email domain is set (CTSYNC_DEFAULTS__EMAIL_DOMAIN)")
            return None
        return f"{member.member_number}@{defaults.email_domain}"
    email = member.email_address
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        problems.append("Email Address is not a valid email address")
    return email


def _country(member: Member, defaults: DefaultsSettings, problems: list[str]) -> str | None:
    country = member.country_code or defaults.country_code
    if country is None:
        return None
    if not _COUNTRY.match(country):
        problems.append("Primary Country Code is not a two-letter ISO country code")
    return country.upper()


def _postal_code(member: Member, defaults: DefaultsSettings, country: str | None, problems: list[str]) -> str | None:
    postal_code = member.postal_code
    if postal_code is None and country == "US":
        postal_code = defaults.postal_code
    if postal_code is None:
        return None
    if country == "US" and not _US_POSTAL.match(postal_code):
        problems.append("Primary Postal Code is not a US ZIP code (5 digits, or ZIP+4)")
    elif country == "CA" and not _CA_POSTAL.match(postal_code):
        problems.append("Primary Postal Code is not a Canadian postal code (A1A 1A1)")
    return postal_code


def _city_id(country: str | None, defaults: DefaultsSettings, problems: list[str]) -> int | None:
    if country is None or country in _POSTAL_CODE_COUNTRIES:
        return None
    if defaults.city_id is None:
        problems.append(
            f"Primary Country Code {country} needs a CrowdTwist city id and no default city id is set "
            "(CTSYNC_DEFAULTS__CITY_ID)"
        )
    return defaults.city_id


def _epoch_seconds(member: Member) -> int | None:
    """Date of birth as epoch seconds of that date at 00:00 UTC (design decision)."""
    if member.date_of_birth is None:
        return None
    return int(datetime.combine(member.date_of_birth, time(0, 0), tzinfo=UTC).timestamp())


def _language(language: str | None) -> str | None:
    if language is None:
        return None
    if len(language) == 2 and language.isalpha():
        return language.lower()
    return _SIEBEL_LANGUAGES.get(language.upper())

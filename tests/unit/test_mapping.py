"""Mapping a Siebel member to CrowdTwist, and the pre-check of CrowdTwist's documented rules."""

from __future__ import annotations

import pytest

from config.settings import DefaultsSettings
from sync_worker.core.mapping import map_member
from tests.builders import member

DEFAULTS = DefaultsSettings(email_domain="members.example.com", postal_code="10001", city_id=42, country_code="US")


def test_a_complete_member_maps_field_by_field() -> None:
    mapping = map_member(member(**{"Member Number": "296-2185770", "Middle Name": "Q"}), DEFAULTS)
    assert mapping.accepted
    assert mapping.payload.body() == {
        "third_party_id": "296-2185770",
        "first_name": "Ann",
        "last_name": "Lee",
        "middle_name": "Q",
        "email_address": mapping.payload.email_address,
        "country_code": "US",
        "postal_code": "10001",
        "city_name": "New York",
        "date_of_birth": 312768000,  # 1979-11-30T00:00:00Z
        "lang_pref": "en",
        "gender_id": 2,
        "is_active": 1,
    }


def test_an_inactive_member_is_sent_as_inactive() -> None:
    assert map_member(member(Status="Inactive"), DEFAULTS).payload.is_active == 0


def test_an_empty_email_becomes_member_number_at_the_default_domain() -> None:
    mapping = map_member(member(**{"Member Number": "296-1", "Email Address": ""}), DEFAULTS)
    assert mapping.payload.email_address == "296-1@members.example.com"


def test_an_empty_email_without_a_default_domain_is_a_data_error() -> None:
    mapping = map_member(member(**{"Email Address": ""}), DefaultsSettings())
    assert mapping.error_text.startswith("Email Address is empty and no default email domain is set")


def test_defaults_fill_country_and_us_postal_code() -> None:
    mapping = map_member(member(**{"Primary Country Code": "", "Primary Postal Code": ""}), DEFAULTS)
    assert (mapping.payload.country_code, mapping.payload.postal_code) == ("US", "10001")


def test_a_member_outside_us_and_canada_gets_the_default_city_id() -> None:
    mapping = map_member(member(**{"Primary Country Code": "gb", "Primary Postal Code": "SW1A 1AA"}), DEFAULTS)
    assert mapping.accepted
    assert (mapping.payload.country_code, mapping.payload.city_id) == ("GB", 42)


def test_outside_us_and_canada_without_a_city_id_is_a_data_error() -> None:
    mapping = map_member(member(**{"Primary Country Code": "GB"}), DefaultsSettings(email_domain="x.example"))
    assert "needs a CrowdTwist city id" in mapping.error_text


def test_an_ascii_apostrophe_is_sent_as_the_typographic_one() -> None:
    mapping = map_member(member(**{"Last Name": "O'Brien"}), DEFAULTS)
    assert mapping.accepted
    assert mapping.payload.last_name == "O’Brien"


@pytest.mark.parametrize(
    "name",
    [
        "José",
        "Ørsted",
        "Σωκράτης",
        "李",
        "محمد",
        "שרה",
        "Anne-Marie",
        "St. John",
        "van_der@berg,jr",
        "Louis 14",
        # Letters carrying combining marks (Mn/Mc/Me), a dozen scripts: NFC leaves these marks separate.
        "प्रिया",  # Devanagari: virama and vowel signs
        "محمّد",  # Arabic with shadda
        "তন্ময়",  # Bengali
        "ਗੁਰਪ੍ਰੀਤ",  # Gurmukhi
        "தமிழ்செல்வி",  # Tamil
        "శ్రీనివాస్",  # Telugu
        "ಕೃಷ್ಣ",  # Kannada
        "ശ്രീകുമാർ",  # Malayalam
        "สมชาย",  # Thai
        "ນາງ",  # Lao
        "කමල්",  # Sinhala
        "שְׁלֹמֹה",  # Hebrew with points
        "Nguyễn",  # Vietnamese
        "Zoë".replace("ë", "e\u0308"),  # a decomposed diaeresis: NFC composes it, still a letter
    ],
)
def test_names_in_any_script_pass_the_name_rule(name: str) -> None:
    assert map_member(member(**{"First Name": name}), DEFAULTS).accepted


@pytest.mark.parametrize(
    "name", ["Ann😀", "Ann\x00", "Ann\nLee", "Ann<script>", "Ann (Jr)", "Ann!", 'Ann"', "\u0301Ann", "Ann 1\u0301"]
)
def test_names_with_forbidden_characters_are_a_data_error_without_a_call(name: str) -> None:
    mapping = map_member(member(**{"First Name": name}), DEFAULTS)
    assert mapping.error_text == (
        "First Name has characters CrowdTwist refuses: only letters, digits, spaces and - ’ _ @ . , are allowed"
    )


def test_a_ten_thousand_character_name_is_a_data_error() -> None:
    mapping = map_member(member(**{"Last Name": "A" * 10_000}), DEFAULTS)
    assert mapping.error_text == "Last Name is longer than 255 characters"


def test_empty_last_name_is_a_data_error_naming_the_field() -> None:
    assert map_member(member(**{"Last Name": ""}), DEFAULTS).error_text == "Last Name is empty: CrowdTwist requires it"


@pytest.mark.parametrize("email", ["ann", "ann@", "@example.com", "ann@example", "a b@example.com", "ann@ex\x07.com"])
def test_a_malformed_email_is_a_data_error(email: str) -> None:
    mapping = map_member(member(**{"Email Address": email}), DEFAULTS)
    assert mapping.error_text == "Email Address is not a valid email address"


@pytest.mark.parametrize(
    ("country", "postal_code", "accepted"),
    [
        ("US", "10001", True),
        ("US", "10001-1234", True),
        ("US", "100011234", True),
        ("US", "1000", False),
        ("CA", "K1A 0B1", True),
        ("CA", "K1A0B1", True),
        ("CA", "10001", False),
    ],
)
def test_postal_codes_follow_crowdtwist_country_rules(country: str, postal_code: str, accepted: bool) -> None:
    mapping = map_member(member(**{"Primary Country Code": country, "Primary Postal Code": postal_code}), DEFAULTS)
    assert mapping.accepted is accepted


def test_several_problems_are_all_named() -> None:
    mapping = map_member(member(**{"Last Name": "", "Email Address": "nope"}), DEFAULTS)
    assert mapping.problems == [
        "Last Name is empty: CrowdTwist requires it",
        "Email Address is not a valid email address",
    ]


def test_problem_texts_never_carry_the_members_data() -> None:
    mapping = map_member(member(**{"First Name": "Zebedee😀", "Email Address": "zeb@@x"}), DEFAULTS)
    assert "Zebedee" not in mapping.error_text
    assert "zeb" not in mapping.error_text


@pytest.mark.parametrize(("siebel", "crowdtwist"), [("M", 1), ("F", 2), ("m", 1), ("U", None), ("", None)])
def test_gender_maps_through_the_setting(siebel: str, crowdtwist: int | None) -> None:
    assert map_member(member(**{"M/F": siebel}), DEFAULTS).payload.gender_id == crowdtwist


@pytest.mark.parametrize(("siebel", "crowdtwist"), [("en", "en"), ("ENU", "en"), ("FRA", "fr"), ("xx-yy", None)])
def test_language_maps_to_a_two_letter_code(siebel: str, crowdtwist: str | None) -> None:
    assert map_member(member(Language=siebel), DEFAULTS).payload.lang_pref == crowdtwist


def test_the_fingerprint_changes_with_the_data_and_only_with_it() -> None:
    ann = member(**{"Member Number": "296-9"})
    same = map_member(ann, DEFAULTS).fingerprint()
    assert (
        map_member(ann.model_copy(update={"updated": ann.updated.replace(year=2027)}), DEFAULTS).fingerprint() == same
    )
    assert map_member(ann.model_copy(update={"last_name": "Li"}), DEFAULTS).fingerprint() != same

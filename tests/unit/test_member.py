"""The Siebel member model: aliases, Siebel dates, empty strings."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from sync_worker.core.member import Member, fit_text


def _siebel(**fields: str) -> dict[str, str]:
    base = {"Id": "1-ABC", "Member Number": "296-2185770", "Updated": "2026-11-22T10:00:00Z"}
    return {**base, **fields}


@pytest.mark.parametrize("text", ["1979-11-30", "11/30/1979", "11/30/1979 00:00:00"])
def test_date_of_birth_accepts_iso_and_siebel_formats(text: str) -> None:
    member = Member.model_validate(_siebel(**{"Date of Birth": text}))
    assert member.date_of_birth == date(1979, 11, 30)


@pytest.mark.parametrize(
    "text",
    ["2026-11-22T10:00:00Z", "2026-11-22T10:00:00+00:00", "11/22/2026 10:00:00", "2026-11-22 10:00:00"],
)
def test_updated_accepts_iso_and_siebel_formats_as_utc(text: str) -> None:
    member = Member.model_validate(_siebel(Updated=text))
    assert member.updated == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_empty_strings_are_empty() -> None:
    member = Member.model_validate(_siebel(**{"Email Address": "  ", "Date of Birth": ""}))
    assert member.email_address is None
    assert member.date_of_birth is None


def test_member_number_is_required_and_not_blank() -> None:
    with pytest.raises(ValidationError, match="Member Number"):
        Member.model_validate(_siebel(**{"Member Number": "   "}))


def test_a_nonsense_date_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="Date of Birth"):
        Member.model_validate(_siebel(**{"Date of Birth": "30.11.1979"}))


def test_siebel_field_names_round_trip() -> None:
    member = Member.model_validate(_siebel(**{"First Name": "Ann", "M/F": "F"}))
    document = member.to_siebel()
    assert document["First Name"] == "Ann"
    assert document["M/F"] == "F"
    assert Member.model_validate(document) == member


def test_a_long_error_is_cut_to_the_field_length_with_an_ellipsis() -> None:
    assert fit_text("short", 10) == "short"
    cut = fit_text("Email Address is already taken " * 20, 255)
    assert len(cut) <= 255
    assert cut.endswith("…")


def test_a_cut_never_parts_a_letter_from_its_combining_marks() -> None:
    text = "प्रिया is taken"  # प ् र ि य ा: letters carrying marks
    for length in range(2, len(text)):
        kept = fit_text(text, length).removesuffix("…")
        assert text.startswith(kept)
        assert not unicodedata.category(text[len(kept)]).startswith("M"), (length, kept)

"""The rules of a CrowdTwist segment file, pure (sync_worker.core.segments)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime

import pytest

from sync_worker.core.segments import (
    CountMismatch,
    InvalidSegmentRequest,
    LeftOut,
    SuffixExhausted,
    check_segment_name,
    count_data_lines,
    empty_segment_text,
    file_name,
    left_out_reason,
    needs_enclosing,
    next_suffix,
    parse_expected_count,
    parse_where,
    ready_content,
)
from tests.builders import PROGRAM, member

AT_1005 = datetime(2026, 11, 22, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize("name", ["Gold", "gold_tier-2", "A" * 50, "0"])
def test_a_name_of_letters_digits_underscore_and_dash_is_accepted(name: str) -> None:
    assert check_segment_name(name) == name


@pytest.mark.parametrize("name", ["", "Gold/../x", "Gold.csv", "Gold Tier", "A" * 51, "Café"])
def test_a_name_that_could_be_a_path_or_is_too_long_is_refused(name: str) -> None:
    with pytest.raises(InvalidSegmentRequest, match="1-50 of A-Z a-z 0-9 _ -"):
        check_segment_name(name)


def test_the_file_name_is_name_utc_date_and_four_digit_suffix() -> None:
    assert file_name("Gold", date(2026, 11, 22), 5) == "Gold_20261122_0005.csv"


def test_the_suffix_is_the_run_time_when_nothing_was_delivered_that_day() -> None:
    assert next_suffix(AT_1005, highest_delivered=None) == 1005


def test_a_second_upload_in_the_same_minute_takes_the_next_number() -> None:
    assert next_suffix(AT_1005, highest_delivered=1005) == 1006


def test_the_suffix_never_goes_below_one_already_delivered() -> None:
    assert next_suffix(AT_1005, highest_delivered=1730) == 1731


def test_past_2359_the_run_fails() -> None:
    with pytest.raises(SuffixExhausted, match="2359 was delivered already"):
        next_suffix(datetime(2026, 11, 22, 23, 59, tzinfo=UTC), highest_delivered=2359)


@pytest.mark.parametrize("value", ["296,1", 'say "hi"', "line\nbreak", "carriage\rreturn"])
def test_a_value_that_would_need_enclosing_is_recognised(value: str) -> None:
    assert needs_enclosing(value)


def test_plain_identifiers_need_no_enclosing() -> None:
    assert not needs_enclosing("296-2185770")
    assert not needs_enclosing("564865656")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"Program Id": "1-OTHER"}, LeftOut.OTHER_PROGRAM),
        ({"Member Type": "Household"}, LeftOut.NOT_INDIVIDUAL),
        ({"Status": "Inactive"}, LeftOut.NOT_ACTIVE),
        ({}, LeftOut.NEVER_SYNCED),
    ],
)
def test_who_is_left_out_and_why(fields: dict[str, str], reason: LeftOut) -> None:
    assert left_out_reason(member(**fields), program_id=PROGRAM) is reason


def test_a_member_crowdtwist_knows_belongs_in_the_file() -> None:
    known = member().model_copy(update={"ct_user_id": 564865656})
    assert left_out_reason(known, program_id=PROGRAM) is None


def test_a_member_deleted_on_a_privacy_request_is_left_out_whatever_else_holds() -> None:
    known = member().model_copy(update={"ct_user_id": 564865656})
    assert left_out_reason(known, program_id=PROGRAM, privacy_request="R-7") is LeftOut.PRIVACY_DELETED


def test_where_conditions_are_field_value_pairs_and_a_value_may_hold_an_equals_sign() -> None:
    assert parse_where(["Tier=Gold", "Note=a=b"]) == [("Tier", "Gold"), ("Note", "a=b")]


@pytest.mark.parametrize("condition", ["Tier", "=Gold", "[Tier]=Gold"])
def test_a_where_that_is_not_field_equals_value_is_refused(condition: str) -> None:
    with pytest.raises(InvalidSegmentRequest, match="--where"):
        parse_where([condition])


def test_the_count_ignores_the_header_and_blank_lines_but_counts_duplicates() -> None:
    records = [["Member Number"], ["296-1"], [], ["296-1"], [" "], ["296-404"]]
    assert count_data_lines(records) == 3


def test_a_count_file_must_hold_one_whole_number() -> None:
    assert parse_expected_count(" 42\n", source="count.txt") == 42
    with pytest.raises(CountMismatch, match=r"count\.txt must hold one whole number"):
        parse_expected_count("forty-two", source="count.txt")


def test_the_ready_file_is_none_empty_or_the_row_count() -> None:
    assert ready_content("none", rows=3) is None
    assert ready_content("empty", rows=3) == ""
    assert ready_content("count", rows=3) == "3\n"


@pytest.mark.parametrize(
    ("left_out", "why"),
    [
        ({}, "no member listed in lapsed.csv"),
        ({LeftOut.NOT_ACTIVE: 1}, "the one member listed in lapsed.csv does not belong in it (1 not Active)"),
        (
            {LeftOut.NEVER_SYNCED: 8, LeftOut.UNKNOWN: 4},
            "none of the 12 members listed in lapsed.csv belongs in it (left out: 8 never synced (CrowdTwist does "
            "not know them), 4 unknown to Siebel)",
        ),
    ],
)
def test_an_empty_segment_says_why_and_how_to_send_it_anyway(left_out: dict[LeftOut, int], why: str) -> None:
    text = empty_segment_text("Winback", members="listed in lapsed.csv", left_out=Counter(left_out), allow="--x")
    assert text == f"segment Winback is empty: {why}; nothing sent (--x sends a file with the header only)"

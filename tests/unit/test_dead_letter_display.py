"""A dead letter as operators see it: a stable id, and content shown as text whatever it holds."""

from __future__ import annotations

from sync_worker.core.dead_letters import DeadLetter, letter_id, shown_safely
from sync_worker.core.messages import HEADER_DEAD_AT, HEADER_LETTER_ID, HEADER_REASON


def test_control_characters_in_a_body_are_shown_as_escapes_never_sent_to_the_terminal() -> None:
    body = b'{"member_number": "296-1\x1b[2J\x1b]0;pwned\x07", "name": "\xe2\x80\xaeevil"}\r\n\xff'
    shown = shown_safely(body)
    assert not any(control in shown.text for control in ("\x1b", "\x07", "\r"))
    assert "\\x1b[2J" in shown.text
    assert "\\u202e" in shown.text  # a right-to-left override would reorder what the operator reads
    assert "\\xff" in shown.text  # undecodable bytes stay visible as bytes
    assert shown.text.endswith("\n\\xff")  # line breaks are layout: kept


def test_a_long_body_is_cut_and_says_how_much_was_left_out() -> None:
    shown = shown_safely("x" * 2500, limit=2000)
    assert shown.text == "x" * 2000
    assert str(shown) == "x" * 2000 + "… (500 more characters)"


def test_a_letter_keeps_the_id_the_worker_gave_it() -> None:
    letter = DeadLetter.read({HEADER_LETTER_ID: "a1b2c3d4e5f6", HEADER_REASON: "bad"}, b"{}", content_type=None)
    assert letter.letter_id == "a1b2c3d4e5f6"


def test_a_letter_from_before_ids_existed_gets_the_same_id_at_every_reading_and_differs_from_its_neighbours() -> None:
    headers = {HEADER_REASON: "body is not JSON", HEADER_DEAD_AT: 1_795_000_000.25}
    first = letter_id(headers, b"{not json")
    assert first == letter_id(dict(headers), b"{not json")
    assert first != letter_id({**headers, HEADER_DEAD_AT: 1_795_000_001.0}, b"{not json")
    assert first != letter_id(headers, b"{not json either")

"""The queue message: JSON only, schema-versioned, and a clear reason for anything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sync_worker.core.errors import InvalidEvent
from sync_worker.core.messages import MemberEvent, decode_event, encode_event


def test_an_event_survives_the_round_trip() -> None:
    event = MemberEvent(event_type="enroll", member_number="296-2185770", row_id="1-ABC", source="intake")
    assert decode_event(encode_event(event)) == event


def test_the_wire_format_is_plain_json_with_a_schema_version() -> None:
    document = json.loads(encode_event(MemberEvent(event_type="update", member_number="296-1")))
    assert document["schema_version"] == 1
    assert document["member_number"] == "296-1"
    assert {"event_id", "event_type", "row_id", "updated", "emitted_at", "attempt"} <= document.keys()


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"\x80\x04\x95", "application/x-python-serialize", "content type 'application/x-python-serialize'"),
        (b"{not json", "application/json", "body is not JSON"),
        (b"[1, 2]", "application/json", "body is a JSON list"),
        (
            b'{"schema_version": 2, "event_type": "update"}',
            "application/json",
            "schema_version 2 is not supported",
        ),
        (
            b'{"schema_version": 1, "event_type": "update"}',
            "application/json",
            "member_number: Field required",
        ),
        (
            b'{"schema_version": 1, "event_type": "delete", "member_number": "1"}',
            "application/json",
            "event_type: Input should be 'enroll' or 'update'",
        ),
    ],
)
def test_a_bad_message_is_refused_with_its_reason(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        decode_event(body, content_type=content_type)


def test_a_redelivery_counts_attempts_and_keeps_the_first_failure_time() -> None:
    first = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    later = datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
    event = MemberEvent(event_type="update", member_number="296-1")
    again = event.next_attempt(failed_at=first).next_attempt(failed_at=later)
    assert again.attempt == 3
    assert again.first_failure_at == first
    assert again.event_id == event.event_id

"""The queue message: one JSON document per member event, schema-versioned. Never pickle.

Pure: pydantic only. `encode_event` / `decode_event` are the only way bytes become events and back; a body that
is not a valid version-1 event raises `InvalidEvent` naming what is wrong, which sends it to the dead-letter queue.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_worker.core.errors import InvalidEvent
from sync_worker.core.member import MemberNumber

SCHEMA_VERSION = 1
CONTENT_TYPE = "application/json"
MAX_MESSAGE_BYTES = 64 * 1024  # an event is a few hundred bytes; anything near this is not one
EventType = Literal["enroll", "update"]
EventSource = Literal["intake", "poll", "publish", "resubmit"]

# Headers beside the body, part of the wire format: the consumer writes them, the dead-letter tools read them.
HEADER_NOT_BEFORE = "x-ct-sync-not-before"  # epoch seconds: a delayed retry is not due before then
HEADER_REASON = "x-ct-sync-reason"  # why a message was dead-lettered
HEADER_DEAD_AT = "x-ct-sync-dead-at"  # epoch seconds
HEADER_LETTER_ID = "x-ct-sync-letter-id"  # a dead letter's id, given when it is dead-lettered
HEADER_REDELIVERED = "x-ct-sync-redelivered"  # a parked copy of a message the broker had delivered before
HEADER_PARKED = "x-ct-sync-parked"  # parked while the outage breaker held it: released when the breaker closes


def new_event_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


class MemberEvent(BaseModel):
    """'Member N changed in Siebel.' The worker syncs N's current state; `snapshot` is only a hint."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    event_id: str = Field(default_factory=new_event_id, min_length=1, max_length=64)
    event_type: EventType
    member_number: MemberNumber
    row_id: str | None = None
    updated: datetime | None = Field(default=None, description="the member's Siebel Updated stamp")
    emitted_at: datetime = Field(default_factory=utc_now)
    attempt: int = Field(default=1, ge=1)
    first_failure_at: datetime | None = Field(default=None, description="start of the retry budget")
    siebel_refusals: int = Field(default=0, ge=0, description="times Siebel refused this event's reads or writes")
    source: EventSource = "publish"
    # Queued again by the worker itself after a CrowdTwist outage (source `resubmit`). A field of its own, not a
    # new source: a worker of the previous version reads it (and ignores it) instead of dead-lettering the event.
    automatic: bool = False

    @property
    def history_source(self) -> str:
        """Where the event came from, as a member's history shows it: intake, poll, publish, resubmit, automatic."""
        return "automatic" if self.automatic else self.source

    def next_attempt(self, *, failed_at: datetime) -> MemberEvent:
        """The same event, to be delivered again later, its retry budget running from the first failure."""
        return self.model_copy(
            update={"attempt": self.attempt + 1, "first_failure_at": self.first_failure_at or failed_at}
        )


def encode_event(event: MemberEvent) -> bytes:
    return event.model_dump_json().encode()


def decode_event(body: bytes | str, *, content_type: str | None = CONTENT_TYPE) -> MemberEvent:
    """Bytes → event, or `InvalidEvent` with a reason fit for the dead-letter queue."""
    if content_type not in (None, CONTENT_TYPE):
        raise InvalidEvent(f"content type {content_type!r} is refused: queue messages are {CONTENT_TYPE} only")
    if len(body) > MAX_MESSAGE_BYTES:
        raise InvalidEvent(f"body of {len(body)} bytes is over the {MAX_MESSAGE_BYTES}-byte limit of an event")
    try:
        document: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidEvent(f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidEvent(f"body is a JSON {type(document).__name__}, not an object")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InvalidEvent(f"schema_version {version!r} is not supported (this worker reads {SCHEMA_VERSION})")
    try:
        return MemberEvent.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise InvalidEvent(f"event does not match schema {SCHEMA_VERSION}: {problems}") from None


def member_reference(body: bytes | str) -> str | None:
    """The Member Number a message still names when it is not a valid event (a dead letter), if it names one."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    number = document.get("member_number") if isinstance(document, dict) else None
    return number.strip() if isinstance(number, str) and number.strip() else None


def dead_letter_reason(headers: Mapping[str, Any] | None) -> str:
    """Why a message is in the dead-letter queue: the worker's reason header, or RabbitMQ's own record (`x-death`)
    when the broker put it there (a quorum queue's delivery limit: a worker died on it every time)."""
    headers = headers or {}
    if HEADER_REASON in headers:
        return str(headers[HEADER_REASON])
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        death = deaths[0]
        if death.get("reason") == "delivery_limit":
            return f"RabbitMQ dead-lettered it: delivered {death.get('count', '?')} time(s) without an answer"
        return f"RabbitMQ dead-lettered it: {death.get('reason', 'unknown')}"
    return "unknown"

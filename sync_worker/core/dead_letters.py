"""Dead letters as the core sees them: what one is, the stable id operators name it by, how its content is shown
safely, and the port to the queue that holds them (`sync_worker.queue.dead_letters` implements it).

A dead letter's body and headers came from outside (anything a publisher put on the queue) or from the worker's
own exception texts: they are shown only through `shown_safely`, which escapes every control character (a terminal
escape sequence in a body must not repaint the operator's terminal) and cuts long texts. HTML escaping is the web
page's job (its templates escape everything).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sync_worker.core.messages import (
    HEADER_DEAD_AT,
    HEADER_LETTER_ID,
    HEADER_REASON,
    dead_letter_reason,
    member_reference,
)
from sync_worker.core.ports import EventPublisher

BODY_PREVIEW_CHARS = 2000
HEADER_PREVIEW_CHARS = 500
_KEPT = {"\n", "\t"}  # control characters that are layout, not commands


def new_letter_id() -> str:
    """The id the worker gives a message when it dead-letters it: short enough to type, unique enough to trust."""
    return uuid.uuid4().hex[:12]


def letter_id(headers: Mapping[str, Any], body: bytes) -> str:
    """The letter's id: the one the worker gave it, or (for letters dead-lettered before ids existed) one derived
    from its content, the same at every reading."""
    given = headers.get(HEADER_LETTER_ID)
    if isinstance(given, str) and given:
        return given
    digest = hashlib.sha256(body)
    digest.update(f"\0{headers.get(HEADER_REASON)}\0{headers.get(HEADER_DEAD_AT)}".encode())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class ShownText:
    text: str  # the first `limit` characters, control characters escaped
    cut: int  # characters left out (0: all shown)

    def __str__(self) -> str:
        return self.text + (f"… ({self.cut} more characters)" if self.cut else "")


def shown_safely(value: bytes | str, *, limit: int = BODY_PREVIEW_CHARS) -> ShownText:
    """Text fit to print or render: undecodable bytes as \\xNN, control characters (ESC, CR, NUL, …) as escapes,
    at most `limit` characters."""
    text = value.decode("utf-8", errors="backslashreplace") if isinstance(value, bytes) else value
    escaped = "".join(
        char if char.isprintable() or char in _KEPT else char.encode("unicode_escape").decode("ascii")
        for char in text[:limit]
    )
    return ShownText(escaped, max(0, len(text) - limit))


@dataclass(frozen=True)
class DeadLetter:
    """One message in the dead-letter queue, as read (it stays on the queue)."""

    letter_id: str
    reason: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None
    dead_at: datetime | None = None

    @property
    def member_number(self) -> str | None:
        """The member it still names, if any: replaying it queues that member again."""
        return member_reference(self.body)

    @classmethod
    def read(cls, headers: Mapping[str, Any], body: bytes, *, content_type: str | None) -> DeadLetter:
        """From a message's headers and body, whatever they hold."""
        dead_at = headers.get(HEADER_DEAD_AT)
        return cls(
            letter_id=letter_id(headers, body),
            reason=dead_letter_reason(headers),
            body=body,
            headers={str(name): str(value) for name, value in headers.items()},
            content_type=content_type,
            dead_at=datetime.fromtimestamp(dead_at, UTC) if isinstance(dead_at, int | float) else None,
        )


@dataclass
class LetterResult:
    """What a replay or discard did: letters acted on, letters left (a replay leaves those naming no member), and
    ids asked for that are not on the queue (gone already, or held by another operator at that moment)."""

    done: list[DeadLetter] = field(default_factory=list)
    left: list[DeadLetter] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


class DeadLetters(Protocol):
    """The dead-letter queue. Reading never consumes; replay and discard take letters off by id."""

    def count(self) -> int: ...

    def peek(self, *, limit: int) -> list[DeadLetter]:
        """The oldest `limit` letters; they stay on the queue."""
        ...

    def replay(self, letter_ids: Collection[str] | None, publisher: EventPublisher) -> LetterResult:
        """Each chosen letter (None: every letter) that names a member becomes a fresh event for that member and
        leaves the queue; letters naming no member stay."""
        ...

    def discard(self, letter_ids: Collection[str]) -> LetterResult:
        """The chosen letters leave the queue for good."""
        ...

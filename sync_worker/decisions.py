"""What happens to a message after an attempt: a pure function of (result, attempts, age), tested as a table.

    synced / unchanged / skipped      → ack
    data rejected                     → ack, the member is written "Data Error"
    CrowdTwist transient / 401 / 403  → redeliver later with a growing delay, until the retry budget runs out;
                                        then ack and write "CT Failure"
    Siebel unavailable                → redeliver later; Siebel's outage never spends the member's CrowdTwist budget,
                                        because the outcome could not be written anyway
    invalid event                     → dead-letter queue with the reason

The consumer only carries the decision out (dramatiq's Retries middleware, cosmicpython's handlers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from config.durations import format_duration
from siebel_adapter.member import SyncStatus
from sync_worker.errors import CtSyncError, InvalidEvent, NotAuthorized
from sync_worker.messages import MemberEvent
from sync_worker.ports import AttemptOutcome

FIRST_RETRY_DELAY = timedelta(seconds=15)
MAX_RETRY_DELAY = timedelta(minutes=5)
# Redelivery of a member whose Siebel record cannot be read or written: steady, no budget.
SIEBEL_RETRY_DELAY = timedelta(seconds=30)

Action = Literal["ack", "retry_later", "dead_letter"]


@dataclass(frozen=True)
class Decision:
    action: Action
    ledger_outcome: AttemptOutcome
    write_status: SyncStatus | None = None  # the CT Sync Status to write on the member, if any
    reason: str | None = None
    retry_event: MemberEvent | None = None
    delay: timedelta | None = None


def retry_delay(attempt: int, *, jitter: float) -> timedelta:
    """Delay before delivery `attempt + 1`: 15 s doubling to 5 min, with jitter in [0.5, 1.0) of that."""
    doublings = min(max(attempt - 1, 0), 16)  # bounded: the cap is reached long before
    base = min(FIRST_RETRY_DELAY * (1 << doublings), MAX_RETRY_DELAY)
    return base * (0.5 + max(0.0, min(jitter, 1.0)) / 2)


def decide_failure(
    error: CtSyncError, *, event: MemberEvent, now: datetime, budget: timedelta, jitter: float
) -> Decision:
    """The decision after an attempt that failed with `error` (success paths are plain acks)."""
    if isinstance(error, InvalidEvent):
        return Decision("dead_letter", "Dead-lettered", reason=error.message)
    if error.system == "siebel":
        return Decision(
            "retry_later",
            "Retrying",
            reason=f"Siebel unavailable: {error.message}",
            retry_event=event.next_attempt(failed_at=now),
            delay=SIEBEL_RETRY_DELAY,
        )
    first_failure = event.first_failure_at or now
    elapsed = now - first_failure
    remaining = budget - elapsed
    cause = _cause(error)
    if remaining <= timedelta(0):
        what = "refused our credentials" if isinstance(error, NotAuthorized) else "unreachable"
        summary = f"CrowdTwist {what} after {event.attempt} attempts over {format_duration(elapsed)}: {cause}"
        return Decision("ack", "CT Failure", write_status=SyncStatus.CT_FAILURE, reason=summary)
    # The last redelivery lands at the end of the budget, not past it.
    delay = min(retry_delay(event.attempt, jitter=jitter), remaining)
    return Decision(
        "retry_later",
        "Retrying",
        reason=cause,
        retry_event=event.next_attempt(failed_at=now),
        delay=delay,
    )


def _cause(error: CtSyncError) -> str:
    if error.status_code is not None and str(error.status_code) not in error.message:
        return f"HTTP {error.status_code}: {error.message}"
    return error.message

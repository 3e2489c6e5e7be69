"""What happens to a message after an attempt: a pure function of (result, attempts, age), tested as a table.
Failures are classified by where they happened, so nothing outside CrowdTwist is ever blamed on it.

    synced / unchanged / skipped      → ack
    data rejected                     → ack, the member is written "Data Error"
    CrowdTwist transient / 401 / 403  → redeliver later with a growing delay, until the retry budget runs out;
                                        then ack and write "CT Failure"
    CrowdTwist refuses the request    → ack and write "CT Failure" at once (another 4xx: not the member's data, not
                                        an outage; retrying the same request cannot help)
    Siebel unavailable                → redeliver later; Siebel's outage never spends the member's CrowdTwist budget,
                                        because the outcome could not be written anyway
    the ledger or Siebel unreachable  → redeliver later as the very same event, no budget spent: nothing reached
    before anything went to             CrowdTwist, so the event keeps whatever trust it had in the ledger's "unchanged"
    CrowdTwist                          (a later attempt would resend members CrowdTwist already holds)
    Siebel refuses (a 4xx, a write    → redeliver a bounded number of times (a refusal may be a passing lock), then
    it will not take)                   the dead-letter queue with the reason: never retried for ever
    invalid event                     → dead-letter queue with the reason
    a bug in ct-sync                  → dead-letter queue with the reason (the traceback is in the log)

The consumer only carries the decision out (dramatiq's Retries middleware, cosmicpython's handlers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from config.durations import format_duration
from sync_worker.core.errors import (
    INTERNAL,
    CtSyncError,
    InvalidEvent,
    NotAuthorized,
    PermanentError,
    TransientError,
    says_outage,
)
from sync_worker.core.member import SyncStatus
from sync_worker.core.messages import MemberEvent
from sync_worker.core.ports import AttemptOutcome


@dataclass(frozen=True)
class RetryPolicy:
    """How long a member may keep failing, and how far apart its redeliveries are (settings: CTSYNC_WORKER__RETRY_*)."""

    budget: timedelta = timedelta(minutes=10)
    first_delay: timedelta = timedelta(seconds=15)
    max_delay: timedelta = timedelta(minutes=5)
    siebel_refusals: int = 3  # attempts Siebel may refuse (a 4xx) before the message goes to the dead-letter queue

    @property
    def siebel_delay(self) -> timedelta:
        """Redelivery while Siebel (or the ledger) cannot be read or written: steady, and no budget is spent."""
        return self.first_delay * 2


Action = Literal["ack", "retry_later", "dead_letter"]


@dataclass(frozen=True)
class Decision:
    action: Action
    ledger_outcome: AttemptOutcome
    write_status: SyncStatus | None = None  # the CT Sync Status to write on the member, if any
    reason: str | None = None
    retry_event: MemberEvent | None = None
    delay: timedelta | None = None


@dataclass(frozen=True)
class Handled:
    """What the consumer needs: the decision, plus facts for metrics and alerts."""

    decision: Decision
    member_number: str
    calls: int
    error: CtSyncError | None = None
    # The ledger could not be written though the sync stood (its history, what CrowdTwist now holds): the worker's
    # outage gate hears of it as of any failure of the ledger.
    ledger_error: CtSyncError | None = None
    emitted_at: datetime | None = None  # of the oldest event covered: end-to-end latency runs from there
    events: int = 1
    busy_seconds: float | None = None  # the sync's time but for its waits on the pacer (sizing in-flight syncs)


def retry_delay(attempt: int, *, policy: RetryPolicy, jitter: float) -> timedelta:
    """Delay before delivery `attempt + 1`: the first delay doubling up to the cap, with jitter in [0.5, 1.0) of it."""
    doublings = min(max(attempt - 1, 0), 16)  # bounded: the cap is reached long before
    base = min(policy.first_delay * (1 << doublings), policy.max_delay)
    return base * (0.5 + max(0.0, min(jitter, 1.0)) / 2)


def decide_failure(
    error: CtSyncError, *, event: MemberEvent, now: datetime, policy: RetryPolicy, jitter: float
) -> Decision:
    """The decision after an attempt that failed with `error` (success paths are plain acks)."""
    if isinstance(error, InvalidEvent):
        return Decision("dead_letter", "Dead-lettered", reason=error.message)
    if error.system == INTERNAL:
        return Decision("dead_letter", "Dead-lettered", reason=error.message)
    if error.system == "siebel":
        return _siebel(error, event=event, now=now, policy=policy)
    if error.system == "crowdtwist" and isinstance(error, PermanentError) and not isinstance(error, NotAuthorized):
        reason = f"CrowdTwist refused the request: {_cause(error)}"
        return Decision("ack", "CT Failure", write_status=SyncStatus.CT_FAILURE, reason=reason)
    first_failure = event.first_failure_at or now
    elapsed = now - first_failure
    remaining = policy.budget - elapsed
    cause = _cause(error)
    if remaining <= timedelta(0):
        what = "refused our credentials" if isinstance(error, NotAuthorized) else "unreachable"
        system = "CrowdTwist" if error.system in ("crowdtwist", "") else error.system
        summary = f"{system} {what} after {event.attempt} attempts over {format_duration(elapsed)}: {cause}"
        return Decision("ack", "CT Failure", write_status=SyncStatus.CT_FAILURE, reason=summary)
    # The last redelivery lands at the end of the budget, not past it.
    delay = min(retry_delay(event.attempt, policy=policy, jitter=jitter), remaining)
    return Decision(
        "retry_later",
        "Retrying",
        reason=cause,
        retry_event=event.next_attempt(failed_at=now),
        delay=delay,
    )


BUSY_DELAY = timedelta(seconds=1)


def decide_busy(event: MemberEvent) -> Decision:
    """Another worker process holds the member's lock (it is syncing it): try again shortly. Not a failure: no budget
    is spent; the next delivery is a later attempt, so it trusts nothing the ledger says."""
    retry = event.model_copy(update={"attempt": event.attempt + 1})
    reason = "another worker is syncing this member"
    return Decision("retry_later", "Retrying", reason=reason, retry_event=retry, delay=BUSY_DELAY)


# Our own infrastructure, and Siebel: systems whose outage is nobody's fault and pauses the worker, not CrowdTwist.
INFRASTRUCTURE = frozenset({"ledger", "siebel"})


def is_unavailable(error: CtSyncError | None) -> bool:
    """The ledger or Siebel could not be reached (an outage, not a refusal)."""
    return isinstance(error, TransientError) and error.system in INFRASTRUCTURE


def decide_unavailable(error: CtSyncError, *, event: MemberEvent, policy: RetryPolicy, trusted: bool) -> Decision:
    """The ledger or Siebel could not be reached before anything was sent to CrowdTwist: try again later, no budget
    spent. `trusted`: this delivery was one the ledger may be trusted on (not a redelivery of unknown fate), so the
    retry is the very same event and keeps that trust; a member CrowdTwist already holds still costs no call.
    Otherwise the retry is a later attempt, which trusts nothing, as any redelivery."""
    retry = event if trusted else event.model_copy(update={"attempt": event.attempt + 1})
    reason = error.message if error.system in error.message.lower() else f"{error.system} unavailable: {error.message}"
    return Decision("retry_later", "Retrying", reason=reason, retry_event=retry, delay=policy.siebel_delay)


def _siebel(error: CtSyncError, *, event: MemberEvent, now: datetime, policy: RetryPolicy) -> Decision:
    retry = event.next_attempt(failed_at=now)
    if isinstance(error, TransientError):
        # The adapter's words say "Siebel unreachable at …" already: not "Siebel unavailable: Siebel unreachable".
        reason = error.message if says_outage(error.message) else f"Siebel unavailable: {error.message}"
    else:
        # Counted apart from the attempts: a member whose CrowdTwist outage spent nine attempts still gets its tries.
        refusals = event.siebel_refusals + 1
        if refusals >= policy.siebel_refusals:
            return Decision(
                "dead_letter", "Dead-lettered", reason=f"Siebel refused it {refusals} times: {_cause(error)}"
            )
        reason = f"Siebel refused: {_cause(error)}"
        retry = retry.model_copy(update={"siebel_refusals": refusals})
    return Decision("retry_later", "Retrying", reason=reason, retry_event=retry, delay=policy.siebel_delay)


def _cause(error: CtSyncError) -> str:
    if error.status_code is not None and str(error.status_code) not in error.message:
        return f"HTTP {error.status_code}: {error.message}"
    return error.message

"""The service layer: handle the queued events of one member — sync once, decide, write failures, record history.

Runs on a worker thread; returns a `Decision` that the consumer carries out on the connection's own thread.
Several events for one member that are waiting together are coalesced into one sync (state, not deltas).

When the ledger or Siebel cannot be reached before anything went to CrowdTwist (the member's lock, its known state,
its Siebel record), the member is retried later as the very same event: its trust in the ledger is intact, so a
member CrowdTwist already holds costs no call once the outage is over. The outage is the worker's news, said once
by its outage gate (`worker.outages`), not once per member. History rows the ledger cannot take are held (a bounded
number, oldest dropped first) and written, in order, with the next rows it takes.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import structlog

from sync_worker.core.decisions import (
    Decision,
    Handled,
    RetryPolicy,
    decide_busy,
    decide_failure,
    decide_unavailable,
    is_unavailable,
)
from sync_worker.core.errors import INTERNAL, CtSyncError
from sync_worker.core.member import SyncStatus
from sync_worker.core.messages import MemberEvent
from sync_worker.core.metering import count_calls
from sync_worker.core.ports import AttemptOutcome, AttemptRecord, Clock, Ledger, MemberLocks
from sync_worker.core.sync import CallCount, MemberSync, SyncResult

log = structlog.get_logger("ct_sync.worker")
# History rows held while the ledger is down: about an hour of a paused worker's probes and in-flight syncs many
# times over; past it the oldest go (the members' outcomes are in Siebel whatever happens to their history).
MAX_HELD_ROWS = 10_000

_RESULT_OUTCOMES: dict[str, AttemptOutcome] = {
    "synced": "Synced",
    "unchanged": "Unchanged",
    "skipped": "Skipped",
    "rejected": "Data Error",
}


def merge(events: Sequence[MemberEvent]) -> MemberEvent:
    """One event standing for several of one member: enroll wins, the oldest failure starts the budget."""
    newest = max(events, key=lambda event: event.emitted_at)
    failures = [event.first_failure_at for event in events if event.first_failure_at is not None]
    return newest.model_copy(
        update={
            "event_type": "enroll" if any(event.event_type == "enroll" for event in events) else "update",
            "attempt": max(event.attempt for event in events),
            "first_failure_at": min(failures) if failures else None,
            "source": "resubmit" if any(event.source == "resubmit" for event in events) else newest.source,
        }
    )


class EventHandler:
    def __init__(
        self,
        *,
        sync: MemberSync,
        ledger: Ledger,
        clock: Clock,
        retry: RetryPolicy,
        locks: MemberLocks,
        lock_wait: float = 2.0,
        jitter: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sync = sync
        self._ledger = ledger
        self._clock = clock
        self._retry = retry
        self._locks = locks
        self._lock_wait = lock_wait  # seconds to wait for another process's sync of the member before retrying later
        self._jitter = jitter
        self._sleep = sleep
        self._held: list[AttemptRecord] = []  # history rows the ledger could not take yet, oldest first
        self._held_lock = threading.Lock()
        self._dropping = False  # rows were dropped in this outage (said once)

    def dead_lettered(self, member_number: str, reason: str) -> None:
        """A dead-lettered message that still names a member: tell the Siebel admin on the member (OIC Failure)."""
        try:
            self._sync.write_failure(
                member_number, status=SyncStatus.OIC_FAILURE, error=f"event could not be processed: {reason}"[:500]
            )
        except CtSyncError as exc:
            log.warning("oic_failure_not_written", error=exc.message)

    def handle(self, events: Sequence[MemberEvent], *, redelivered: bool = False) -> Handled:
        """Sync the member the events name, once, and decide what becomes of the messages.

        `redelivered`: the broker delivered one of these messages before (a worker died holding it): whatever that
        delivery did is unknown, so this one trusts nothing the ledger says."""
        event = merge(events)
        structlog.contextvars.bind_contextvars(member_number=event.member_number, event_id=event.event_id)
        started = self._clock.monotonic()
        error: CtSyncError | None = None
        ct_user_id: int | None = None
        logical_calls = 0
        try:
            locked = self._lock(event.member_number)
        except CtSyncError as exc:  # the locks live in the ledger's database, and it cannot be reached
            decision = decide_unavailable(exc, event=event, policy=self._retry, trusted=not redelivered)
            ledger_error = self._record(events, decision, calls=0, ct_user_id=None, duration_ms=0.0)
            log.debug("member_handled", outcome=decision.ledger_outcome, reason=decision.reason, attempt=event.attempt)
            structlog.contextvars.unbind_contextvars("member_number", "event_id")
            return Handled(decision, event.member_number, 0, exc, events=len(events), ledger_error=ledger_error)
        if not locked:
            decision = decide_busy(event)
            ledger_error = self._record(events, decision, calls=0, ct_user_id=None, duration_ms=0.0)
            structlog.contextvars.unbind_contextvars("member_number", "event_id")
            return Handled(decision, event.member_number, 0, events=len(events), ledger_error=ledger_error)
        begun = CallCount()
        with count_calls() as meter, self._locked(event.member_number):
            try:
                result = self._sync.sync(
                    event.member_number,
                    enroll=event.event_type == "enroll",
                    fresh=event.attempt == 1 and not redelivered,
                    force=event.source == "resubmit",
                    calls=begun,
                )
                logical_calls, ct_user_id = result.calls, result.ct_user_id
                decision = self._success(result)
            except CtSyncError as exc:
                error = exc
                sent = begun.count > 0 or meter.calls > 0
                decision = self._failure(exc, event, sent=sent, redelivered=redelivered)
        # HTTP requests (retries included) when the real client counted them; the sync's own count otherwise.
        calls = meter.calls or logical_calls
        duration_ms = (self._clock.monotonic() - started) * 1000
        ledger_error = self._record(events, decision, calls=calls, ct_user_id=ct_user_id, duration_ms=duration_ms)
        # A sync that went well is a line at DEBUG: the minute's summary tells the run's progress. A failure is news,
        # but not an outage's retries: the outage gate says it once for every member.
        routine = decision.ledger_outcome in ("Synced", "Unchanged", "Skipped") or is_unavailable(error)
        (log.debug if routine else log.info)(
            "member_handled",
            outcome=decision.ledger_outcome,
            action=decision.action,
            reason=decision.reason,
            attempt=event.attempt,
            events=len(events),
            ct_calls=calls,
            duration_ms=round(duration_ms, 1),
        )
        structlog.contextvars.unbind_contextvars("member_number", "event_id")
        emitted = min(item.emitted_at for item in events)
        busy = max(duration_ms / 1000 - meter.paced_seconds, 0.0)
        return Handled(
            decision,
            event.member_number,
            calls,
            error,
            emitted_at=emitted,
            events=len(events),
            busy_seconds=busy,
            ledger_error=ledger_error,
        )

    def _lock(self, member_number: str) -> bool:
        """The member's lock across processes, waiting a little (with backoff) for another process's sync to end.
        Raises TransientError when the locks cannot be reached (the ledger's database is down)."""
        deadline = self._clock.monotonic() + self._lock_wait
        pause = 0.01
        while True:
            if self._locks.try_lock(member_number):
                return True
            if self._clock.monotonic() + pause > deadline:
                return False
            self._sleep(pause)
            pause = min(pause * 2, 0.25)

    @contextmanager
    def _locked(self, member_number: str) -> Iterator[None]:
        try:
            yield
        finally:
            self._locks.unlock(member_number)

    def crashed(self, events: Sequence[MemberEvent], exc: Exception) -> Handled:
        """A bug, not an outage and not the member's fault: the dead-letter queue, where it waits for a fix and a
        replay. The reason says where it happened (the traceback is in the log); never the exception's text, which
        may hold a member's data. Never raises: it is the consumer's last word on the message."""
        event = merge(events)
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        error = CtSyncError(f"internal error: {type(exc).__name__}{where}", system=INTERNAL)
        decision = decide_failure(error, event=event, now=self._clock.now(), policy=self._retry, jitter=0.0)
        self._record(events, decision, calls=0, ct_user_id=None, duration_ms=0.0)
        return Handled(decision, event.member_number, 0, error, events=len(events))

    def _success(self, result: SyncResult) -> Decision:
        outcome = _RESULT_OUTCOMES[result.kind]
        status = {"synced": SyncStatus.SYNCED, "rejected": SyncStatus.DATA_ERROR}.get(result.kind)
        return Decision("ack", outcome, write_status=status, reason=result.reason)

    def _failure(self, error: CtSyncError, event: MemberEvent, *, sent: bool, redelivered: bool) -> Decision:
        if is_unavailable(error) and not sent:
            # Nothing reached CrowdTwist: the same event again later, with the trust it had.
            return decide_unavailable(error, event=event, policy=self._retry, trusted=not redelivered)
        decision = decide_failure(error, event=event, now=self._clock.now(), policy=self._retry, jitter=self._jitter())
        if decision.write_status is None:
            return decision
        try:
            self._sync.write_failure(event.member_number, status=decision.write_status, error=decision.reason or "")
        except CtSyncError as write_error:
            # The outcome could not be written: keep the message (Siebel down), or, when Siebel refuses the write
            # for good, let its refusals run their bounded course to the dead-letter queue; never lose the outcome.
            return decide_failure(
                write_error, event=event, now=self._clock.now(), policy=self._retry, jitter=self._jitter()
            )
        return decision

    def _record(
        self,
        events: Sequence[MemberEvent],
        decision: Decision,
        *,
        calls: int,
        ct_user_id: int | None,
        duration_ms: float,
    ) -> CtSyncError | None:
        """Write the attempt's history; the ledger's failure, if it could not (the rows are held)."""
        at = self._clock.now()
        rows = [
            AttemptRecord(
                event_id=event.event_id,
                member_number=event.member_number,
                event_type=event.event_type,
                outcome=decision.ledger_outcome,
                at=at,
                attempt=event.attempt,
                error=decision.reason if decision.ledger_outcome != "Synced" else None,
                ct_user_id=ct_user_id,
                ct_calls=calls if index == 0 else 0,  # a coalesced sync's calls are counted once
                duration_ms=duration_ms,
                source=event.history_source,
            )
            for index, event in enumerate(events)
        ]
        if not self._held:
            try:
                self._ledger.record(rows)
            except CtSyncError as exc:
                # History is precious but not worth a member: held for later, and the sync stands.
                self._hold(rows)
                return exc
            return None
        # Rows are held: they go first, and the others wait, so each member's rows keep their order in the ledger.
        with self._held_lock:
            batch = self._held + rows
            try:
                self._ledger.record(batch)
            except CtSyncError as exc:
                self._held = batch
                self._trim()
                return exc
            self._held, self._dropping = [], False  # emptied only now: until then, others wait their turn
        log.info("history_written_after_outage", rows=len(batch) - len(rows))
        return None

    def _hold(self, rows: list[AttemptRecord]) -> None:
        with self._held_lock:
            self._held.extend(rows)
            self._trim()
        log.debug("history_held", rows=len(rows))

    def _trim(self) -> None:
        """Called with the lock held: past the bound, the oldest rows go (said once an outage)."""
        overflow = len(self._held) - MAX_HELD_ROWS
        if overflow > 0:
            del self._held[:overflow]
            if not self._dropping:
                self._dropping = True
                log.error("history_dropped", rows=overflow, held=MAX_HELD_ROWS)

    def flush_history(self) -> None:
        """At shutdown: one last try to write the rows held; those still unwritten are counted in the log."""
        with self._held_lock:
            held, self._held = self._held, []
        if not held:
            return
        try:
            self._ledger.record(held)
        except CtSyncError as exc:
            log.error("history_lost", rows=len(held), error=exc.message)

"""The worker's watch around the consumer: the outage breaker gates new syncs, every outcome feeds metrics, the
alert policy and the minute's summary line, and a recovery resubmits the members the outage failed. (The
dispatcher asks the policy for due alerts on its own thread: a digest reads the ledger as it goes out.)

While the breaker is open, CrowdTwist is probed when the probe time comes whether or not a member is waiting (the
queue may be empty, or its messages parked for a while): one look-up of a member no program uses, on a thread of
its own, its answer acted on here. Each probe scheduled is logged (`crowdtwist_probe_scheduled`) and told to the
ledger, so `ct-sync status` and the console say when syncing paused and when CrowdTwist is looked at next.

A pause for refused credentials is remembered in the ledger database: the fix (a new key) comes with a restart,
and the process that paused is gone by then. A worker that starts while one is remembered probes CrowdTwist once;
when CrowdTwist accepts the key, one "resumed" email goes out and the members the pause failed are queued again.

All hooks run on the consumer's connection thread except `dead_lettered` (a pool thread); they stay cheap, and the
slow parts (sending mail, resubmitting, probing) run elsewhere.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

import structlog

from sync_worker.alerts.dispatcher import AlertDispatcher
from sync_worker.alerts.policy import AlertPolicy
from sync_worker.core.decisions import Handled
from sync_worker.core.errors import CtSyncError, NotAuthorized, TransientError
from sync_worker.core.metering import count_calls
from sync_worker.metrics import Metrics
from sync_worker.worker.breaker import Breaker, Pause, Transition
from sync_worker.worker.sizing import InFlightSizer
from sync_worker.worker.summary import MinuteSummary

log = structlog.get_logger("ct_sync.supervisor")
_FINAL = frozenset({"Synced", "Data Error", "CT Failure", "OIC Failure"})
_TICK_EVERY = 1.0
_SUMMARY_EVERY = 60.0
_HOUSEKEEPING_EVERY = 3600.0  # ledger retention, hourly
CREDENTIALS_REFUSED = "credentials"  # the pause remembered across restarts
T = TypeVar("T")


class Pauses(Protocol):
    """Where a pause is remembered across restarts (the ledger database, shared by every worker)."""

    def pause_began(self, reason: str, *, since: datetime, cause: str) -> None: ...

    def pause_since(self, reason: str) -> datetime | None: ...

    def end_pause(self, reason: str) -> bool:
        """True for the one caller that ended it."""
        ...


class Supervisor:
    def __init__(
        self,
        *,
        breaker: Breaker,
        policy: AlertPolicy,
        dispatcher: AlertDispatcher,
        metrics: Metrics,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float],
        resubmit_failed_since: Callable[[datetime], int] | None,
        housekeeping: Callable[[], None] = lambda: None,
        sizer: InFlightSizer | None = None,
        on_transition: Callable[[Transition], None] = lambda transition: None,
        on_probe_scheduled: Callable[[Pause], None] = lambda pause: None,
        summary: MinuteSummary | None = None,
        pauses: Pauses | None = None,
        also_paused: Callable[[], bool] = lambda: False,
        spawn: Callable[[Callable[[], None]], None] = lambda job: _spawn(job, name="ct-sync-probe"),
    ) -> None:
        self.breaker = breaker
        self._policy = policy
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._resubmit_failed_since = resubmit_failed_since
        self._ticked = float("-inf")
        self._housekeeping = housekeeping
        self.sizer = sizer
        self._housekept = float("-inf")
        self._on_transition = on_transition  # told of every breaker transition (the ledger keeps them)
        self._on_probe_scheduled = on_probe_scheduled  # and of every probe scheduled (status and console show it)
        self._announced: datetime | None = None  # the probe time last logged and told
        self._probe: Callable[[], object] | None = None
        self._spawn = spawn  # runs a probe off the connection thread (tests run it in place)
        self._probe_results: queue.SimpleQueue[tuple[CtSyncError | None, int]] = queue.SimpleQueue()
        self.summary = summary or MinuteSummary(budget_per_minute=0)
        self._summarised = monotonic()
        self._pauses = pauses
        self._paused_since: datetime | None = None  # an earlier process's credentials pause, not yet seen to end
        self._also_paused = also_paused  # syncing paused by another gate (the ledger or Siebel down): the summary says

    def started(self, probe: Callable[[], object]) -> None:
        """At start: `probe` is how CrowdTwist is probed while the breaker is open. If a pause for refused
        credentials is remembered, probe once now: an answer means the key works again; a refusal opens the breaker
        (and alerts) as any sync's would."""
        self._probe = probe
        since = self._remembered(lambda pauses: pauses.pause_since(CREDENTIALS_REFUSED))
        if since is None:
            return
        self._paused_since = since
        error, calls = _probed(probe)
        self._record(error, calls=calls)
        if error is None:
            self._credentials_work()

    def may_start(self) -> bool:
        allowed = self.breaker.allow()
        self._metrics.set_breaker(self.breaker.state)
        return allowed

    def handled(self, handled: Handled) -> None:
        decision = handled.decision
        if self.sizer is not None and handled.busy_seconds is not None:
            self.sizer.observe(handled.busy_seconds)
        self._metrics.events_consumed.inc(handled.events)
        self._metrics.outcomes.labels(outcome=decision.ledger_outcome).inc()
        if decision.action == "retry_later":
            self._metrics.retries.inc()
        if decision.action == "ack" and handled.emitted_at is not None:
            self._metrics.latency.observe(max(0.0, (self._clock() - handled.emitted_at).total_seconds()))
        if decision.ledger_outcome in _FINAL:
            self._policy.member_outcome(handled.member_number, decision.ledger_outcome, decision.reason)
        self.summary.outcome(decision.ledger_outcome, calls=handled.calls)
        self._record(handled.error, calls=handled.calls)
        if self._paused_since is not None and handled.error is None and handled.calls > 0:
            self._credentials_work()

    def _record(self, error: CtSyncError | None, *, calls: int) -> None:
        transition = self.breaker.record(error, calls=calls)
        self._metrics.set_breaker(self.breaker.state)
        if transition is not None:
            self._transition(transition)
        self._announce_probe()

    def _announce_probe(self) -> None:
        """A new probe time (the breaker opened, or a probe failed): in the log, and to the ledger."""
        pause = self.breaker.pause
        if pause is None or pause.next_probe_at == self._announced:
            return
        self._announced = pause.next_probe_at
        log.info(
            "crowdtwist_probe_scheduled",
            next_probe_at=pause.next_probe_at.isoformat(),
            in_s=round((pause.next_probe_at - self._clock()).total_seconds(), 1),
            paused_since=pause.since.isoformat(),
            cause=pause.cause,
        )
        self._on_probe_scheduled(pause)

    def _start_probe(self) -> None:
        """The probe time has come and no member sync took it: probe CrowdTwist on a thread of its own."""
        probe = self._probe
        if probe is None or not self.breaker.claim_probe():
            return
        self._metrics.set_breaker(self.breaker.state)
        self._spawn(lambda: self._probe_results.put(_probed(probe)))

    def _take_probe_results(self) -> None:
        while True:
            try:
                error, calls = self._probe_results.get_nowait()
            except queue.Empty:
                return
            self.summary.probed(calls=calls)
            self._record(error, calls=calls)
            if self._paused_since is not None and error is None:
                self._credentials_work()

    def dead_lettered(self, member_number: str | None, reason: str) -> None:
        self._metrics.dead_lettered.inc()
        self._policy.member_outcome(member_number or "(no member number)", "Dead-lettered", reason)

    def tick(self) -> None:
        # Every loop of the consumer (cheap when nothing is due): a probe started when due, its answer acted on.
        self._start_probe()
        self._take_probe_results()
        now = self._monotonic()
        if now - self._ticked < _TICK_EVERY:
            return
        self._ticked = now
        if self.sizer is not None:
            self._metrics.in_flight_limit.set(self.sizer.limit)
            if (pace := self.sizer.calls_per_second) is not None:
                self._metrics.crowdtwist_pace.set(pace * 60)
        if now - self._summarised >= _SUMMARY_EVERY:
            self._summarise(now)
        if now - self._housekept >= _HOUSEKEEPING_EVERY:
            self._housekept = now
            threading.Thread(target=self._housekeeping, name="ct-sync-housekeeping", daemon=True).start()

    def flush(self) -> None:
        """At shutdown: every alert still held, digests included, goes out now (composed as it goes); the last
        summary."""
        self._dispatcher.flush()
        self._summarise(self._monotonic())

    def _summarise(self, now: float) -> None:
        seconds, self._summarised = now - self._summarised, now
        pace = self.sizer.calls_per_second if self.sizer is not None else None
        fields = self.summary.take(
            seconds=seconds,
            pause=self.breaker.pause,
            also_paused=self._also_paused(),
            pace_per_minute=None if pace is None else pace * 60,
        )
        if self.sizer is not None:
            fields["in_flight_limit"] = self.sizer.limit  # syncs allowed at once: the Little's-law figure in force
        log.info("worker_summary", seconds=round(seconds), **fields)

    def _transition(self, transition: Transition) -> None:
        log.warning("breaker_" + transition.kind, cause=transition.cause, credentials=transition.credentials)
        self._on_transition(transition)
        since = transition.outage_started
        if transition.kind == "opened":
            self._policy.outage_began(since=since, cause=transition.cause, credentials=transition.credentials)
            if transition.credentials:
                cause = transition.cause
                self._remembered(lambda pauses: pauses.pause_began(CREDENTIALS_REFUSED, since=since, cause=cause))
            return
        self._policy.outage_ended(since=since)
        if transition.credentials:  # this process's own credentials pause: the recovery alert says it ended
            self._paused_since = None
            self._remembered(lambda pauses: pauses.end_pause(CREDENTIALS_REFUSED))
        self._resubmit_since(since)

    def _credentials_work(self) -> None:
        """CrowdTwist accepted the key after a pause an earlier process remembered: of all workers, the one that
        ends the remembered pause tells the admins and queues the members the pause failed."""
        since, self._paused_since = self._paused_since, None
        if since is not None and self._remembered(lambda pauses: pauses.end_pause(CREDENTIALS_REFUSED)):
            log.info("credentials_accepted_again", paused_since=since.isoformat())
            self._policy.credentials_accepted(since=since)
            self._resubmit_since(since)

    def _remembered(self, call: Callable[[Pauses], T]) -> T | None:
        """A call to the pause record; its outage costs a "resumed" email at worst, never a sync."""
        if self._pauses is None:
            return None
        try:
            return call(self._pauses)
        except CtSyncError as exc:
            log.warning("pause_record_unavailable", error=exc.message)
            return None

    def _resubmit_since(self, since: datetime) -> None:
        if self._resubmit_failed_since is not None:
            resubmit = self._resubmit_failed_since
            threading.Thread(
                target=self._resubmit, args=(resubmit, since), name="ct-sync-resubmit", daemon=True
            ).start()

    def _resubmit(self, resubmit: Callable[[datetime], int], since: datetime) -> None:
        try:
            count = resubmit(since)
        except Exception:  # a background thread's top: log, the admin can still resubmit by hand
            log.exception("auto_resubmit_failed")
            return
        log.info("auto_resubmitted", members=count)
        self._policy.recovery_resubmitted(count)


def _probed(probe: Callable[[], object]) -> tuple[CtSyncError | None, int]:
    """Call `probe`: what it says of CrowdTwist (None: it answered), and the HTTP requests it spent."""
    error: CtSyncError | None = None
    with count_calls() as meter:
        try:
            probe()
        except (TransientError, NotAuthorized) as exc:
            error = exc
        except CtSyncError:
            pass  # a refusal of the look-up itself is an answer: CrowdTwist is there
        except Exception as exc:  # a probe thread's top: a failed probe keeps the breaker open, never kills the worker
            log.exception("crowdtwist_probe_crashed")
            error = TransientError(f"probe failed: {type(exc).__name__}", system="crowdtwist")
    if error is not None and error.system != "crowdtwist":
        # Counted as CrowdTwist's: a probe that told the breaker nothing would be followed by the next at once.
        error = TransientError(f"probe failed: {error.message}", system="crowdtwist")
    return error, max(meter.calls, 1)


def _spawn(job: Callable[[], None], *, name: str) -> None:
    threading.Thread(target=job, name=name, daemon=True).start()

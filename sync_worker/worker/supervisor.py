"""The worker's watch around the consumer: the outage breaker gates new syncs, every outcome feeds metrics and the
alert policy, due alerts go to the dispatcher, and a recovery resubmits the members the outage failed.

All hooks run on the consumer's connection thread except `dead_lettered` (a pool thread); they stay cheap, and the
slow parts (sending mail, resubmitting) run elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

import structlog

from sync_worker.alerts.dispatcher import AlertDispatcher
from sync_worker.alerts.policy import AlertPolicy
from sync_worker.metrics import Metrics
from sync_worker.worker.breaker import Breaker, Transition
from sync_worker.worker.handler import Handled
from sync_worker.worker.sizing import InFlightSizer

log = structlog.get_logger("ct_sync.supervisor")
_FINAL = frozenset({"Synced", "Data Error", "CT Failure", "OIC Failure"})
_TICK_EVERY = 1.0
_HOUSEKEEPING_EVERY = 3600.0  # ledger retention, hourly


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
        transition = self.breaker.record(handled.error, calls=handled.calls)
        self._metrics.set_breaker(self.breaker.state)
        if transition is not None:
            self._transition(transition)

    def dead_lettered(self, member_number: str | None, reason: str) -> None:
        self._metrics.dead_lettered.inc()
        self._policy.member_outcome(member_number or "(no member number)", "Dead-lettered", reason)

    def tick(self) -> None:
        now = self._monotonic()
        if now - self._ticked < _TICK_EVERY:
            return
        self._ticked = now
        if self.sizer is not None:
            self._metrics.in_flight_limit.set(self.sizer.limit)
        for alert in self._policy.due():
            self._dispatcher.submit(alert)
        if now - self._housekept >= _HOUSEKEEPING_EVERY:
            self._housekept = now
            threading.Thread(target=self._housekeeping, name="ct-sync-housekeeping", daemon=True).start()

    def flush(self) -> None:
        """At shutdown: every alert still held, digests included, goes to the dispatcher now."""
        for alert in self._policy.due(flush=True):
            self._dispatcher.submit(alert)

    def _transition(self, transition: Transition) -> None:
        log.warning("breaker_" + transition.kind, cause=transition.cause, credentials=transition.credentials)
        self._on_transition(transition)
        since = transition.outage_started
        if transition.kind == "opened":
            self._policy.outage_began(since=since, cause=transition.cause, credentials=transition.credentials)
            return
        self._policy.outage_ended(since=since)
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

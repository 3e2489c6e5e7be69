"""The outage gate for the systems a sync needs besides CrowdTwist — the ledger database and Siebel: while one is
down no sync starts; it is probed, one probe at a time, with backoff; the log says so once when it goes and once
when it returns, and one email goes out if it lasts (with one more when it ends).

    up ──(`threshold` syncs in a row failed on the system)──▶ down: `allow()` says no; first probe after `first_backoff`
    down ──(the probe fails)──▶ down, the next probe twice as far off, up to `max_backoff`
    down ──(the probe answers)──▶ up: syncs start again
    down for `alert_after` ──▶ one alert; then, when it ends, one "available again" alert

The CrowdTwist outage breaker (`worker.breaker`) is the model. The difference: a probe here is the system's own cheap
read (a ledger read; a Siebel look-up of a Member Number no program uses), not a member's sync, so no member waits to
serve as a probe and a probe costs CrowdTwist nothing. Syncs in flight when the system went finish as they may; the
handler retries their members as the very same events, so the outage costs no call once it is over.

The gate hears of each sync on the pool thread that ran it (`Reporting`), before that thread takes the next member:
so an outage shuts the gate after `threshold` syncs, not after a burst of them failing while the results wait for
the connection thread. `tick` and `allow` are called on the consumer's connection thread (`allow` from pool threads
too). Probes run on a thread of their own, never on the connection thread (a probe may wait for a timeout).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import structlog

from sync_worker.alerts.policy import AlertPolicy
from sync_worker.core.decisions import INFRASTRUCTURE, Handled, is_unavailable
from sync_worker.core.errors import CtSyncError
from sync_worker.core.messages import MemberEvent
from sync_worker.core.ports import Clock
from sync_worker.worker.handler import EventHandler

log = structlog.get_logger("ct_sync.outages")


@dataclass
class _Outage:
    since: datetime  # for people: the alert's text
    started: float  # monotonic: for the backoff and the alert's delay
    cause: str
    backoff: float
    next_probe: float
    probing: bool = False
    alerted: bool = False


def _in_a_thread(probe: Callable[[], None]) -> None:
    threading.Thread(target=probe, name="ct-sync-outage-probe", daemon=True).start()


class OutageGate:
    def __init__(
        self,
        *,
        probes: Mapping[str, Callable[[], object]],
        clock: Clock,
        policy: AlertPolicy,
        alert_after: timedelta,
        threshold: int = 3,
        first_backoff: float = 1.0,
        max_backoff: float = 30.0,
        run_probe: Callable[[Callable[[], None]], None] = _in_a_thread,
    ) -> None:
        """`probes`: per system ("ledger", "siebel"), a call that raises `CtSyncError` while it is unreachable."""
        self._probes = dict(probes)
        self._clock = clock
        self._policy = policy
        self._alert_after = alert_after.total_seconds()
        self._threshold = threshold
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._run_probe = run_probe  # tests run probes in line
        self._lock = threading.Lock()
        self._down: dict[str, _Outage] = {}
        self._failures = dict.fromkeys(self._probes, 0)  # syncs in a row that failed on each system

    def allow(self) -> bool:
        """May a sync start now? Not while any system is down."""
        return not self._down  # one read of a dict: no lock needed for a yes or no

    def up(self, system: str) -> bool:
        return system not in self._down

    @property
    def paused(self) -> bool:
        return bool(self._down)

    def handled(self, handled: Handled) -> None:
        """Feed one handled batch: its failures on our systems, and whether it got through them."""
        failures = {
            error.system: error for error in (handled.ledger_error, handled.error) if error and is_unavailable(error)
        }
        # What a sync touched and got through: the ledger always (its lock, its history); Siebel when the sync got
        # as far as an answer or as CrowdTwist.
        error = handled.error
        siebel_passed = handled.decision.action == "ack" or (error is not None and error.system not in INFRASTRUCTURE)
        with self._lock:
            for system in self._failures:
                if system in failures:
                    self._failures[system] += 1
                    if self._failures[system] >= self._threshold and system not in self._down:
                        self._went_down(system, failures[system])
                elif system == "ledger" or siebel_passed:
                    self._failures[system] = 0

    def tick(self) -> None:
        """Start the probes that are due (one per system at a time) and alert for outages that last."""
        if not self._down:
            return
        now = self._clock.monotonic()
        due: list[str] = []
        alerts: list[tuple[str, _Outage]] = []
        with self._lock:
            for system, outage in self._down.items():
                if not outage.alerted and now - outage.started >= self._alert_after:
                    outage.alerted = True
                    alerts.append((system, outage))
                if not outage.probing and now >= outage.next_probe:
                    outage.probing = True
                    due.append(system)
        for system, outage in alerts:
            log.warning(f"{system}_still_unavailable", down_s=round(now - outage.started), cause=outage.cause)
            self._policy.system_unavailable(system, since=outage.since, cause=outage.cause)
        for system in due:
            self._run_probe(partial(self._probe, system))

    def _went_down(self, system: str, error: CtSyncError) -> None:
        """Called with the lock held."""
        now = self._clock.monotonic()
        self._down[system] = _Outage(
            since=self._clock.now(),
            started=now,
            cause=error.message,
            backoff=self._first_backoff,
            next_probe=now + self._first_backoff,
        )
        log.warning(f"{system}_unavailable", cause=error.message, syncing="paused")

    def _probe(self, system: str) -> None:
        cause: str | None = None
        try:
            self._probes[system]()
        except CtSyncError as exc:
            cause = exc.message
        except Exception as exc:  # a probe thread's top: a bug in a probe must not keep the gate shut silently
            log.exception("outage_probe_crashed", system=system)
            cause = f"probe failed: {type(exc).__name__}"
        now = self._clock.monotonic()
        with self._lock:
            outage = self._down.get(system)
            if outage is None:
                return
            if cause is not None:
                outage.cause = cause
                outage.backoff = min(outage.backoff * 2, self._max_backoff)
                outage.next_probe = now + outage.backoff
                outage.probing = False
                log.debug("outage_probe_failed", system=system, cause=cause, next_probe_in_s=outage.backoff)
                return
            del self._down[system]
            self._failures[system] = 0
        log.info(f"{system}_available_again", down_s=round(now - outage.started, 1), syncing="resumed")
        if outage.alerted:
            self._policy.system_available_again(system, since=outage.since)


class Reporting:
    """The handler, as the consumer calls it, telling the gate of each result on the thread that handled it."""

    def __init__(self, handler: EventHandler, gate: OutageGate) -> None:
        self._handler = handler
        self._gate = gate

    def handle(self, events: Sequence[MemberEvent], *, redelivered: bool = False) -> Handled:
        handled = self._handler.handle(events, redelivered=redelivered)
        self._gate.handled(handled)
        return handled

    def crashed(self, events: Sequence[MemberEvent], exc: Exception) -> Handled:
        return self._handler.crashed(events, exc)

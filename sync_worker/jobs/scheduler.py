"""`ct-sync scheduler`: the long-running process that starts due jobs and groups.

    lease        one scheduler leads at a time: it holds the lease `scheduler` in the ledger database and renews
                 it three times per `CTSYNC_SCHEDULER__LEASE`; the others wait and take over once it lapses
    marks        per scheduled job, the scheduled time up to which its runs are handled; a run is started only
                 by the scheduler that moves this mark (compare-and-set), so even two leaders (one paused past its
                 lease and waking up) never start the same run
    missed runs  a scheduler back after a while finds scheduled times past since the mark: the job runs once,
                 for the latest of them, never once per missed time
    first sight  a job without a mark starts counting now: times before the scheduler knew it are not missed
    jitter       each scheduled time gets a random delay below the job's `jitter` (Connect: a random minute of a
                 15-minute slot), drawn once
    inactive     an inactive job's times pass by unrun; turned on again, it does not catch up
    overlap      a job still running at its next time is not started twice: that time is skipped, and logged

Runs are carried out on threads of their own, so a long export does not delay a poll. On SIGTERM (`stopping`),
no run is started any more, running jobs stop at their next safe point (recorded `Stopped`) or finish, and the
lease is handed back so another scheduler takes over at once. A failing job never stops the scheduler; neither
does a ledger outage (the pass is tried again).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from sync_worker.core.errors import CtSyncError
from sync_worker.core.ports import Clock
from sync_worker.jobs.catalog import Catalog, Definition
from sync_worker.jobs.runner import JobRunner, PendingRun

log = structlog.get_logger("ct_sync.scheduler")
LEASE = "scheduler"
HOUSEKEEPING_EVERY = timedelta(hours=1)

Launch = Callable[[Callable[[], None], str], None]  # carry out a run: on a thread of its own, or inline in tests


class ScheduleState(Protocol):
    """The scheduler's state in the ledger database (`RunLedger`)."""

    def take_lease(self, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool: ...

    def release_lease(self, name: str, owner: str) -> None: ...

    def handled_until(self) -> dict[str, datetime]: ...

    def advance_schedule(self, job: str, *, expected: datetime | None, to: datetime) -> bool: ...


class Scheduler:
    def __init__(
        self,
        *,
        catalog: Catalog,
        runner: JobRunner,
        state: ScheduleState,
        clock: Clock,
        owner: str,
        lease: timedelta,
        rng: random.Random | None = None,
        launch: Launch | None = None,
        housekeeping: Callable[[], None] | None = None,
    ) -> None:
        self._catalog = catalog
        self._runner = runner
        self._state = state
        self._clock = clock
        self.owner = owner
        self._lease = lease
        self._rng = rng or random.Random()
        self._launch = launch or self._on_a_thread
        self._housekeeping = housekeeping
        self._next_housekeeping: datetime | None = None
        self._delays: dict[tuple[str, datetime], timedelta] = {}
        self._active: set[str] = set()  # jobs and groups with a run in progress here
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.leading: bool | None = None  # None until the first pass

    @property
    def stopping(self) -> threading.Event:
        return self._runner.stopping

    def tick(self) -> datetime | None:
        """One pass: take or renew the lease, start what is due. Returns when the next run is due (None: nothing
        is scheduled, or another scheduler leads)."""
        now = self._clock.now()
        if not self._state.take_lease(LEASE, self.owner, now=now, ttl=self._lease):
            if self.leading:
                log.warning("scheduler_lease_lost", owner=self.owner)
            elif self.leading is None:
                log.info("scheduler_standby", owner=self.owner)
            self.leading = False
            return None
        marks = self._state.handled_until()
        next_due: datetime | None = None
        for definition in self._catalog:
            due = self._consider(definition, marks.get(definition.name), now)
            if due is not None and (next_due is None or due < next_due):
                next_due = due
        if not self.leading:
            self.leading = True
            log.info("scheduler_leading", owner=self.owner, next_due=next_due.isoformat() if next_due else None)
        self._keep_house(now)
        return next_due

    def serve(self) -> None:
        """Tick until `stopping` is set, then let running jobs stop or finish, and hand the lease back."""
        renew = self._lease.total_seconds() / 3
        while not self.stopping.is_set():
            try:
                next_due = self.tick()
            except CtSyncError as exc:
                log.warning("scheduler_pass_failed", error=exc.message)
                next_due = None
            wait = renew
            if next_due is not None:
                wait = min(wait, (next_due - self._clock.now()).total_seconds())
            self.stopping.wait(max(wait, 0.05))
        log.info("scheduler_stopping", running=sorted(self._active))
        for thread in list(self._threads):
            thread.join()
        if self.leading:
            try:
                self._state.release_lease(LEASE, self.owner)
            except CtSyncError as exc:
                log.warning("scheduler_lease_not_released", error=exc.message)
        log.info("scheduler_stopped", owner=self.owner)

    def _consider(self, definition: Definition, mark: datetime | None, now: datetime) -> datetime | None:
        """Start `definition` if one of its times is due; returns its next time to wake up for."""
        settings = definition.settings
        schedule, name = settings.schedule, definition.name
        if schedule.on_demand:
            return None
        if mark is None:
            self._state.advance_schedule(name, expected=None, to=now)
            return schedule.next_after(now)
        upcoming = schedule.next_after(mark)
        if upcoming is None:
            return None  # a one-time run, done
        if not settings.active:
            latest = schedule.latest_until(now)
            if latest is not None and latest > mark:
                self._state.advance_schedule(name, expected=mark, to=latest)
            return None
        start_at = upcoming + self._delay(name, upcoming, settings.jitter)
        if now < start_at:
            return start_at
        due = schedule.latest_until(now) or upcoming
        if not self._state.advance_schedule(name, expected=mark, to=due):
            return None  # another scheduler started it
        self._delays.pop((name, upcoming), None)
        if due > upcoming:
            log.warning("job_runs_missed", job=name, first=upcoming.isoformat(), running_once_for=due.isoformat())
        with self._lock:
            overlapping = name in self._active
            if not overlapping:
                self._active.add(name)
        if overlapping:
            log.warning("job_run_skipped", job=name, scheduled=due.isoformat(), reason="its previous run is running")
        else:
            try:
                pending = self._runner.start(definition, trigger="schedule")
            except BaseException:
                self._done(name)
                raise
            self._launch(lambda: self._carry_out(pending), name)
        return schedule.next_after(due)

    def _delay(self, name: str, scheduled: datetime, jitter: timedelta) -> timedelta:
        if not jitter:
            return timedelta(0)
        key = (name, scheduled)
        if key not in self._delays:
            self._delays[key] = timedelta(seconds=self._rng.uniform(0, jitter.total_seconds()))
        return self._delays[key]

    def _carry_out(self, pending: PendingRun) -> None:
        try:
            self._runner.execute(pending)
        except CtSyncError as exc:  # the ledger failed under the run: its record may stay Running
            log.error("job_run_not_recorded", run_id=pending.run_id, error=exc.message)
        finally:
            self._done(pending.definition.name)

    def _done(self, name: str) -> None:
        with self._lock:
            self._active.discard(name)

    def _on_a_thread(self, carry_out: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=carry_out, name=f"ct-sync-job-{name}")
        self._threads = [alive for alive in self._threads if alive.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _keep_house(self, now: datetime) -> None:
        """The leader purges runs and deliveries past retention, once an hour."""
        if self._housekeeping is None or (self._next_housekeeping is not None and now < self._next_housekeeping):
            return
        self._next_housekeeping = now + HOUSEKEEPING_EVERY
        self._housekeeping()

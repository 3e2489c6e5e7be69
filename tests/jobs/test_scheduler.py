"""The scheduler's rules beyond the calendar: one leader, jitter, inactive jobs, overlap, and a clean stop."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sync_worker.core.clock import SystemClock
from sync_worker.jobs.context import RunContext
from sync_worker.jobs.scheduler import LEASE, Scheduler
from sync_worker.ledger.runs import RunLedger
from tests.fakes import FakeClock, FakeMailer
from tests.jobs.conftest import ScriptedKinds, catalog, runner

START = datetime(2027, 2, 1, tzinfo=UTC)
LEASE_TTL = timedelta(seconds=30)


def scheduler(
    runs: RunLedger,
    kinds: ScriptedKinds,
    clock: FakeClock,
    jobs: dict[str, dict[str, object]],
    *,
    owner: str = "host-a:1",
    launch: Callable[[Callable[[], None], str], None] = lambda carry_out, name: carry_out(),
    rng: random.Random | None = None,
) -> Scheduler:
    return Scheduler(
        catalog=catalog(jobs), runner=runner(runs, kinds, FakeMailer(), clock), state=runs, clock=clock,
        owner=owner, lease=LEASE_TTL, launch=launch, rng=rng,
    )  # fmt: skip


def test_of_two_schedulers_one_leads_and_the_other_takes_over_without_running_anything_twice(
    runs: RunLedger, kinds: ScriptedKinds
) -> None:
    clock = FakeClock(START)
    hourly = {"hourly": {"schedule": "0 * * * *"}}
    a = scheduler(runs, kinds, clock, hourly, owner="host-a:1")
    b = scheduler(runs, kinds, clock, hourly, owner="host-b:2")
    for _ in range(3):
        a.tick()
        b.tick()
        clock.advance(timedelta(hours=1))
    assert (a.leading, b.leading) == (True, False)
    clock.advance(LEASE_TTL)  # a stops renewing (its host died): b takes over
    b.tick()
    clock.advance(timedelta(hours=1))
    b.tick()
    assert b.leading
    assert [row.run_id for row in runs.runs()] == ["hourly.4", "hourly.3", "hourly.2", "hourly.1"]
    assert len(set(kinds.ran)) == len(kinds.ran) == 4


def test_jitter_starts_a_run_at_a_random_moment_of_its_slot_drawn_once(runs: RunLedger, kinds: ScriptedKinds) -> None:
    clock = FakeClock(START)
    jobs = {"export": {"schedule": "0 2 * * *", "jitter": "15m"}}
    run = scheduler(runs, kinds, clock, jobs, rng=random.Random(7))
    run.tick()
    delay = timedelta(seconds=random.Random(7).uniform(0, 900))
    due = run.tick()
    assert due == START.replace(hour=2) + delay
    clock.current = START.replace(hour=2, minute=0, second=1)
    assert run.tick() == due  # the same moment, not a new draw
    assert kinds.ran == []
    clock.current = due
    run.tick()
    assert [row.started_at for row in runs.runs()] == [due]


def test_an_inactive_job_is_not_run_and_does_not_catch_up_when_turned_on(runs: RunLedger, kinds: ScriptedKinds) -> None:
    clock = FakeClock(START)
    scheduler(runs, kinds, clock, {"daily": {"schedule": "0 2 * * *", "active": False}}).tick()
    clock.advance(timedelta(days=3))
    scheduler(runs, kinds, clock, {"daily": {"schedule": "0 2 * * *", "active": False}}).tick()
    turned_on = scheduler(runs, kinds, clock, {"daily": {"schedule": "0 2 * * *"}})
    assert turned_on.tick() == START + timedelta(days=3, hours=2)
    assert kinds.ran == []


def test_a_job_still_running_at_its_next_time_is_not_started_twice(runs: RunLedger, kinds: ScriptedKinds) -> None:
    clock = FakeClock(START)
    held: list[Callable[[], None]] = []  # runs handed over but not carried out yet: still running
    run = scheduler(runs, kinds, clock, {"poll": {"schedule": "*/5 * * * *"}}, launch=lambda go, name: held.append(go))
    for _ in range(3):
        run.tick()
        clock.advance(timedelta(minutes=5))
    assert [row.run_id for row in runs.runs()] == ["poll.1"]
    held[0]()
    run.tick()
    assert [row.run_id for row in runs.runs()] == ["poll.2", "poll.1"]


def test_stopping_lets_the_running_job_stop_at_its_safe_point_and_hands_the_lease_back(
    runs: RunLedger, kinds: ScriptedKinds
) -> None:
    entered = threading.Event()

    def long_export(context: RunContext) -> None:
        entered.set()
        while True:  # a long job, calling its safe point as it goes
            context.checkpoint()
            threading.Event().wait(0.01)

    kinds.scripts["export"] = long_export
    clock = SystemClock()
    now = datetime.now(UTC)
    runs.advance_schedule("export", expected=None, to=now - timedelta(days=1))  # its time is past: due at once
    run = Scheduler(
        catalog=catalog({"export": {"schedule": now.isoformat()}}), runner=runner(runs, kinds, FakeMailer(), clock),
        state=runs, clock=clock, owner="host-a:1", lease=LEASE_TTL,
    )  # fmt: skip
    serving = threading.Thread(target=run.serve)
    serving.start()
    assert entered.wait(30), "the due run never started"
    run.stopping.set()  # what SIGTERM does
    serving.join(30)
    assert not serving.is_alive()
    assert [(row.run_id, row.status) for row in runs.runs()] == [("export.1", "Stopped")]
    assert runs.lease_holder(LEASE, now=datetime.now(UTC)) is None

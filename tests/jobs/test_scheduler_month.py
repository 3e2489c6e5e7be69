"""A fake clock drives the scheduler through February 2027 (28 days), with the scheduler down from the 14th 01:00
to the 17th 12:00: a daily job, a weekly one, one on the last day (`L`), a one-time one, and a group whose second
job fails. Runs are carried out inline, on the real ledger (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync_worker.jobs.scheduler import Scheduler
from sync_worker.ledger.runs import RunLedger
from tests.fakes import FakeClock, FakeMailer
from tests.jobs.conftest import ScriptedKinds, catalog, runner

START, END = datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)
DOWN_FROM, DOWN_UNTIL = datetime(2027, 2, 14, 1, tzinfo=UTC), datetime(2027, 2, 17, 12, tzinfo=UTC)
JOBS = {
    "daily": {"schedule": "0 2 * * *"},
    "weekly": {"schedule": "30 3 * * 1"},  # Mondays
    "month-end": {"schedule": "0 4 L * *"},
    "once": {"schedule": "2027-02-10T09:30:00Z"},
    "a": {},
    "b": {},
    "c": {},
}
GROUPS = {"saturday": {"jobs": ["a", "b", "c"], "schedule": "0 5 * * 6", "notify": "failed"}}


def feb(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 2, day, hour, minute, tzinfo=UTC)


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunLedger, FakeMailer]]:
    runs = RunLedger(f"sqlite:///{Path(tmp_path_factory.mktemp('month')) / 'ledger.sqlite'}")
    kinds, mailer, clock = ScriptedKinds(), FakeMailer(), FakeClock(START)
    kinds.scripts["b"] = "fail"
    scheduler = Scheduler(
        catalog=catalog(JOBS, GROUPS), runner=runner(runs, kinds, mailer, clock), state=runs, clock=clock,
        owner="host-a:1", lease=timedelta(seconds=30), launch=lambda carry_out, name: carry_out(),
    )  # fmt: skip
    while True:
        wake = scheduler.tick() or END
        if clock.now() < DOWN_FROM <= wake:
            wake = DOWN_UNTIL  # down: no pass at all in between
        if wake >= END:
            break
        clock.current = wake
    yield runs, mailer
    runs.close()


def started(runs: RunLedger, job: str) -> list[datetime]:
    return sorted(row.started_at for row in runs.runs(job=job, limit=100))


def test_a_daily_job_runs_every_day_and_once_for_the_days_the_scheduler_was_down(
    month: tuple[RunLedger, FakeMailer],
) -> None:
    runs, _ = month
    expected = [feb(day, 2) for day in range(1, 29) if not 14 <= day <= 17]
    assert started(runs, "daily") == sorted([*expected, DOWN_UNTIL])


def test_a_weekly_job_runs_on_mondays_and_a_missed_monday_once_on_return(month: tuple[RunLedger, FakeMailer]) -> None:
    runs, _ = month
    assert started(runs, "weekly") == [feb(1, 3, 30), feb(8, 3, 30), DOWN_UNTIL, feb(22, 3, 30)]


def test_l_runs_on_the_last_day_of_the_month(month: tuple[RunLedger, FakeMailer]) -> None:
    runs, _ = month
    assert started(runs, "month-end") == [feb(28, 4)]


def test_a_one_time_job_runs_once(month: tuple[RunLedger, FakeMailer]) -> None:
    runs, _ = month
    assert started(runs, "once") == [feb(10, 9, 30)]


def test_a_group_stops_at_its_failing_member_every_saturday_and_says_so_once_each(
    month: tuple[RunLedger, FakeMailer],
) -> None:
    runs, mailer = month
    saturdays = [feb(6, 5), feb(13, 5), feb(20, 5), feb(27, 5)]
    assert started(runs, "saturday") == saturdays
    assert {row.status for row in runs.runs(job="saturday")} == {"Failed"}
    assert (len(started(runs, "a")), len(started(runs, "b")), started(runs, "c")) == (4, 4, [])
    assert [alert.subject for alert in mailer.sent] == [
        f"[ct-sync] group saturday run saturday.{n}: Failed" for n in range(1, 5)
    ]

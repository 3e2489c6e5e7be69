"""Job runs, segment deliveries and the scheduler's state in the ledger, on SQLite and on PostgreSQL: numbers never
repeat, even when several processes take them at once; one lease holder; a schedule mark moved by one mover."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from sync_worker.core.ports import RunResult
from sync_worker.ledger.runs import RunLedger

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = date(2026, 11, 22)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
def runs(url: str) -> Iterator[RunLedger]:
    ledger = RunLedger(url)
    yield ledger
    ledger.close()


def test_run_ids_are_the_job_name_and_a_number_that_grows_per_job(runs: RunLedger) -> None:
    first = runs.start_run("cli-segment-Gold", kind="segment-export", trigger="cli", at=NOON)
    other = runs.start_run("nightly-poll", kind="poll", trigger="schedule", at=NOON)
    second = runs.start_run("cli-segment-Gold", kind="segment-export", trigger="cli", at=NOON)
    assert (first, other, second) == ("cli-segment-Gold.1", "nightly-poll.1", "cli-segment-Gold.2")


def test_a_finished_run_keeps_its_status_counts_files_error_and_log(runs: RunLedger) -> None:
    run_id = runs.start_run("cli-segment-Gold", kind="segment-export", trigger="cli", at=NOON)
    runs.log(run_id, "uploading Gold_20261122_1200.csv", at=NOON)
    runs.finish_run(
        run_id, RunResult("Failed", counts={"rows": 3}, files=["a.csv"], error="SFTP server unreachable"), at=NOON
    )
    run = runs.run(run_id)
    assert run is not None
    assert (run.status, run.counts, run.files, run.error) == (
        "Failed",
        {"rows": 3},
        ["a.csv"],
        "SFTP server unreachable",
    )
    assert runs.log_lines(run_id) == [(NOON, "uploading Gold_20261122_1200.csv")]
    assert [row.run_id for row in runs.runs(statuses=["Failed"])] == [run_id]


def test_concurrent_processes_never_take_the_same_run_number_or_suffix(url: str) -> None:
    ledgers = [RunLedger(url) for _ in range(4)]  # four engines: four "processes" racing on one database
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            run_ids = list(
                pool.map(
                    lambda n: ledgers[n % 4].start_run(
                        "cli-segment-Gold", kind="segment-export", trigger="cli", at=NOON
                    ),
                    range(12),
                )
            )
            suffixes = list(
                pool.map(
                    lambda n: ledgers[n % 4].reserve_suffix(
                        "Gold", DAY, propose=lambda highest: 1200 if highest is None else highest + 1, run_id=f"r{n}"
                    ),
                    range(12),
                )
            )
    finally:
        for ledger in ledgers:
            ledger.close()
    assert sorted(run_ids) == sorted(f"cli-segment-Gold.{n}" for n in range(1, 13))
    assert sorted(suffixes) == list(range(1200, 1212))


def test_a_released_suffix_can_be_taken_again_a_delivered_one_cannot(runs: RunLedger) -> None:
    def propose(highest: int | None) -> int:
        return 1200 if highest is None else highest + 1

    taken = runs.reserve_suffix("Gold", DAY, propose=propose, run_id="r1")
    runs.release_suffix("Gold", DAY, taken)
    again = runs.reserve_suffix("Gold", DAY, propose=propose, run_id="r2")
    runs.mark_delivered("Gold", DAY, again, file_name="Gold_20261122_1200.csv", rows=2, size=14)
    runs.release_suffix("Gold", DAY, again)  # too late: the file is in CrowdTwist's folder
    assert (taken, again) == (1200, 1200)
    assert runs.highest_suffix("Gold", DAY) == 1200
    assert runs.reserve_suffix("Gold", DAY, propose=propose, run_id="r3") == 1201


def test_one_scheduler_holds_the_lease_until_it_lapses_or_is_handed_back(runs: RunLedger) -> None:
    lease = timedelta(seconds=30)
    assert runs.take_lease("scheduler", "host-a:1", now=NOON, ttl=lease)
    assert not runs.take_lease("scheduler", "host-b:2", now=NOON + timedelta(seconds=29), ttl=lease)
    assert runs.take_lease("scheduler", "host-a:1", now=NOON + timedelta(seconds=20), ttl=lease)  # renewed
    assert not runs.take_lease("scheduler", "host-b:2", now=NOON + timedelta(seconds=49), ttl=lease)
    assert runs.take_lease("scheduler", "host-b:2", now=NOON + timedelta(seconds=51), ttl=lease)  # lapsed
    runs.release_lease("scheduler", "host-a:1")  # no longer a's to give back
    assert runs.lease_holder("scheduler", now=NOON + timedelta(seconds=52)) == "host-b:2"
    runs.release_lease("scheduler", "host-b:2")
    assert runs.take_lease("scheduler", "host-a:1", now=NOON + timedelta(seconds=53), ttl=lease)


def test_a_schedule_mark_moves_only_from_where_the_mover_saw_it(runs: RunLedger) -> None:
    two_am = NOON.replace(hour=2)
    assert runs.advance_schedule("nightly", expected=None, to=NOON - timedelta(days=1))
    assert not runs.advance_schedule("nightly", expected=None, to=NOON)  # someone made the mark first
    assert runs.advance_schedule("nightly", expected=NOON - timedelta(days=1), to=two_am)
    assert not runs.advance_schedule("nightly", expected=NOON - timedelta(days=1), to=two_am)  # the loser
    assert runs.handled_until() == {"nightly": two_am}


def test_a_stop_request_is_seen_by_the_run(runs: RunLedger) -> None:
    run_id = runs.start_run("nightly", kind="poll", trigger="schedule", at=NOON)
    assert not runs.stop_requested(run_id)
    runs.request_stop(run_id, at=NOON)
    runs.request_stop(run_id, at=NOON)  # twice is harmless
    assert runs.stop_requested(run_id)


def test_retention_forgets_finished_runs_and_past_days_deliveries_not_running_runs(runs: RunLedger) -> None:
    old = NOON - timedelta(days=100)
    finished = runs.start_run("nightly", kind="poll", trigger="schedule", at=old)
    runs.log(finished, "published 3", at=old)
    runs.finish_run(finished, RunResult("Success"), at=old)
    still_running = runs.start_run("export", kind="segment-export", trigger="schedule", at=old)
    recent = runs.start_run("nightly", kind="poll", trigger="schedule", at=NOON)
    runs.reserve_suffix("Gold", old.date(), propose=lambda highest: 1200, run_id=finished)
    runs.reserve_suffix("Gold", DAY, propose=lambda highest: 1200, run_id=recent)
    runs.purge(older_than=NOON - timedelta(days=90))
    assert {row.run_id for row in runs.runs()} == {still_running, recent}
    assert runs.log_lines(finished) == []
    assert [row.day for row in runs.deliveries("Gold")] == ["20261122"]

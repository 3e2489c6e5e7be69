"""Job runs and segment deliveries in the ledger, on SQLite and on PostgreSQL: numbers never repeat, even when
several processes take them at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from sync_worker.core.ports import RunResult
from sync_worker.ledger.runs import RunLedger

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DAY = date(2026, 11, 22)
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    request.getfixturevalue("postgres_url")
    database = f"ctsync_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{database}"
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


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

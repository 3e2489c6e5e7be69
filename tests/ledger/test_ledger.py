"""The ledger on SQLite and on PostgreSQL: history, statuses, synced state, retention, concurrency."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sync_worker.core.errors import ConfigurationError, TransientError
from sync_worker.core.ports import AttemptRecord, KnownState, RefusedState, SyncedState
from sync_worker.ledger.sql import SqlLedger
from tests.integration.proxy import SilenceableProxy

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlLedger]:
    if request.param == "sqlite":
        made = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
        yield made
        made.close()
        return
    server = request.getfixturevalue("postgres_url")
    database = f"ctsync_{uuid.uuid4().hex[:12]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{database}"')
    made = SqlLedger(server.rsplit("/", 1)[0].replace("+psycopg", "") + f"/{database}", pool_size=4)
    yield made
    made.close()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


def row(member: str, outcome: str, *, minutes: int = 0, **fields: object) -> AttemptRecord:
    return AttemptRecord(
        event_id=str(fields.pop("event_id", uuid.uuid4().hex)),
        member_number=member,
        event_type="update",
        outcome=outcome,  # type: ignore[arg-type]
        at=NOON + timedelta(minutes=minutes),
        **fields,  # type: ignore[arg-type]
    )


def test_failures_filter_by_status_and_text_in_any_case_with_percent_and_underscore_taken_literally(
    ledger: SqlLedger,
) -> None:
    ledger.record([row("296-1", "Data Error", minutes=1, error="Email Address is already taken")])
    ledger.record([row("296-2", "CT Failure", minutes=2, error="HTTP 503 after 100% of the budget")])
    ledger.record([row("296_3", "Data Error", minutes=3, error="Last Name is empty"), row("296-4", "Synced")])
    assert [f.member_number for f in ledger.failures()] == ["296_3", "296-2", "296-1"]
    assert [f.member_number for f in ledger.failures(outcomes=["Data Error"], text="EMAIL")] == ["296-1"]
    assert [f.member_number for f in ledger.failures(text="100%")] == ["296-2"]
    assert [f.member_number for f in ledger.failures(text="296_")] == ["296_3"]  # `_` is not a wildcard here
    assert [f.member_number for f in ledger.failures(limit=1, offset=1)] == ["296-2"]


def test_calls_since_adds_up_the_crowdtwist_calls_of_the_attempts_in_the_window(ledger: SqlLedger) -> None:
    ledger.record([row("296-1", "Synced", minutes=-90, ct_calls=2), row("296-2", "Synced", minutes=-30, ct_calls=3)])
    ledger.record([row("296-3", "Data Error", minutes=-10, ct_calls=1)])
    assert ledger.calls_since(NOON - timedelta(hours=1)) == 4
    assert ledger.calls_since(NOON) == 0


def test_a_members_history_is_newest_first(ledger: SqlLedger) -> None:
    ledger.record(
        [row("296-1", "Retrying", minutes=0, error="HTTP 503"), row("296-1", "Synced", minutes=1, ct_calls=1)]
    )
    ledger.record([row("296-2", "Synced")])
    history = ledger.history("296-1")
    assert [(entry.outcome, entry.error) for entry in history] == [("Synced", None), ("Retrying", "HTTP 503")]
    assert history[0].at == NOON + timedelta(minutes=1)


def test_member_states_count_each_members_latest_decision(ledger: SqlLedger) -> None:
    ledger.record([row("296-1", "CT Failure", minutes=0), row("296-1", "Synced", minutes=5)])
    ledger.record([row("296-2", "Data Error"), row("296-3", "Synced"), row("296-3", "Retrying", minutes=9)])
    # Re-checked and found unchanged, again and again: still Synced (it was counted as "Skipped" before).
    ledger.record([row("296-1", "Unchanged", minutes=10 + n) for n in range(5)])
    ledger.record([row("296-4", "Dead-lettered"), row("296-5", "Skipped")])
    assert ledger.member_states() == {"Synced": 2, "Data Error": 1, "OIC Failure": 1, "never sent": 1}


def test_latest_outcomes_are_each_members_newest_decision_for_the_members_asked(ledger: SqlLedger) -> None:
    ledger.record([row("296-1", "CT Failure", minutes=1, error="HTTP 503"), row("296-1", "Synced", minutes=2)])
    ledger.record([row("296-2", "Data Error", minutes=1, error="Email Address is already taken")])
    ledger.record([row("296-2", "Unchanged", minutes=2), row("296-2", "Retrying", minutes=3, error="HTTP 503")])
    ledger.record([row("296-3", "Synced", minutes=1), row("296-3", "OIC Failure", minutes=2, error="queue down")])
    latest = ledger.latest_outcomes(["296-1", "296-2", "296-3", "296-9"] + [f"296-x{n}" for n in range(600)])
    assert {number: (state.outcome, state.error, state.at) for number, state in latest.items()} == {
        "296-1": ("Synced", None, NOON + timedelta(minutes=2)),
        "296-2": ("Data Error", "Email Address is already taken", NOON + timedelta(minutes=1)),  # decided nothing since
        "296-3": ("OIC Failure", "queue down", NOON + timedelta(minutes=2)),
    }  # a member never attempted is left out; more members than one query takes are asked in parts


def test_attempt_counts_and_recent_failures(ledger: SqlLedger) -> None:
    ledger.record([row("296-1", "Data Error", error="Email Address is already taken"), row("296-2", "Synced")])
    ledger.record([row("296-3", "Synced", minutes=-600)])
    assert ledger.attempt_counts(since=NOON - timedelta(hours=1)) == {"Data Error": 1, "Synced": 1}
    failures = ledger.recent_failures()
    assert [(f.member_number, f.error) for f in failures] == [("296-1", "Email Address is already taken")]


def test_resubmissions_are_counted_per_member(ledger: SqlLedger) -> None:
    ledger.record([row("296-1", "CT Failure", source="resubmit"), row("296-1", "Synced", source="resubmit")])
    ledger.record([row("296-1", "Synced", source="intake"), row("296-1", "Synced", source="automatic")])
    assert ledger.resubmit_count("296-1") == 2  # the worker's own resubmits after an outage do not count
    assert ledger.resubmit_count("296-2") == 0


def test_synced_state_is_upserted_and_forgotten(ledger: SqlLedger) -> None:
    assert ledger.known_state("296-1") == KnownState()
    ledger.remember("296-1", SyncedState("a" * 64, 564865656, NOON))
    ledger.remember("296-1", SyncedState("b" * 64, 564865656, NOON + timedelta(minutes=1)))
    assert ledger.known_state("296-1").synced == SyncedState("b" * 64, 564865656, NOON + timedelta(minutes=1))
    ledger.forget("296-1")
    assert ledger.known_state("296-1") == KnownState()


def test_a_refusal_keeps_what_crowdtwist_holds_and_a_sync_clears_the_refusal(ledger: SqlLedger) -> None:
    synced = SyncedState("a" * 64, 564865656, NOON)
    refused = RefusedState("b" * 64, "Email Address is already taken", NOON + timedelta(minutes=1))
    ledger.remember("296-1", refused)
    assert ledger.known_state("296-1") == KnownState(refused=refused)
    ledger.remember("296-1", synced)
    ledger.remember("296-1", refused)
    assert ledger.known_state("296-1") == KnownState(synced=synced, refused=refused)
    ledger.remember("296-1", synced)
    assert ledger.known_state("296-1") == KnownState(synced=synced)


def test_retention_purges_old_attempts(ledger: SqlLedger) -> None:
    ledger.record([row("296-1", "Synced", minutes=-60 * 24 * 100), row("296-1", "Synced")])
    assert ledger.purge(older_than=NOON - timedelta(days=90)) == 1
    assert len(ledger.history("296-1")) == 1


def test_many_threads_record_and_upsert_at_once(ledger: SqlLedger) -> None:
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        barrier.wait()
        try:
            for n in range(25):
                ledger.record([row(f"296-{n}", "Synced", ct_calls=1)])
                ledger.remember(f"296-{n}", SyncedState(f"{worker:064d}", n, NOON))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ledger.totals() == {"attempts": 200, "ct_calls": 200}
    assert all(ledger.known_state(f"296-{n}").synced is not None for n in range(25))


def test_an_unreachable_database_is_a_transient_error_without_the_password() -> None:
    with pytest.raises(TransientError, match="ledger unavailable") as caught:
        SqlLedger("postgresql://ctsync:hunter2pw@127.0.0.1:1/nowhere")
    assert "hunter2pw" not in str(caught.value)


def _open_ledger(url: str, start: Any) -> None:
    start.wait(30)
    SqlLedger(url).close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_workers_started_together_all_set_up_the_schema(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four processes creating the tables at the same moment: before, one lost the race and exited 75."""
    if database == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'ledger.sqlite'}", None
    else:
        server = request.getfixturevalue("postgres_url")
        name = f"ctsync_{uuid.uuid4().hex[:12]}"
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url, drop = server.rsplit("/", 1)[0].replace("+psycopg", "") + f"/{name}", name
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    processes = [context.Process(target=_open_ledger, args=(url, start)) for _ in range(4)]
    for process in processes:
        process.start()
    start.set()
    for process in processes:
        process.join(60)
    try:
        assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    finally:
        if drop:
            with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{drop}" WITH (FORCE)')


def test_a_postgresql_ledger_without_its_driver_names_the_postgres_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if `pip install ct-sync` left the extra out
    with pytest.raises(ConfigurationError) as raised:
        SqlLedger("postgresql://ct-sync@db.internal/ct_sync")
    assert raised.value.message == (
        "CTSYNC_LEDGER__URL is a PostgreSQL database, whose driver comes with the postgres extra: "
        "pip install 'ct-sync[postgres]'"
    )


@pytest.mark.postgres
def test_a_state_the_ledger_could_not_take_is_forgotten_at_its_next_transaction(postgres_database: str) -> None:
    """CrowdTwist accepted "new" but the database was away: the row still says "old", which no sync may trust."""
    with SilenceableProxy(("127.0.0.1", 5432)) as proxy:
        ledger = SqlLedger(postgres_database.replace(":5432/", f":{proxy.port}/"), pool_size=2)
        try:
            ledger.remember("296-1", SyncedState("a" * 64, 564865656, NOON))
            ledger.remember("296-2", SyncedState("a" * 64, 564865657, NOON))
            proxy.cut()
            with pytest.raises(TransientError):
                ledger.remember("296-1", SyncedState("b" * 64, 564865656, NOON + timedelta(minutes=1)))
            proxy.restore()
            assert ledger.known_state("296-1") == KnownState()  # a sync of it sends, whatever it finds
            assert ledger.known_state("296-2").synced is not None  # the others are left alone
            ledger.remember("296-1", SyncedState("c" * 64, 564865656, NOON + timedelta(minutes=2)))
            assert ledger.known_state("296-1").synced == SyncedState("c" * 64, 564865656, NOON + timedelta(minutes=2))
        finally:
            ledger.close()

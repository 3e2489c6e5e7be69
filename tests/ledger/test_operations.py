"""Operator actions and the workers' breaker events in the ledger, on SQLite and PostgreSQL; and the worker's side
that writes breaker events without ever making the consumer wait."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, create_engine, select

from sync_worker.ledger.operations import Action, OperationsLog, breaker_events
from sync_worker.ledger.sql import normalise_url
from sync_worker.worker.breaker import Pause, Transition
from sync_worker.worker.breaker_events import BreakerEvents

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty ledger database."""
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
def log(database_url: str) -> Iterator[OperationsLog]:
    operations = OperationsLog(database_url)
    yield operations
    operations.close()


def action(member: str | None, *, minutes: int, **fields: str) -> Action:
    values: dict[str, str] = {"operator": "Ada", "origin": "console", "action": "resubmit", **fields}
    return Action(at=NOON + timedelta(minutes=minutes), member_number=member, **values)  # type: ignore[arg-type]


def test_actions_are_kept_with_who_did_them_newest_first_and_found_by_member(log: OperationsLog) -> None:
    log.record_actions([action("296-1", minutes=0), action("296-2", minutes=1)])
    log.record_actions([action("296-1", minutes=2, operator="Grace", origin="cli", action="discard")])
    assert [(a.member_number, a.operator, a.action) for a in log.actions()] == [
        ("296-1", "Grace", "discard"), ("296-2", "Ada", "resubmit"), ("296-1", "Ada", "resubmit"),
    ]  # fmt: skip
    assert [a.operator for a in log.actions(member_number="296-1")] == ["Grace", "Ada"]
    assert log.actions(member_number="296-1")[0].at == NOON + timedelta(minutes=2)


def test_each_workers_breaker_is_its_latest_event_and_stopped_workers_are_left_out(log: OperationsLog) -> None:
    log.record_breaker("host-a:1", "started", at=NOON)
    log.record_breaker("host-b:2", "started", at=NOON)
    log.record_breaker("host-a:1", "opened", at=NOON + timedelta(minutes=1), cause="HTTP 503 from CrowdTwist")
    log.record_breaker("host-c:3", "started", at=NOON)
    log.record_breaker("host-c:3", "stopped", at=NOON + timedelta(minutes=2))
    reports = {report.worker: report for report in log.breakers()}
    assert set(reports) == {"host-a:1", "host-b:2"}
    assert reports["host-a:1"].open
    assert reports["host-a:1"].cause == "HTTP 503 from CrowdTwist"
    assert not reports["host-b:2"].open
    log.record_breaker("host-a:1", "closed", at=NOON + timedelta(minutes=3), cause="CrowdTwist answered again")
    assert not any(report.open for report in log.breakers())


def test_retention_forgets_actions_and_breaker_events_past_it(log: OperationsLog) -> None:
    log.record_actions([action("296-1", minutes=0), action("296-2", minutes=90)])
    log.record_breaker("host-a:1", "started", at=NOON)
    assert log.purge(older_than=NOON + timedelta(hours=1)) == 2
    assert [a.member_number for a in log.actions()] == ["296-2"]
    assert log.breakers() == []


def test_the_worker_writes_its_breaker_transitions_in_order_and_stopped_last(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    events = BreakerEvents(OperationsLog(url), clock=lambda: NOON, worker="host-a:1")
    events.started()
    events.transition(Transition("opened", "HTTP 503 from CrowdTwist", NOON))
    events.transition(Transition("closed", "CrowdTwist answered again", NOON))
    events.stopped()  # waits for the writes before it
    engine = create_engine(url)
    with engine.connect() as connection:
        written = connection.execute(select(breaker_events.c.event).order_by(breaker_events.c.id)).scalars().all()
    engine.dispose()
    assert written == ["started", "opened", "closed", "stopped"]


def test_an_open_breaker_reports_since_when_syncing_is_paused_and_its_next_probe(log: OperationsLog) -> None:
    log.record_breaker("host-a:1", "opened", at=NOON, cause="HTTP 503", since=NOON)
    [opened] = log.breakers()
    assert (opened.open, opened.paused_since, opened.next_probe_at) == (True, NOON, None)
    log.record_breaker(
        "host-a:1", "probe_scheduled", at=NOON + timedelta(seconds=20), cause="HTTP 503", since=NOON,
        next_probe_at=NOON + timedelta(seconds=35),
    )  # fmt: skip
    [probing] = log.breakers()
    assert (probing.open, probing.paused_since, probing.next_probe_at) == (True, NOON, NOON + timedelta(seconds=35))
    log.record_breaker("host-a:1", "closed", at=NOON + timedelta(seconds=36), since=NOON)
    [closed] = log.breakers()
    assert (closed.open, closed.paused_since) == (False, None)


def test_a_breaker_events_table_of_an_earlier_version_gains_the_new_columns_and_keeps_its_rows(
    database_url: str,
) -> None:
    engine = create_engine(normalise_url(database_url))
    schema_3 = MetaData()
    old_table = Table(
        "ct_sync_breaker_events", schema_3,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False, index=True),
        Column("worker", String(200), nullable=False),
        Column("event", String(16), nullable=False),
        Column("cause", Text),
    )  # fmt: skip
    with engine.begin() as connection:
        schema_3.create_all(connection)
        connection.execute(old_table.insert().values(at=NOON, worker="host-a:1", event="opened", cause="HTTP 503"))
    engine.dispose()
    first, second = OperationsLog(database_url), OperationsLog(database_url)  # the second finds the columns there
    try:
        [old] = first.breakers()
        assert (old.open, old.paused_since, old.next_probe_at) == (True, NOON, None)  # since: when it was recorded
        second.record_breaker(
            "host-a:1", "probe_scheduled", at=NOON, since=NOON, next_probe_at=NOON + timedelta(seconds=5)
        )
        assert [report.next_probe_at for report in first.breakers()] == [NOON + timedelta(seconds=5)]
    finally:
        first.close()
        second.close()


def test_the_worker_records_each_probe_it_schedules_with_since_and_when(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    events = BreakerEvents(OperationsLog(url), clock=lambda: NOON, worker="host-a:1")
    events.transition(Transition("opened", "HTTP 503", NOON))
    events.probe_scheduled(Pause(NOON, "HTTP 503", NOON + timedelta(seconds=4)))
    events.stopped()
    operations = OperationsLog(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(breaker_events.c.event, breaker_events.c.next_probe_at).order_by(breaker_events.c.id)
        ).all()
    engine.dispose()
    operations.close()
    assert [(event, at.replace(tzinfo=UTC) if at else None) for event, at in rows] == [
        ("opened", None), ("probe_scheduled", NOON + timedelta(seconds=4)), ("stopped", None),
    ]  # fmt: skip

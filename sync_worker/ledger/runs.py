"""Adapter: job runs, file deliveries and the scheduler's state, in the ledger database (SQLite embedded,
PostgreSQL in production).

Implements the core's `JobRuns` and `Deliveries` ports, and what `ct-sync scheduler` keeps. Tables, made on first use:

    ct_sync_job_runs     one row per run: `JOB.N` id, kind (`group` for a group's run), trigger, start/finish,
                         status, counts, files, error; `group_run_id` links a job's run to its group's run
    ct_sync_job_log      the run's own log lines, in order
    ct_sync_job_stops    stop requests (`ct-sync jobs stop`): the run stops at its next safe point
    ct_sync_deliveries   one row per suffix reserved for a segment and UTC date, `delivered` once the file is
                         visible in the drop folder: CrowdTwist empties its folder, so only this table knows the
                         highest suffix already used
    ct_sync_job_schedule per scheduled job or group, the scheduled time up to which its runs are handled: moved
                         forward by compare-and-set, so of two schedulers only one starts a given run
    ct_sync_leases       the scheduler's lease: one leader at a time, replaced when it stops renewing

Numbers that must never repeat (a run's N, a delivery's suffix) are taken by "highest + 1" under a unique key: of
two processes that race, the loser's insert fails and it takes the next number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from config.redaction import redact_text
from sync_worker.core.errors import TransientError
from sync_worker.core.ports import RunResult, RunStatus
from sync_worker.ledger.sql import create_ledger_engine, create_schema

metadata = MetaData()
_RACE_RETRIES = 20  # inserts lost to a concurrent process before giving up (each loss means the other one won)

job_runs = Table(
    "ct_sync_job_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(160), nullable=False, unique=True),
    Column("job", String(120), nullable=False),
    Column("number", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("group_run_id", String(160)),
    Column("started_at", DateTime(timezone=True), nullable=False, index=True),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),
    Column("counts", Text, nullable=False, default="{}"),
    Column("files", Text, nullable=False, default="[]"),
    Column("error", Text),
    UniqueConstraint("job", "number"),
)

job_log = Table(
    "ct_sync_job_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(160), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("line", Text, nullable=False),
)

job_stops = Table(
    "ct_sync_job_stops",
    metadata,
    Column("run_id", String(160), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

job_schedule = Table(
    "ct_sync_job_schedule",
    metadata,
    Column("job", String(120), primary_key=True),
    # ISO text, not a DateTime: compare-and-set needs exact equality, the same on SQLite and PostgreSQL.
    Column("handled_until", String(32), nullable=False),
)

leases = Table(
    "ct_sync_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

deliveries = Table(
    "ct_sync_deliveries",
    metadata,
    Column("segment", String(50), nullable=False),
    Column("day", String(8), nullable=False),  # UTC YYYYMMDD, as in the file name
    Column("suffix", Integer, nullable=False),
    Column("run_id", String(160), nullable=False),
    Column("state", String(16), nullable=False),  # reserved | delivered
    Column("file_name", String(80)),
    Column("rows", Integer),
    Column("size", Integer),
    Column("at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("segment", "day", "suffix"),
)

T = TypeVar("T")


@dataclass(frozen=True)
class RunRow:
    run_id: str
    job: str
    kind: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, int]
    files: list[str]
    error: str | None
    group_run_id: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.finished_at is None else (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class DeliveryRow:
    segment: str
    day: str
    suffix: int
    state: str
    file_name: str | None
    rows: int | None
    size: int | None


class RunLedger:
    """Job runs and deliveries; one engine of its own on the ledger database."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = create_ledger_engine(url)
        create_schema(self._engine, metadata)

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self._engine.begin() as connection:
                yield connection
        except IntegrityError:
            raise  # a lost race: the caller takes the next number
        except SQLAlchemyError as exc:
            detail = redact_text(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
            raise TransientError(f"ledger unavailable: {detail}", system="ledger") from None

    def _next_number(self, insert_with: Callable[[Connection], T]) -> T:
        """Run an insert that takes "highest + 1" again until it is not beaten to it by another process."""
        for _ in range(_RACE_RETRIES):
            try:
                with self._begin() as connection:
                    return insert_with(connection)
            except IntegrityError:
                continue
        raise TransientError("ledger: too many concurrent runs took the same number", system="ledger")

    # -- JobRuns port ------------------------------------------------------------------------------------------------

    def start_run(self, job: str, *, kind: str, trigger: str, at: datetime, group_run_id: str | None = None) -> str:
        def take(connection: Connection) -> str:
            highest = connection.execute(select(func.max(job_runs.c.number)).where(job_runs.c.job == job)).scalar()
            number = int(highest or 0) + 1
            run_id = f"{job}.{number}"
            connection.execute(
                insert(job_runs).values(
                    run_id=run_id, job=job, number=number, kind=kind, trigger=trigger, group_run_id=group_run_id,
                    started_at=at, status="Running", counts="{}", files="[]",
                )
            )  # fmt: skip
            return run_id

        return self._next_number(take)

    def log(self, run_id: str, line: str, *, at: datetime) -> None:
        with self._begin() as connection:
            connection.execute(insert(job_log).values(run_id=run_id, at=at, line=line))

    def request_stop(self, run_id: str, *, at: datetime) -> None:
        try:
            with self._begin() as connection:
                connection.execute(insert(job_stops).values(run_id=run_id, at=at))
        except IntegrityError:
            pass  # asked twice: once is enough

    def stop_requested(self, run_id: str) -> bool:
        with self._begin() as connection:
            return (
                connection.execute(select(job_stops.c.run_id).where(job_stops.c.run_id == run_id)).first() is not None
            )

    def finish_run(self, run_id: str, result: RunResult, *, at: datetime) -> None:
        with self._begin() as connection:
            connection.execute(
                update(job_runs)
                .where(job_runs.c.run_id == run_id)
                .values(
                    finished_at=at,
                    status=result.status,
                    counts=json.dumps(dict(result.counts)),
                    files=json.dumps(list(result.files)),
                    error=result.error,
                )
            )

    # -- Deliveries port ---------------------------------------------------------------------------------------------

    def highest_suffix(self, segment: str, day: date) -> int | None:
        with self._begin() as connection:
            return _highest_suffix(connection, segment, day)

    def reserve_suffix(self, segment: str, day: date, *, propose: Callable[[int | None], int], run_id: str) -> int:
        def take(connection: Connection) -> int:
            suffix = propose(_highest_suffix(connection, segment, day))
            connection.execute(
                insert(deliveries).values(
                    segment=segment,
                    day=f"{day:%Y%m%d}",
                    suffix=suffix,
                    run_id=run_id,
                    state="reserved",
                    at=datetime.now(UTC),
                )
            )
            return suffix

        return self._next_number(take)

    def mark_delivered(self, segment: str, day: date, suffix: int, *, file_name: str, rows: int, size: int) -> None:
        with self._begin() as connection:
            connection.execute(
                update(deliveries)
                .where(*_delivery_key(segment, day, suffix))
                .values(state="delivered", file_name=file_name, rows=rows, size=size, at=datetime.now(UTC))
            )

    def release_suffix(self, segment: str, day: date, suffix: int) -> None:
        with self._begin() as connection:
            connection.execute(
                delete(deliveries).where(*_delivery_key(segment, day, suffix), deliveries.c.state == "reserved")
            )

    # -- the scheduler's state -----------------------------------------------------------------------------------------

    def take_lease(self, name: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
        """Take or renew the lease `name` for `owner` until `now + ttl`; False while another holds it unexpired."""
        taken = (
            update(leases)
            .where(leases.c.name == name, or_(leases.c.owner == owner, leases.c.expires_at < now))
            .values(owner=owner, expires_at=now + ttl)
        )
        try:
            with self._begin() as connection:
                if connection.execute(taken).rowcount:
                    return True
                if connection.execute(select(leases.c.name).where(leases.c.name == name)).first() is not None:
                    return False
                connection.execute(insert(leases).values(name=name, owner=owner, expires_at=now + ttl))
                return True
        except IntegrityError:
            return False  # another process made the row first: it holds the lease

    def release_lease(self, name: str, owner: str) -> None:
        with self._begin() as connection:
            connection.execute(delete(leases).where(leases.c.name == name, leases.c.owner == owner))

    def lease_holder(self, name: str, *, now: datetime) -> str | None:
        query = select(leases.c.owner).where(leases.c.name == name, leases.c.expires_at >= now)
        with self._begin() as connection:
            return connection.execute(query).scalar()

    def handled_until(self) -> dict[str, datetime]:
        """Per scheduled job or group, the scheduled time up to which its runs are handled."""
        with self._begin() as connection:
            return {job: _from_text(mark) for job, mark in connection.execute(select(job_schedule))}

    def advance_schedule(self, job: str, *, expected: datetime | None, to: datetime) -> bool:
        """Move `job`'s mark from `expected` (None: no mark yet) to `to`; False if another process moved it first."""
        try:
            with self._begin() as connection:
                if expected is None:
                    connection.execute(insert(job_schedule).values(job=job, handled_until=_to_text(to)))
                    return True
                moved = connection.execute(
                    update(job_schedule)
                    .where(job_schedule.c.job == job, job_schedule.c.handled_until == _to_text(expected))
                    .values(handled_until=_to_text(to))
                )
                return bool(moved.rowcount)
        except IntegrityError:
            return False

    # -- retention ---------------------------------------------------------------------------------------------------

    def purge(self, *, older_than: datetime) -> int:
        """Forget finished runs started before `older_than` (with their log lines and stop requests), and the
        deliveries of days before it: past days' suffixes can no longer collide with a new file's."""
        old_runs = select(job_runs.c.run_id).where(job_runs.c.started_at < older_than, job_runs.c.status != "Running")
        with self._begin() as connection:
            purged = connection.execute(delete(job_log).where(job_log.c.run_id.in_(old_runs))).rowcount or 0
            connection.execute(delete(job_stops).where(job_stops.c.run_id.in_(old_runs)))
            purged += (
                connection.execute(delete(deliveries).where(deliveries.c.day < f"{older_than:%Y%m%d}")).rowcount or 0
            )
            purged += (
                connection.execute(
                    delete(job_runs).where(job_runs.c.started_at < older_than, job_runs.c.status != "Running")
                ).rowcount
                or 0
            )
        return int(purged)

    # -- queries -------------------------------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRow | None:
        rows = self._runs(select(job_runs).where(job_runs.c.run_id == run_id))
        return rows[0] if rows else None

    def runs(
        self,
        *,
        job: str | None = None,
        kind: str | None = None,
        statuses: Sequence[RunStatus] = (),
        group_run_id: str | None = None,
        limit: int = 50,
    ) -> list[RunRow]:
        """Newest first."""
        query = select(job_runs).order_by(job_runs.c.id.desc()).limit(limit)
        if job is not None:
            query = query.where(job_runs.c.job == job)
        if kind is not None:
            query = query.where(job_runs.c.kind == kind)
        if statuses:
            query = query.where(job_runs.c.status.in_(statuses))
        if group_run_id is not None:
            query = query.where(job_runs.c.group_run_id == group_run_id)
        return self._runs(query)

    def latest_runs(self) -> dict[str, RunRow]:
        """The newest run of every job and group."""
        newest = select(func.max(job_runs.c.id)).group_by(job_runs.c.job).scalar_subquery()
        return {row.job: row for row in self._runs(select(job_runs).where(job_runs.c.id.in_(newest)))}

    def running_jobs(self) -> set[str]:
        with self._begin() as connection:
            query = select(job_runs.c.job).where(job_runs.c.status == "Running").distinct()
            return set(connection.execute(query).scalars())

    def log_lines(self, run_id: str) -> list[tuple[datetime, str]]:
        query = select(job_log.c.at, job_log.c.line).where(job_log.c.run_id == run_id).order_by(job_log.c.id)
        with self._begin() as connection:
            return [(_aware(at), line) for at, line in connection.execute(query)]

    def deliveries(self, segment: str) -> list[DeliveryRow]:
        query = (
            select(deliveries).where(deliveries.c.segment == segment).order_by(deliveries.c.day, deliveries.c.suffix)
        )
        with self._begin() as connection:
            return [
                DeliveryRow(row.segment, row.day, row.suffix, row.state, row.file_name, row.rows, row.size)
                for row in connection.execute(query)
            ]

    def _runs(self, query: Any) -> list[RunRow]:
        with self._begin() as connection:
            return [
                RunRow(
                    run_id=row.run_id,
                    job=row.job,
                    kind=row.kind,
                    trigger=row.trigger,
                    status=row.status,
                    started_at=_aware(row.started_at),
                    finished_at=_aware(row.finished_at) if row.finished_at else None,
                    counts=_counts(json.loads(row.counts)),
                    files=list(json.loads(row.files)),
                    error=row.error,
                    group_run_id=row.group_run_id,
                )
                for row in connection.execute(query)
            ]


def _highest_suffix(connection: Connection, segment: str, day: date) -> int | None:
    query = select(func.max(deliveries.c.suffix)).where(
        deliveries.c.segment == segment, deliveries.c.day == f"{day:%Y%m%d}"
    )
    highest = connection.execute(query).scalar()
    return None if highest is None else int(highest)


def _delivery_key(segment: str, day: date, suffix: int) -> tuple[Any, ...]:
    return deliveries.c.segment == segment, deliveries.c.day == f"{day:%Y%m%d}", deliveries.c.suffix == suffix


def _counts(value: Mapping[str, Any]) -> dict[str, int]:
    return {str(key): int(count) for key, count in value.items()}


def _to_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_text(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

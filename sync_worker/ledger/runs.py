"""Adapter: job runs and file deliveries, in the ledger database (SQLite embedded, PostgreSQL in production).

Implements the core's `JobRuns` and `Deliveries` ports. Three tables, made on first use:

    ct_sync_job_runs     one row per run: `JOB.N` id, kind, trigger, start/finish, status, counts, files, error;
                         `group_run_id` links a job's run to its group's run (jobs and schedules build on it)
    ct_sync_job_log      the run's own log lines, in order
    ct_sync_deliveries   one row per suffix reserved for a segment and UTC date, `delivered` once the file is
                         visible in the drop folder: CrowdTwist empties its folder, so only this table knows the
                         highest suffix already used

Numbers that must never repeat (a run's N, a delivery's suffix) are taken by "highest + 1" under a unique key: of
two processes that race, the loser's insert fails and it takes the next number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
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
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from config.redaction import redact_text
from sync_worker.core.errors import TransientError
from sync_worker.core.ports import RunResult, RunStatus
from sync_worker.ledger.sql import create_ledger_engine

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
        with self._begin() as connection:
            metadata.create_all(connection)

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

    # -- queries -------------------------------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRow | None:
        rows = self._runs(select(job_runs).where(job_runs.c.run_id == run_id))
        return rows[0] if rows else None

    def runs(self, *, job: str | None = None, statuses: Sequence[RunStatus] = (), limit: int = 50) -> list[RunRow]:
        query = select(job_runs).order_by(job_runs.c.id.desc()).limit(limit)
        if job is not None:
            query = query.where(job_runs.c.job == job)
        if statuses:
            query = query.where(job_runs.c.status.in_(statuses))
        return self._runs(query)

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


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""Adapter: what people and workers did to the flow, in the ledger database. Two tables, made on first use:

    ct_sync_operator_actions   every resubmit, replay and discard an operator asked for: who, from where (the
                               console, the command line, a script with the bearer token), what, on which member
                               or dead letter
    ct_sync_breaker_events     each worker's outage breaker: started, opened (with the cause), each probe
                               scheduled while open (paused since, the latest failure, the next probe's time),
                               closed, stopped

The breaker lives inside each worker process; recording its transitions here lets the console and `ct-sync status`
(other processes, perhaps on other hosts) show it for every worker at once, after restarts too, without reaching
into any worker.
Rows hold Member Numbers, letter ids and reasons, never personal data or secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, Text, delete, func, insert, select

from sync_worker.ledger.sql import add_missing_columns, create_ledger_engine, create_schema, transaction

metadata = MetaData()

Origin = Literal["console", "cli", "api"]
ActionKind = Literal["resubmit", "replay", "discard"]
BreakerEvent = Literal["started", "opened", "probe_scheduled", "closed", "stopped"]
_PAUSED: tuple[BreakerEvent, ...] = ("opened", "probe_scheduled")

operator_actions = Table(
    "ct_sync_operator_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("operator", String(100), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("member_number", String(100), index=True),
    Column("letter_id", String(64)),
    Column("detail", Text),
)

breaker_events = Table(
    "ct_sync_breaker_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("worker", String(200), nullable=False),
    Column("event", String(16), nullable=False),
    Column("cause", Text),
    Column("since", DateTime(timezone=True)),  # when syncing paused (schema 4)
    Column("next_probe_at", DateTime(timezone=True)),  # when CrowdTwist is probed next (schema 4)
)


@dataclass(frozen=True)
class Action:
    """One thing an operator did, to one member or one dead letter."""

    operator: str
    origin: Origin
    action: ActionKind
    at: datetime
    member_number: str | None = None
    letter_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class BreakerReport:
    """A worker's breaker as its latest event left it: while open, since when syncing is paused and when
    CrowdTwist is probed next (None from a worker of an older version)."""

    worker: str
    event: BreakerEvent
    at: datetime
    cause: str | None
    since: datetime | None = None
    next_probe_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.event in _PAUSED

    @property
    def paused_since(self) -> datetime | None:
        return (self.since or self.at) if self.open else None


class OperationsLog:
    """Operator actions and breaker events; one engine of its own on the ledger database."""

    def __init__(self, url: str) -> None:
        self._engine: Engine = create_ledger_engine(url, pool_size=2)
        create_schema(self._engine, metadata)
        add_missing_columns(self._engine, breaker_events)

    def close(self) -> None:
        self._engine.dispose()

    # -- operator actions --------------------------------------------------------------------------------------------

    def record_actions(self, actions: Sequence[Action]) -> None:
        if not actions:
            return
        with transaction(self._engine) as connection:
            connection.execute(
                insert(operator_actions),
                [
                    {
                        "at": action.at,
                        "operator": action.operator[:100],
                        "origin": action.origin,
                        "action": action.action,
                        "member_number": action.member_number,
                        "letter_id": action.letter_id,
                        "detail": action.detail,
                    }
                    for action in actions
                ],
            )

    def actions(self, *, member_number: str | None = None, limit: int = 50) -> list[Action]:
        """Newest first; only those about one member when it is named."""
        query = select(operator_actions).order_by(operator_actions.c.id.desc()).limit(limit)
        if member_number is not None:
            query = query.where(operator_actions.c.member_number == member_number)
        with transaction(self._engine) as connection:
            return [
                Action(
                    operator=row.operator,
                    origin=row.origin,
                    action=row.action,
                    at=_aware(row.at),
                    member_number=row.member_number,
                    letter_id=row.letter_id,
                    detail=row.detail,
                )
                for row in connection.execute(query)
            ]

    # -- breaker events ----------------------------------------------------------------------------------------------

    def record_breaker(
        self,
        worker: str,
        event: BreakerEvent,
        *,
        at: datetime,
        cause: str | None = None,
        since: datetime | None = None,
        next_probe_at: datetime | None = None,
    ) -> None:
        with transaction(self._engine) as connection:
            connection.execute(
                insert(breaker_events).values(
                    at=at, worker=worker, event=event, cause=cause, since=since, next_probe_at=next_probe_at
                )
            )

    def breakers(self) -> list[BreakerReport]:
        """Each worker's breaker as its latest event left it, oldest report first; workers that stopped are left
        out (a worker killed without a chance to say so stays, with the time it last reported)."""
        newest = select(func.max(breaker_events.c.id).label("id")).group_by(breaker_events.c.worker).subquery()
        query = (
            select(breaker_events)
            .join(newest, newest.c.id == breaker_events.c.id)
            .where(breaker_events.c.event != "stopped")
            .order_by(breaker_events.c.id)
        )
        with transaction(self._engine) as connection:
            return [
                BreakerReport(
                    row.worker,
                    row.event,
                    _aware(row.at),
                    row.cause,
                    since=_aware(row.since) if row.since is not None else None,
                    next_probe_at=_aware(row.next_probe_at) if row.next_probe_at is not None else None,
                )
                for row in connection.execute(query)
            ]

    def purge(self, *, older_than: datetime) -> int:
        with transaction(self._engine) as connection:
            purged = connection.execute(delete(operator_actions).where(operator_actions.c.at < older_than)).rowcount
            purged += connection.execute(delete(breaker_events).where(breaker_events.c.at < older_than)).rowcount
        return int(purged or 0)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

"""Adapter: the ledger. One row per attempt (SQLite by default, PostgreSQL in production), and the "last synced
state" per member that lets an unchanged member cost no CrowdTwist call. SQLAlchemy Core; tables made on first use.

The per-member statements are built once (building and cache-keying a statement costs more than running it), and
the writes of concurrent syncs share transactions (`group_commit`): one commit per batch instead of per member.

A member's state that could not be written (the database unreachable) leaves what the ledger knew of the member
stale: CrowdTwist may hold newer data than the row says. Such members are kept in memory and their rows deleted
first thing in the next transaction that succeeds (a read or a write), so no sync trusts the stale row: forgetting
only ever costs a call. Lost if the process dies before the database returns (then the stale row stays).

Rows hold Member Numbers, outcomes and reasons, never personal data or secrets.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    literal,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Executable

from config.redaction import redact_text
from config.settings import Settings
from sync_worker.core.errors import ConfigurationError, TransientError
from sync_worker.core.ports import AttemptRecord, KnownState, LatestOutcome, RefusedState, SyncedState
from sync_worker.core.privacy import RELEASED
from sync_worker.ledger.group_commit import GroupCommit

# Bump with a migration note when a column changes.
# 2: ct_sync_member_state (synced and refused state) replaces ct_sync_synced_state, which is left unused: the first
#    sync of each member after the upgrade costs one CrowdTwist call more, nothing else.
# 3: ct_sync_privacy_requests (privacy requests: access, delete, restore); the known-state read joins it.
# 4: ct_sync_breaker_events gains `since` and `next_probe_at` (nullable), added to an older table at start
#    (`add_missing_columns`); older rows have neither.
SCHEMA_VERSION = 4
_SCHEMA_ATTEMPTS = 5
metadata = MetaData()

attempts = Table(
    "ct_sync_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("member_number", String(100), nullable=False, index=True),
    Column("event_type", String(16), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("error", Text),
    Column("ct_user_id", Integer().with_variant(postgresql.BIGINT(), "postgresql")),
    Column("ct_calls", Integer, nullable=False, default=0),
    Column("duration_ms", Float, nullable=False, default=0.0),
    Column("attempt", Integer, nullable=False, default=1),
    Column("source", String(16), nullable=False, default=""),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
)

member_states = Table(
    "ct_sync_member_state",
    metadata,
    Column("member_number", String(100), primary_key=True),
    # What CrowdTwist last accepted …
    Column("payload_hash", String(64)),
    Column("ct_user_id", Integer().with_variant(postgresql.BIGINT(), "postgresql")),
    Column("synced_at", DateTime(timezone=True)),
    # … and the data it (or the pre-check) last refused, while the member stays as it is.
    Column("refused_hash", String(64)),
    Column("refused_reason", Text),
    Column("refused_at", DateTime(timezone=True)),
)
# Why syncing was paused, kept across restarts: a worker that starts after a pause for refused credentials tells
# the admins once CrowdTwist accepts the key again (the process that paused may be long gone).
pauses = Table(
    "ct_sync_pauses",
    metadata,
    Column("reason", String(32), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
    Column("cause", Text, nullable=False),
)
# Privacy requests (`ct-sync privacy …`): ids, times, statuses and CrowdTwist's refusals, never exported data. A
# `delete` row blocks its member's sync until its status releases it (`sync_worker.core.privacy.RELEASED`).
privacy_requests = Table(
    "ct_sync_privacy_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("member_number", String(100), index=True),
    Column("ct_user_id", Integer().with_variant(postgresql.BIGINT(), "postgresql")),
    Column("reference", String(200)),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("status", String(32), nullable=False, index=True),
    Column("outcome", Text),
)
_SYNCED_COLUMNS = ("payload_hash", "ct_user_id", "synced_at")
_REFUSED_COLUMNS = ("refused_hash", "refused_reason", "refused_at")

FAILURES = ("Data Error", "CT Failure", "OIC Failure", "Dead-lettered")
UNDECIDED = ("Retrying", "Unchanged")  # outcomes that leave a member's state as the attempt before left it
_MEMBERS_PER_QUERY = 500  # bound parameters of one IN list
NEVER_SENT = "never sent"
POSTGRES_EXTRA_MISSING = (
    "CTSYNC_LEDGER__URL is a PostgreSQL database, whose driver comes with the postgres extra: "
    "pip install 'ct-sync[postgres]'"
)
# The state a decisive attempt leaves on the member (what its CT Sync Status says, or that it was never sent).
MEMBER_STATE = {"Dead-lettered": "OIC Failure", "Skipped": NEVER_SENT}

_INSERT_ATTEMPT = insert(attempts)


def deletion_blocking(member_number: Any) -> Any:
    """The newest privacy deletion that blocks this member's sync (its row id), as a scalar subquery."""
    return (
        select(func.max(privacy_requests.c.id))
        .where(
            privacy_requests.c.member_number == member_number,
            privacy_requests.c.kind == "delete",
            privacy_requests.c.status.not_in(RELEASED),
        )
        .scalar_subquery()
    )


# One read: the member's state row (if any) beside its blocking deletion (if any), from a one-row anchor.
_ANCHOR = select(literal(1).label("one")).subquery()
_SELECT_STATE = select(member_states, deletion_blocking(bindparam("member_number")).label("deleted_by")).select_from(
    _ANCHOR.outerjoin(member_states, member_states.c.member_number == bindparam("member_number"))
)
_DELETE_STATE = delete(member_states).where(member_states.c.member_number == bindparam("member_number"))
_Write = tuple[Executable, list[dict[str, Any]]]  # a prebuilt statement and its rows of parameters


@dataclass(frozen=True)
class AttemptRow:
    at: datetime
    member_number: str
    event_type: str
    attempt: int
    outcome: str
    error: str | None
    ct_calls: int
    duration_ms: float
    source: str


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (psycopg2 is not a dependency)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_ledger_engine(url: str, *, pool_size: int = 4) -> Engine:
    """An engine on the ledger database: SQLite in WAL mode shared by threads, or a PostgreSQL pool.

    Raises `ConfigurationError` naming the `postgres` extra when PostgreSQL's driver is not installed."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(url, pool_size=pool_size, max_overflow=4, pool_pre_ping=True)
    except ImportError:  # psycopg is an optional dependency: the embedded SQLite ledger does without it
        raise ConfigurationError(POSTGRES_EXTRA_MISSING, system="ledger") from None


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction on the ledger database; a database failure leaves as TransientError naming the ledger."""
    try:
        with engine.begin() as connection:
            yield connection
    except SQLAlchemyError as exc:
        detail = redact_text(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        raise TransientError(f"ledger unavailable: {detail}", system="ledger") from None


def create_schema(engine: Engine, schema: MetaData) -> None:
    """Create the tables that are missing. Workers started together all try at once, and the check and the create are
    not one step: a loser sees "already exists" (SQLite) or a duplicate (PostgreSQL), and looks again."""
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            with engine.begin() as connection:
                schema.create_all(connection)
            return
        except SQLAlchemyError as exc:
            if attempt == _SCHEMA_ATTEMPTS - 1:
                detail = redact_text(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
                raise TransientError(f"ledger unavailable: {detail}", system="ledger") from None
            time.sleep(0.05 * (attempt + 1))  # the winner is creating: give it a moment


def add_missing_columns(engine: Engine, table: Table) -> None:
    """Add the nullable columns that a table made by an earlier version lacks: `create_all` makes missing tables,
    never missing columns. Workers started together may race; a loser finds the column there and goes on."""

    def present() -> set[str]:
        return {column["name"] for column in inspect(engine).get_columns(table.name)}

    try:
        missing = [column for column in table.columns if column.name not in present()]
        for column in missing:
            assert column.nullable, f"{table.name}.{column.name}: only nullable columns can be added to old rows"
            kind = column.type.compile(dialect=engine.dialect)
            try:
                with engine.begin() as connection:
                    connection.execute(sql_text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
            except SQLAlchemyError:
                if column.name not in present():
                    raise
    except SQLAlchemyError as exc:
        detail = redact_text(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        raise TransientError(f"ledger unavailable: {detail}", system="ledger") from None


class SqlLedger:
    """Implements the `Ledger`, `KnownStates` and `LatestOutcomes` ports."""

    def __init__(self, url: str, *, pool_size: int = 16) -> None:
        self._engine = create_ledger_engine(url, pool_size=pool_size)
        self._is_sqlite = self._engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock() if self._is_sqlite else None
        dialect_insert = sqlite.insert if self._is_sqlite else postgresql.insert
        # A sync replaces any refusal; a refusal leaves what CrowdTwist still holds.
        self._upsert_synced = _upsert_statement(dialect_insert, _SYNCED_COLUMNS + _REFUSED_COLUMNS)
        self._upsert_refused = _upsert_statement(dialect_insert, _REFUSED_COLUMNS)
        self._writes: GroupCommit[_Write] = GroupCommit(self._commit, failed=_failed)
        self._unsettled: set[str] = set()  # members whose state could not be written: forgotten at the next chance
        self._unsettled_lock = threading.Lock()
        create_schema(self._engine, metadata)

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _begin(self, *, write: bool = False) -> Iterator[Connection]:
        # SQLite takes one writer at a time and makes the others sleep in growing steps (its busy handler);
        # queueing our own writers on a lock hands the file over at once instead.
        lock = self._write_lock if write and self._write_lock is not None else nullcontext()
        with lock, transaction(self._engine) as connection:
            yield connection

    def _commit(self, writes: list[_Write]) -> None:
        """One transaction for a batch of writes; runs of one statement go as one executemany, in order."""
        with self._settling() as unsettled, self._begin(write=True) as connection:
            self._settle(connection, unsettled)
            for statement, run in itertools.groupby(writes, key=lambda write: write[0]):
                connection.execute(statement, [parameters for _, rows in run for parameters in rows])

    @contextmanager
    def _settling(self) -> Iterator[list[str]]:
        """The members to forget in the coming transaction: kept for a later one if it fails."""
        if not self._unsettled:  # the common case: no lock taken
            yield []
            return
        with self._unsettled_lock:
            unsettled = sorted(self._unsettled)
            self._unsettled.difference_update(unsettled)
        try:
            yield unsettled
        except BaseException:
            with self._unsettled_lock:
                self._unsettled.update(unsettled)
            raise

    def _settle(self, connection: Connection, unsettled: list[str]) -> None:
        """Forget members whose state could not be written before; first in a transaction, so that a state written
        later in it (a newer sync of the member) stands."""
        if unsettled:
            connection.execute(_DELETE_STATE, [{"member_number": number} for number in unsettled])

    def _unsettle(self, member_number: str) -> None:
        with self._unsettled_lock:
            self._unsettled.add(member_number)

    # -- Ledger port ---------------------------------------------------------------------------------------------

    def record(self, rows: Sequence[AttemptRecord]) -> None:
        if not rows:
            return
        self._writes.submit(
            (
                _INSERT_ATTEMPT,
                [
                    {
                        "event_id": row.event_id,
                        "member_number": row.member_number,
                        "event_type": row.event_type,
                        "outcome": row.outcome,
                        "error": row.error,
                        "ct_user_id": row.ct_user_id,
                        "ct_calls": row.ct_calls,
                        "duration_ms": row.duration_ms,
                        "attempt": row.attempt,
                        "source": row.source,
                        "at": row.at,
                    }
                    for row in rows
                ],
            )
        )

    # -- KnownStates port ----------------------------------------------------------------------------------------

    def known_state(self, member_number: str) -> KnownState:
        with self._settling() as unsettled, self._begin(write=bool(unsettled)) as connection:
            self._settle(connection, unsettled)
            row = connection.execute(_SELECT_STATE, {"member_number": member_number}).one()
        deleted_by = request_id(row.deleted_by) if row.deleted_by is not None else None
        synced = refused = None
        if row.payload_hash is not None and row.ct_user_id is not None and row.synced_at is not None:
            synced = SyncedState(row.payload_hash, int(row.ct_user_id), _aware(row.synced_at))
        if row.refused_hash is not None and row.refused_at is not None:
            refused = RefusedState(row.refused_hash, row.refused_reason or "", _aware(row.refused_at))
        return KnownState(synced=synced, refused=refused, deleted_by=deleted_by)

    def remember(self, member_number: str, state: SyncedState | RefusedState) -> None:
        if isinstance(state, SyncedState):
            values: dict[str, Any] = {
                "payload_hash": state.payload_hash,
                "ct_user_id": state.ct_user_id,
                "synced_at": state.synced_at,
                "refused_hash": None,
                "refused_reason": None,
                "refused_at": None,
            }
            statement = self._upsert_synced
        else:
            values = {"refused_hash": state.fingerprint, "refused_reason": state.reason, "refused_at": state.refused_at}
            statement = self._upsert_refused
        try:
            self._writes.submit((statement, [{"member_number": member_number, **values}]))
        except TransientError:
            self._unsettle(member_number)
            raise

    def forget(self, member_number: str) -> None:
        try:
            self._writes.submit((_DELETE_STATE, [{"member_number": member_number}]))
        except TransientError:
            self._unsettle(member_number)
            raise

    # -- queries for `ct-sync status` and `resubmit` ---------------------------------------------------------------

    def member_states(self) -> dict[str, int]:
        """Members per current state: what the newest attempt that decided something left on each member. A retry
        or an unchanged re-check decides nothing; a dead letter left OIC Failure on the member; a member only ever
        skipped (another program, not Individual, inactive) was never sent."""
        decided = select(attempts).where(attempts.c.outcome.not_in(UNDECIDED)).subquery()
        newest = (
            select(decided.c.member_number, func.max(decided.c.id).label("id"))
            .group_by(decided.c.member_number)
            .subquery()
        )
        query = (
            select(decided.c.outcome, func.count())
            .join(newest, newest.c.id == decided.c.id)
            .group_by(decided.c.outcome)
        )
        states: dict[str, int] = {}
        with self._begin() as connection:
            for outcome, count in connection.execute(query):
                state = MEMBER_STATE.get(outcome, outcome)
                states[state] = states.get(state, 0) + int(count)
        return states

    def latest_outcomes(self, member_numbers: Sequence[str]) -> dict[str, LatestOutcome]:
        """`LatestOutcomes` port: the newest decisive attempt of each of these members (as `member_states` counts
        them), so an alert names the state a member is in when it is sent."""
        found: dict[str, LatestOutcome] = {}
        numbers = sorted(set(member_numbers))
        for start in range(0, len(numbers), _MEMBERS_PER_QUERY):
            chunk = numbers[start : start + _MEMBERS_PER_QUERY]
            newest = (
                select(func.max(attempts.c.id).label("id"))
                .where(attempts.c.member_number.in_(chunk), attempts.c.outcome.not_in(UNDECIDED))
                .group_by(attempts.c.member_number)
                .subquery()
            )
            query = select(attempts.c.member_number, attempts.c.outcome, attempts.c.error, attempts.c.at).join(
                newest, newest.c.id == attempts.c.id
            )
            with self._begin() as connection:
                for row in connection.execute(query):
                    found[row.member_number] = LatestOutcome(row.outcome, row.error, _aware(row.at))
        return found

    def attempt_counts(self, *, since: datetime) -> dict[str, int]:
        query = select(attempts.c.outcome, func.count()).where(attempts.c.at >= since).group_by(attempts.c.outcome)
        with self._begin() as connection:
            return {outcome: int(count) for outcome, count in connection.execute(query)}

    def recent_failures(self, *, limit: int = 20) -> list[AttemptRow]:
        return self.failures(limit=limit)

    def failures(
        self, *, outcomes: Sequence[str] = FAILURES, text: str = "", limit: int = 50, offset: int = 0
    ) -> list[AttemptRow]:
        """Failed attempts, newest first: of these outcomes, whose Member Number or error contains `text` (in
        any case; `%` and `_` are plain characters)."""
        query = attempts.select().where(attempts.c.outcome.in_(outcomes))
        if text:
            query = query.where(
                attempts.c.member_number.icontains(text, autoescape=True)
                | attempts.c.error.icontains(text, autoescape=True)
            )
        return self._rows(query.order_by(attempts.c.id.desc()).limit(limit).offset(offset))

    def calls_since(self, since: datetime) -> int:
        """CrowdTwist calls the syncs spent since then."""
        query = select(func.coalesce(func.sum(attempts.c.ct_calls), 0)).where(attempts.c.at >= since)
        with self._begin() as connection:
            return int(connection.execute(query).scalar_one())

    def history(self, member_number: str, *, limit: int = 100) -> list[AttemptRow]:
        query = (
            attempts.select()
            .where(attempts.c.member_number == member_number)
            .order_by(attempts.c.id.desc())
            .limit(limit)
        )
        return self._rows(query)

    def resubmit_count(self, member_number: str) -> int:
        """Resubmits asked for (by hand or by a resubmit job); the worker's own after an outage are not counted."""
        query = select(func.count(func.distinct(attempts.c.event_id))).where(
            attempts.c.member_number == member_number, attempts.c.source == "resubmit"
        )
        with self._begin() as connection:
            return int(connection.execute(query).scalar_one())

    # -- pauses (the worker's supervisor) -----------------------------------------------------------------------

    def pause_began(self, reason: str, *, since: datetime, cause: str) -> None:
        """Remember a pause; one already remembered keeps its earlier start."""
        with self._begin(write=True) as connection:
            if connection.execute(select(pauses.c.reason).where(pauses.c.reason == reason)).first() is None:
                connection.execute(insert(pauses).values(reason=reason, since=since, cause=cause))

    def pause_since(self, reason: str) -> datetime | None:
        with self._begin() as connection:
            since = connection.execute(select(pauses.c.since).where(pauses.c.reason == reason)).scalar()
        return None if since is None else _aware(since)

    def end_pause(self, reason: str) -> bool:
        """Forget the pause; True for the one caller that ended it (of several workers, one tells)."""
        with self._begin(write=True) as connection:
            return bool(connection.execute(delete(pauses).where(pauses.c.reason == reason)).rowcount)

    def totals(self) -> dict[str, float]:
        query = select(func.count(), func.coalesce(func.sum(attempts.c.ct_calls), 0))
        with self._begin() as connection:
            count, calls = connection.execute(query).one()
        return {"attempts": int(count), "ct_calls": int(calls)}

    def purge(self, *, older_than: datetime) -> int:
        with self._begin(write=True) as connection:
            return int(connection.execute(delete(attempts).where(attempts.c.at < older_than)).rowcount or 0)

    def _rows(self, query: Any) -> list[AttemptRow]:
        with self._begin() as connection:
            return [
                AttemptRow(
                    at=_aware(row.at),
                    member_number=row.member_number,
                    event_type=row.event_type,
                    attempt=row.attempt,
                    outcome=row.outcome,
                    error=row.error,
                    ct_calls=row.ct_calls,
                    duration_ms=row.duration_ms,
                    source=row.source,
                )
                for row in connection.execute(query)
            ]


def request_id(row_id: int) -> str:
    """A privacy request's id as people see it: `PR-17`."""
    return f"PR-{row_id}"


def _upsert_statement(dialect_insert: Any, columns: tuple[str, ...]) -> Executable:
    """Insert the member's row, or set these columns on it."""
    statement = dialect_insert(member_states)
    return statement.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=[member_states.c.member_number],
        set_={key: statement.excluded[key] for key in columns},
    )


def _failed(error: Exception) -> TransientError:
    message = error.message if isinstance(error, TransientError) else f"ledger write failed: {type(error).__name__}"
    return TransientError(message, system="ledger")


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def build_ledger(settings: Settings) -> SqlLedger:
    if settings.ledger.url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Syncs hold a ledger connection only for a read or a group commit: a few suffice however many are in flight.
    return SqlLedger(settings.ledger_url, pool_size=min(settings.worker.concurrency, 16))

"""Adapter: the embedded SQLite stand-in for Siebel, the default member store (demo, local runs, tests).

It behaves as Siebel's REST API does where the worker can tell: members are documents keyed by Siebel field names,
the write-back fields are the configured ones, and *every* write bumps the `Updated` stamp, our own status
write-back included (Siebel's system field does the same). One connection per thread; WAL lets the intake, the
poller and the worker's threads share the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.settings import SiebelSettings
from sync_worker.core.errors import ConfigurationError, InvalidRecord, TransientError, UnknownField
from sync_worker.core.member import (
    MEMBER_NUMBER,
    ROW_ID,
    UPDATED,
    Member,
    SyncOutcome,
    fit_text,
    member_from_record,
    member_or_invalid,
    parse_siebel_datetime,
)
from sync_worker.core.ports import ChangeCursor, ChangePage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    row_id TEXT PRIMARY KEY,
    member_number TEXT NOT NULL UNIQUE,
    updated TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS members_updated ON members (updated, row_id);
"""


_INDEXED = ("updated", "row_id", "member_number")  # the columns `scan` may bound and order by
_SCAN_BATCH = 100


def stamp_of(text: str) -> str | None:
    """A Siebel time (`MM/DD/YYYY HH:MM:SS` or ISO) as the stand-in stores `Updated`, to compare as text."""
    moment = parse_siebel_datetime(text)
    return _stamp(moment) if isinstance(moment, datetime) else None


def _json_path(field: str) -> str:
    """The JSON path of a Siebel field name (they hold spaces and slashes: `$."M/F"`)."""
    if '"' in field:
        raise ConfigurationError(f"a Siebel field name cannot hold a double quote: {field!r}", system="siebel")
    return f'$."{field}"'


def _stamp(moment: datetime) -> str:
    """ISO UTC to the second, as Siebel keeps its stamps (so many rows share one): sorts as text in time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SqliteMemberStore:
    def __init__(
        self,
        path: Path,
        settings: SiebelSettings,
        *,
        page_size: int | None = None,
        on_call: Callable[[str], None] = lambda kind: None,
    ) -> None:
        """`on_call` hears each read or write the worker asks of the stand-in, as it would of Siebel's REST API."""
        self._on_call = on_call
        self.path = path
        self._settings = settings
        self._page_size = page_size or settings.page_size
        self._local = threading.local()
        # One writer at a time by our own lock: SQLite's busy handler would make the others sleep in growing steps.
        self._write_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connection() as db:
            db.executescript(_SCHEMA)

    def close(self) -> None:
        """Nothing to release: each thread's connection closes with its thread."""

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        try:
            yield db
        except sqlite3.OperationalError as exc:  # locked past the timeout, disk full: Siebel "unavailable"
            raise TransientError(f"member store unavailable: {exc}", system="siebel") from None

    # -- the MemberStore port -----------------------------------------------------------------------------------

    def get_member(self, member_number: str) -> Member | None:
        self._on_call("read")
        with self._connection() as db:
            row = db.execute("SELECT document FROM members WHERE member_number = ?", (member_number,)).fetchone()
        return self._member(json.loads(row[0])) if row else None

    def write_outcome(self, row_id: str, outcome: SyncOutcome) -> None:
        self._on_call("write")
        changes = {
            self._settings.status_field: str(outcome.status),
            self._settings.error_field: fit_text(outcome.error or "", self._settings.error_field_length),
            self._settings.sync_time_field: _stamp(outcome.at),
        }
        if outcome.ct_user_id is not None:
            changes[self._settings.ct_user_id_field] = str(outcome.ct_user_id)
        self.update_fields(row_id, changes)

    def find_by_status(
        self, statuses: Sequence[str], *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Member]:
        wanted = set(statuses)
        for document in self._documents():
            if document.get(self._settings.status_field) not in wanted:
                continue
            written = document.get(self._settings.sync_time_field) or ""
            if since is not None and written < _stamp(since):
                continue
            if until is not None and written >= _stamp(until):
                continue
            yield self._member(document)

    def changed_after(self, cursor: ChangeCursor | None) -> Iterator[ChangePage]:
        after = (_stamp(cursor.updated), cursor.row_id) if cursor else ("", "")
        while True:
            with self._connection() as db:
                rows = db.execute(
                    "SELECT updated, row_id, document FROM members WHERE (updated, row_id) > (?, ?) "
                    "ORDER BY updated, row_id LIMIT ?",
                    (*after, self._page_size),
                ).fetchall()
            if not rows:
                return
            last_updated, last_row_id = rows[-1][0], rows[-1][1]
            yield ChangePage(
                items=[member_or_invalid(json.loads(document), self._member) for _, _, document in rows],
                last=ChangeCursor(datetime.fromisoformat(last_updated.replace("Z", "+00:00")), last_row_id),
            )
            if len(rows) < self._page_size:
                return
            after = (last_updated, last_row_id)

    def count_changed_after(self, cursor: ChangeCursor | None) -> int:
        after = (_stamp(cursor.updated), cursor.row_id) if cursor else ("", "")
        with self._connection() as db:
            return int(db.execute("SELECT COUNT(*) FROM members WHERE (updated, row_id) > (?, ?)", after).fetchone()[0])

    def field_names(self) -> frozenset[str]:
        """The field names the stand-in's members hold, with Siebel's system fields and the configured write-back
        fields (the business component has those before any member holds a value)."""
        with self._connection() as db:
            rows = db.execute("SELECT DISTINCT key FROM members, json_each(members.document)").fetchall()
        return frozenset({*(str(key) for (key,) in rows), *self._always_known()})

    def has_field(self, field: str) -> bool:
        """Whether `field` is one of `field_names()`, asked cheaply: a field members hold is found in the first
        rows. An empty stand-in knows every field: nothing in it says otherwise."""
        if field in self._always_known():
            return True
        with self._connection() as db:
            held, any_member = db.execute(
                "SELECT EXISTS (SELECT 1 FROM members WHERE json_type(document, ?) IS NOT NULL), "
                "EXISTS (SELECT 1 FROM members)",
                (_json_path(field),),
            ).fetchone()
        return bool(held) or not any_member

    def find_matching(self, conditions: Sequence[tuple[str, str]]) -> Iterator[Member | InvalidRecord]:
        # A field no member holds would match nothing here; Siebel refuses it, and so does its stand-in.
        for field, _ in conditions:
            if not self.has_field(field):
                where = f"Siebel's {self._settings.business_component} (the SQLite stand-in)"
                raise UnknownField(field, known=self.field_names(), where=where)
        # Keyset paging on the unique Member Number: each page is one index range, so memory stays one page.
        # A missing field matches the empty value, as in Siebel's searchspec.
        where = "".join(" AND COALESCE(json_extract(document, ?), '') = ?" for _ in conditions)
        values = [part for field, value in conditions for part in (_json_path(field), value)]
        query = (
            f"SELECT member_number, document FROM members WHERE member_number > ?{where} "  # noqa: S608 - placeholders
            "ORDER BY member_number LIMIT ?"
        )
        after = ""
        while True:
            with self._connection() as db:
                rows = db.execute(query, (after, *values, self._page_size)).fetchall()
            for _, document in rows:
                yield member_or_invalid(json.loads(document), self._member)
            if len(rows) < self._page_size:
                return
            after = rows[-1][0]

    # -- the Siebel administrator's side (demo, tests) ----------------------------------------------------------

    def upsert_member(self, document: dict[str, Any], *, at: datetime | None = None) -> str:
        """Insert or edit a member as a Siebel user would; `Updated` is set to now (or `at`). Returns the row id."""
        stamp = _stamp(at or datetime.now(UTC))
        with self._write_lock, self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT document FROM members WHERE row_id = ?", (document[ROW_ID],)).fetchone()
                merged = {**(json.loads(row[0]) if row else {}), **document, UPDATED: stamp}
                db.execute(
                    "INSERT INTO members (row_id, member_number, updated, document) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (row_id) DO UPDATE SET member_number = excluded.member_number, "
                    "updated = excluded.updated, document = excluded.document",
                    (merged[ROW_ID], merged[MEMBER_NUMBER], stamp, json.dumps(merged)),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return str(merged[ROW_ID])

    def load_members(self, documents: list[dict[str, Any]], *, at: datetime | None = None) -> None:
        """Bulk insert (initial loads, benchmarks): one transaction; existing rows are replaced whole."""
        stamp = _stamp(at or datetime.now(UTC))
        rows = [
            (document[ROW_ID], document[MEMBER_NUMBER], stamp, json.dumps({**document, UPDATED: stamp}))
            for document in documents
        ]
        with self._write_lock, self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR REPLACE INTO members (row_id, member_number, updated, document) VALUES (?, ?, ?, ?)", rows
            )
            db.execute("COMMIT")

    def update_fields(self, row_id: str, changes: dict[str, str]) -> None:
        """PUT semantics: set these fields on the row, bump Updated; an unknown row id is ignored (idempotent)."""
        stamp = _stamp(datetime.now(UTC))
        with self._write_lock, self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT document FROM members WHERE row_id = ?", (row_id,)).fetchone()
                if row is not None:
                    document = {**json.loads(row[0]), **changes, UPDATED: stamp}
                    db.execute(
                        "UPDATE members SET updated = ?, document = ? WHERE row_id = ?",
                        (stamp, json.dumps(document), row_id),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def scan(
        self,
        *,
        where: Sequence[tuple[str, str, str]] = (),
        after_change: tuple[str, str] | None = None,
        order: Sequence[tuple[str, bool]] = (),
    ) -> Generator[dict[str, Any], None, None]:
        """Documents, read lazily, whose indexed columns meet `where` (column, op, value) and come after
        `after_change` (an (updated, row id) key), in `order` (column, descending): the REST emulator's way to
        answer a page from an index range, not from every row. Columns are `updated` (ISO UTC stamps, as stored),
        `row_id` and `member_number`; ops `=`, `>`, `>=`."""
        for column, op, _ in where:
            if column not in _INDEXED or op not in ("=", ">", ">="):
                raise ValueError(f"cannot scan on {column} {op}")
        for column, _ in order:
            if column not in _INDEXED:
                raise ValueError(f"cannot order by {column}")
        conditions = [f"{column} {op} ?" for column, op, _ in where]
        values = [value for _, _, value in where]
        if after_change is not None:
            conditions.append("(updated, row_id) > (?, ?)")
            values += after_change
        ordering = ", ".join(f"{column} {'DESC' if descending else 'ASC'}" for column, descending in order)
        query = f"SELECT document FROM members WHERE {' AND '.join(conditions) or '1'}"  # noqa: S608 - names checked
        if ordering:
            query += f" ORDER BY {ordering}"
        with self._connection() as db:
            cursor = db.execute(query, values)
            try:
                while rows := cursor.fetchmany(_SCAN_BATCH):
                    for (document,) in rows:
                        yield json.loads(document)
            finally:
                cursor.close()  # a page read, the rest left: the read ends here, not when collected

    def document(self, member_number: str) -> dict[str, Any] | None:
        """The raw Siebel record, write-back fields included."""
        with self._connection() as db:
            row = db.execute("SELECT document FROM members WHERE member_number = ?", (member_number,)).fetchone()
        return json.loads(row[0]) if row else None

    def documents(self) -> list[dict[str, Any]]:
        return list(self._documents())

    def _documents(self) -> Iterator[dict[str, Any]]:
        with self._connection() as db:
            rows = db.execute("SELECT document FROM members ORDER BY member_number").fetchall()
        for (document,) in rows:
            yield json.loads(document)

    def _always_known(self) -> set[str]:
        return {ROW_ID, MEMBER_NUMBER, UPDATED, *self._settings.write_back_fields}

    def _member(self, document: dict[str, Any]) -> Member:
        return member_from_record(
            document, ct_user_id_field=self._settings.ct_user_id_field, status_field=self._settings.status_field
        )

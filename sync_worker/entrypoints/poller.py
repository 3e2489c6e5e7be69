"""Entrypoint logic: the change poller. Publishes an event for every member changed in Siebel since the last run.

It reads Siebel's change order, (Updated, Id), by key: every write moves a row to the end of that order (Siebel
bumps Updated, our own write-backs included), so a row is either read where it stood or read again later, never
skipped. Where it got to is kept in a small JSON file, written atomically after the broker confirmed each page:

    {"cursor": {"updated": "...", "row_id": "..."}, "initial_load_complete": true}

The first run, with no file, publishes the whole program as enrolls (the initial load); an interrupted initial load
resumes where it stopped, still as enrolls (1 CrowdTwist call per new member, not an update answered 404 and then a
create). Later runs re-read a small overlap before the cursor (clock skew between Siebel's app servers, a write in
the very second that was read); the duplicates are harmless, as the worker syncs state, not deltas.

A record that is no valid member (a malformed date) does not stop the poll: its event goes out like any other, and
the worker writes the Data Error onto the member, once while it stays as it is.

Before reading, the poll asks the store how many records wait (Siebel's `Total-Record-Count`), so progress can say
"N of M". A dry run reads and counts the same way, publishing nothing and leaving the cursor where it was.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from sync_worker.core.errors import InvalidRecord
from sync_worker.core.member import Member, skip_reason
from sync_worker.core.messages import EventType, MemberEvent
from sync_worker.core.ports import ChangeCursor, EventPublisher, MemberStore

log = structlog.get_logger("ct_sync.poller")
NO_MEMBER_NUMBER = "unreadable record without a Member Number"


@dataclass(frozen=True)
class PollState:
    cursor: ChangeCursor | None
    initial_load_complete: bool


@dataclass
class PollReport:
    published: int = 0  # in a dry run: would be published
    skipped: Counter[str] = field(default_factory=Counter)
    read: int = 0  # records read, published or skipped
    total: int | None = None  # records to read, as counted before the first page (None: the store cannot tell)
    dry_run: bool = False
    cursor: ChangeCursor | None = None
    initial_load: bool = False
    resumed: bool = False  # an initial load taken up where an earlier run stopped
    unreadable: int = 0  # records published though they are no valid member (the worker writes their Data Error)


class Poller:
    def __init__(
        self,
        store: MemberStore,
        publisher: EventPublisher,
        *,
        watermark_path: Path,
        overlap: timedelta,
        program_id: str | None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._path = watermark_path
        self._overlap = overlap
        self._program_id = program_id

    def read_state(self) -> PollState | None:
        if not self._path.exists():
            return None
        document = json.loads(self._path.read_text())
        if "watermark" in document:  # the file of earlier versions: a finished load, a plain watermark
            return PollState(ChangeCursor(datetime.fromisoformat(document["watermark"]), ""), True)
        cursor = document.get("cursor")
        return PollState(
            ChangeCursor(datetime.fromisoformat(cursor["updated"]), cursor["row_id"]) if cursor else None,
            bool(document.get("initial_load_complete")),
        )

    def run_once(
        self, progress: Callable[[PollReport], None] = lambda report: None, *, dry_run: bool = False
    ) -> PollReport:
        """One pass; `progress` is called after each page (confirmed by the broker, unless a dry run)."""
        state = self.read_state()
        initial = state is None or not state.initial_load_complete
        report = PollReport(
            cursor=state.cursor if state else None,
            initial_load=initial,
            resumed=initial and state is not None,
            dry_run=dry_run,
        )
        start = report.cursor
        if start is not None and not initial:
            start = ChangeCursor(start.updated - self._overlap, "")
        report.total = self._store.count_changed_after(start)
        event_type: EventType = "enroll" if initial else "update"
        for page in self._store.changed_after(start):
            events = [event for item in page.items if (event := self._event(item, event_type, report)) is not None]
            report.read += len(page.items)
            if dry_run:
                report.published += len(events)
            else:
                report.published += self._publisher.publish_many(events)
                # Confirmed up to here: the cursor may move (never backwards).
                if report.cursor is None or page.last > report.cursor:
                    report.cursor = page.last
                self._write_state(PollState(report.cursor, initial_load_complete=not initial))
            progress(report)
        if not dry_run:
            self._write_state(PollState(report.cursor, initial_load_complete=True))
        log.info(
            "poll_finished",
            dry_run=dry_run,
            read=report.read,
            published=report.published,
            skipped=sum(report.skipped.values()),
            unreadable=report.unreadable,
            initial_load=report.initial_load,
            resumed=report.resumed,
            cursor=report.cursor.updated.isoformat() if report.cursor else None,
        )
        return report

    def _event(self, item: Member | InvalidRecord, event_type: EventType, report: PollReport) -> MemberEvent | None:
        if isinstance(item, InvalidRecord):
            if item.member_number is None:
                log.warning("poll_record_unreadable", row_id=item.row_id)
                report.skipped[NO_MEMBER_NUMBER] += 1
                return None
            report.unreadable += 1
            return MemberEvent(
                event_type=event_type, member_number=item.member_number, row_id=item.row_id, source="poll"
            )
        reason = skip_reason(item, program_id=self._program_id)
        if reason is not None:
            report.skipped[reason] += 1
            return None
        return MemberEvent(
            event_type=event_type,
            member_number=item.member_number,
            row_id=item.row_id,
            updated=item.updated,
            source="poll",
        )

    def _write_state(self, state: PollState) -> None:
        cursor = state.cursor
        document = {
            "cursor": {"updated": cursor.updated.isoformat(), "row_id": cursor.row_id} if cursor else None,
            "initial_load_complete": state.initial_load_complete,
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document))
        os.replace(temporary, self._path)  # atomic: a crash leaves the old or the new, never half

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

A read Siebel cannot answer now (a 5xx, a timeout: `TransientError`) does not end the run at once: the page is read
again, from the key of the last page confirmed, with backoff (4 tries over about 30 s by default), before the run
fails. Nothing read before is lost or published twice for it, and the cursor still moves only after a confirm.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import structlog
import tenacity

from sync_worker.core.errors import InvalidRecord, TransientError
from sync_worker.core.member import Member, skip_reason
from sync_worker.core.messages import EventType, MemberEvent
from sync_worker.core.ports import ChangeCursor, ChangePage, EventPublisher, MemberStore

log = structlog.get_logger("ct_sync.poller")
NO_MEMBER_NUMBER = "unreadable record without a Member Number"
READ_TRIES = 4  # of one page (or the count), before the run fails
READ_BACKOFF = 4.0  # seconds before the second try; doubling: 4 + 8 + 16 s, about 30 s with jitter
T = TypeVar("T")


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
        read_tries: int = READ_TRIES,
        read_backoff: float = READ_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._path = watermark_path
        self._overlap = overlap
        self._program_id = program_id
        self._read_tries = read_tries
        self._read_backoff = read_backoff
        self._sleep = sleep  # tests wait for nothing

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
        report.total = self._read(lambda: self._store.count_changed_after(start), what="count")
        event_type: EventType = "enroll" if initial else "update"
        for page in self._pages(start):
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

    def _pages(self, start: ChangeCursor | None) -> Iterator[ChangePage]:
        """The store's pages after `start`; a page it cannot give now is asked for again (see the module docstring).
        A page is asked for only once the one before was handled, so reading again from the last page's key
        starts right after what was confirmed."""
        position = start
        pages: Iterator[ChangePage] | None = None

        def next_page() -> ChangePage | None:
            nonlocal pages
            if pages is None:
                pages = iter(self._store.changed_after(position))
            try:
                return next(pages)
            except StopIteration:
                return None
            except TransientError:
                pages = None  # a generator that raised is finished: a new read starts after `position`
                raise

        while (page := self._read(next_page, what="page")) is not None:
            yield page
            position = page.last

    def _read(self, read: Callable[[], T], *, what: str) -> T:
        """One read of Siebel, tried again with backoff while Siebel cannot answer."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TransientError),
            stop=tenacity.stop_after_attempt(self._read_tries),
            wait=tenacity.wait_exponential(multiplier=self._read_backoff) + tenacity.wait_random(0, 1),
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(what, state),
            reraise=True,
        )
        return retrying(read)

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


def _log_retry(what: str, state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "poll_read_retry",
        read=what,
        attempt=state.attempt_number,
        error=getattr(error, "message", type(error).__name__),
        wait_s=round(state.next_action.sleep, 1) if state.next_action else None,
    )

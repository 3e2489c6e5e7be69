"""Entrypoint logic: the change poller. Publishes an event for every member changed in Siebel since the watermark.

The watermark is the newest `Updated` stamp published, kept in a small JSON file and advanced only after the
broker confirmed every event up to it. Each run re-reads a small overlap before the watermark (clock skew between
Siebel's app servers); the duplicates this makes are harmless, as the worker syncs state, not deltas. The first run,
with no watermark, publishes the whole program: the initial load.
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

from sync_worker.core.member import skip_reason
from sync_worker.core.messages import MemberEvent
from sync_worker.core.ports import EventPublisher, MemberStore

log = structlog.get_logger("ct_sync.poller")


@dataclass
class PollReport:
    published: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    watermark: datetime | None = None
    initial_load: bool = False


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
        self._watermark_path = watermark_path
        self._overlap = overlap
        self._program_id = program_id

    def read_watermark(self) -> datetime | None:
        if not self._watermark_path.exists():
            return None
        return datetime.fromisoformat(json.loads(self._watermark_path.read_text())["watermark"])

    def run_once(self, progress: Callable[[int], None] = lambda published: None) -> PollReport:
        watermark = self.read_watermark()
        report = PollReport(watermark=watermark, initial_load=watermark is None)
        since = watermark - self._overlap if watermark else None
        event_type = "enroll" if report.initial_load else "update"
        for page in self._store.changed_since(since):
            events = []
            for member in page:
                reason = skip_reason(member, program_id=self._program_id)
                if reason is not None:
                    report.skipped[reason] += 1
                    continue
                events.append(
                    MemberEvent(
                        event_type=event_type,
                        member_number=member.member_number,
                        row_id=member.row_id,
                        updated=member.updated,
                        source="poll",
                    )
                )
            report.published += self._publisher.publish_many(events)
            newest = max(member.updated for member in page)
            # Confirmed up to here: the watermark may move (never backwards).
            if report.watermark is None or newest > report.watermark:
                report.watermark = newest
                self._write_watermark(newest)
            progress(report.published)
        log.info(
            "poll_finished",
            published=report.published,
            skipped=sum(report.skipped.values()),
            initial_load=report.initial_load,
            watermark=report.watermark.isoformat() if report.watermark else None,
        )
        return report

    def _write_watermark(self, watermark: datetime) -> None:
        self._watermark_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._watermark_path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"watermark": watermark.isoformat()}))
        os.replace(temporary, self._watermark_path)  # atomic: a crash leaves the old or the new, never half

"""Retention: history older than `CTSYNC_LEDGER__RETENTION` is purged, attempts and job runs (with their logs
and the deliveries of past days) alike; the worker does it hourly, and so does the leading scheduler."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import structlog

from sync_worker.core.errors import CtSyncError

log = structlog.get_logger("ct_sync.ledger")


class Purgeable(Protocol):
    def purge(self, *, older_than: datetime) -> int: ...


def purge_history(*ledgers: Purgeable, older_than: datetime) -> None:
    """Purge; a failure is logged and left for the next hour (history is kept a little longer, nothing worse)."""
    for ledger in ledgers:
        try:
            purged = ledger.purge(older_than=older_than)
        except CtSyncError as exc:
            log.warning("ledger_purge_failed", error=exc.message)
            continue
        if purged:
            log.info("ledger_purged", rows=purged, table=type(ledger).__name__)

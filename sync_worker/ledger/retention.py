"""Retention: history older than `CTSYNC_LEDGER__RETENTION` is purged (the worker does it hourly)."""

from __future__ import annotations

from datetime import datetime

import structlog

from sync_worker.core.errors import CtSyncError
from sync_worker.ledger.sql import SqlLedger

log = structlog.get_logger("ct_sync.ledger")


def purge_history(ledger: SqlLedger, *, older_than: datetime) -> None:
    """Purge; a failure is logged and left for the next hour (history is kept a little longer, nothing worse)."""
    try:
        purged = ledger.purge(older_than=older_than)
    except CtSyncError as exc:
        log.warning("ledger_purge_failed", error=exc.message)
        return
    if purged:
        log.info("ledger_purged", rows=purged)

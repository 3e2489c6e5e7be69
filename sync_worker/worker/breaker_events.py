"""The worker tells the ledger about its outage breaker: started, each transition (opened with the cause, closed),
each probe scheduled while it is open (paused since, the latest failure, the next probe's time), stopped. The
console and `ct-sync status` read these rows to show every worker's breaker (`ledger.operations`).

Transitions are told on the consumer's connection thread, which must never wait on a database: writes go to one
thread of their own, in order, and a failed write is logged and dropped (the breaker itself is unaffected).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import structlog

from sync_worker.core.errors import CtSyncError
from sync_worker.ledger.operations import BreakerEvent, OperationsLog
from sync_worker.worker.breaker import Pause, Transition

log = structlog.get_logger("ct_sync.breaker_events")


def worker_name() -> str:
    """This worker process as the console names it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class BreakerEvents:
    """Owns its `OperationsLog`: `stopped()` closes it."""

    def __init__(self, operations: OperationsLog, *, clock: Callable[[], datetime], worker: str | None = None) -> None:
        self._operations = operations
        self._clock = clock
        self.worker = worker or worker_name()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ct-sync-breaker-events")

    def started(self) -> None:
        self._submit("started", None)

    def transition(self, transition: Transition) -> None:
        self._submit(transition.kind, transition.cause, since=transition.outage_started)

    def probe_scheduled(self, pause: Pause) -> None:
        self._submit("probe_scheduled", pause.cause, since=pause.since, next_probe_at=pause.next_probe_at)

    def stopped(self) -> None:
        """The last event: waits for every write, then closes the log."""
        self._submit("stopped", None)
        self._writer.shutdown(wait=True)
        self._operations.close()

    def _submit(
        self,
        event: BreakerEvent,
        cause: str | None,
        *,
        since: datetime | None = None,
        next_probe_at: datetime | None = None,
    ) -> None:
        self._writer.submit(self._write, event, cause, self._clock(), since, next_probe_at)

    def _write(
        self,
        event: BreakerEvent,
        cause: str | None,
        at: datetime,
        since: datetime | None,
        next_probe_at: datetime | None,
    ) -> None:
        try:
            self._operations.record_breaker(
                self.worker, event, at=at, cause=cause, since=since, next_probe_at=next_probe_at
            )
        except CtSyncError as exc:
            log.warning("breaker_event_not_recorded", breaker_event=event, error=exc.message)

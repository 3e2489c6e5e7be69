"""The worker tells the ledger about its outage breaker: started, each transition (opened with the cause, closed),
stopped. The console reads these rows to show every worker's breaker (`ledger.operations`).

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
from sync_worker.worker.breaker import Transition

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
        self._submit(transition.kind, transition.cause)

    def stopped(self) -> None:
        """The last event: waits for every write, then closes the log."""
        self._submit("stopped", None)
        self._writer.shutdown(wait=True)
        self._operations.close()

    def _submit(self, event: BreakerEvent, cause: str | None) -> None:
        self._writer.submit(self._write, event, cause, self._clock())

    def _write(self, event: BreakerEvent, cause: str | None, at: datetime) -> None:
        try:
            self._operations.record_breaker(self.worker, event, at=at, cause=cause)
        except CtSyncError as exc:
            log.warning("breaker_event_not_recorded", breaker_event=event, error=exc.message)

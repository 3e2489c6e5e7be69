"""Sending alerts without ever slowing a sync: a background thread with a bounded queue, retrying while the SMTP
server is down, logging each failure and the eventual delivery.

Given the alert policy, the same thread asks it once a second for what is due: a digest is composed as it goes
out, reading each member's current state from the ledger here, never on the consumer's thread or a sync's.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from sync_worker.core.errors import CtSyncError
from sync_worker.core.ports import Alert, Mailer

log = structlog.get_logger("ct_sync.alerts")
_FIRST_RETRY = 5.0
_MAX_RETRY = 300.0
_ASK_EVERY = 1.0  # seconds between asking the policy for due alerts


class AlertSource(Protocol):
    """What is due to be sent now (the alert policy); with `flush`, everything still held."""

    def due(self, *, flush: bool = False) -> list[Alert]: ...


class AlertDispatcher:
    def __init__(
        self,
        mailer: Mailer,
        *,
        capacity: int = 100,
        wait: Callable[[threading.Event, float], bool] = lambda event, seconds: event.wait(seconds),
        source: AlertSource | None = None,
    ) -> None:
        self._mailer = mailer
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=capacity)
        self._wait = wait  # tests shorten the retry waits
        self._source = source
        self._asked = float("-inf")
        self._asking = threading.Lock()  # a flush waits for an ask under way: its alerts are queued before the drain
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ct-sync-alerts", daemon=True)
        self._thread.start()

    def submit(self, alert: Alert) -> None:
        """Queue an alert; never blocks. When the queue is full the oldest alert gives way."""
        while True:
            try:
                self._queue.put_nowait(alert)
                return
            except queue.Full:
                try:
                    dropped = self._queue.get_nowait()
                    self._queue.task_done()
                    log.error("alert_dropped", subject=dropped.subject)
                except queue.Empty:
                    pass

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until what is queued is delivered (at most `timeout`)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.02)

    def flush(self, timeout: float = 10.0) -> None:
        """Everything the source still holds, digests included, queued now; then wait until what is queued is
        delivered (at most `timeout`)."""
        self._collect(flush=True)
        self.drain(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is held and queued (within `timeout`), then stop."""
        self.flush(timeout)
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._ask()
            try:
                alert = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._deliver(alert)
            self._queue.task_done()

    def _ask(self) -> None:
        if time.monotonic() - self._asked >= _ASK_EVERY:
            self._asked = time.monotonic()
            self._collect(flush=False)

    def _collect(self, *, flush: bool) -> None:
        if self._source is None:
            return
        with self._asking:
            try:
                due = self._source.due(flush=flush)
            except Exception:  # the top of this thread (or of a shutdown): alerts may be late, the worker goes on
                log.exception("alerts_not_composed")
                return
            for alert in due:
                self.submit(alert)

    def _deliver(self, alert: Alert) -> None:
        delay = _FIRST_RETRY
        attempt = 1
        while True:
            try:
                self._mailer.send(alert)
            except CtSyncError as exc:
                log.warning("alert_send_failed", subject=alert.subject, attempt=attempt, error=exc.message)
                if self._wait(self._stopping, delay):
                    log.error("alert_undelivered_at_shutdown", subject=alert.subject)
                    return
                delay, attempt = min(delay * 2, _MAX_RETRY), attempt + 1
                continue
            log.info("alert_sent", subject=alert.subject, attempts=attempt)
            return

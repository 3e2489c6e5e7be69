"""The outage breaker: when CrowdTwist keeps failing, stop starting syncs, probe with backoff, resume on success.

Pure state machine (clock injected), fed with the outcome of every sync on the consumer's thread:

    closed ──(threshold consecutive CrowdTwist outages, or credentials refused)──▶ open
    open ──(probe time reached: allow() lets exactly one sync through)──▶ half-open
    half-open ──(CrowdTwist answered)──▶ closed          half-open ──(still failing)──▶ open, longer backoff

Only CrowdTwist's own failures count: a Siebel outage or a member's bad data says nothing about CrowdTwist.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sync_worker.core.errors import CtSyncError, NotAuthorized, TransientError


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class Transition:
    kind: Literal["opened", "closed"]
    cause: str
    outage_started: datetime
    credentials: bool = False  # opened because CrowdTwist refused our key


class Breaker:
    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        threshold: int = 5,
        first_backoff: timedelta = timedelta(seconds=5),
        max_backoff: timedelta = timedelta(minutes=5),
    ) -> None:
        self._clock = clock
        self._threshold = threshold
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._lock = threading.Lock()  # allow() is asked from pool threads, record() told on the connection thread
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._backoff = first_backoff
        self._next_probe: datetime | None = None
        self._outage_started: datetime | None = None
        self._credentials = False

    def allow(self) -> bool:
        """May a sync start now? While open, exactly one probe is let through when its time comes."""
        with self._lock:
            return self._allow()

    def _allow(self) -> bool:
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN and self._next_probe is not None and self._clock() >= self._next_probe:
            self.state = BreakerState.HALF_OPEN
            return True
        return False

    def record(self, error: CtSyncError | None, *, calls: int) -> Transition | None:
        """Feed one sync's result; returns a transition when the state changed in a way worth an alert."""
        with self._lock:
            return self._record(error, calls=calls)

    def _record(self, error: CtSyncError | None, *, calls: int) -> Transition | None:
        if isinstance(error, NotAuthorized) and error.system == "crowdtwist":
            return self._fail(error, credentials=True)
        if isinstance(error, TransientError) and error.system == "crowdtwist":
            return self._fail(error, credentials=False)
        if error is None and calls > 0:  # CrowdTwist answered
            return self._succeed()
        if self.state is BreakerState.HALF_OPEN:  # the probe told us nothing about CrowdTwist: probe again
            self.state = BreakerState.OPEN
        return None

    def _fail(self, error: CtSyncError, *, credentials: bool) -> Transition | None:
        self._failures += 1
        now = self._clock()
        if self.state is BreakerState.HALF_OPEN:
            self._backoff = min(self._backoff * 2, self._max_backoff)
            self._open(now)
            return None
        if self.state is BreakerState.OPEN:
            return None
        if credentials or self._failures >= self._threshold:
            self._outage_started = now
            self._credentials = credentials
            self._backoff = min(self._first_backoff, self._max_backoff)
            self._open(now)
            return Transition("opened", error.message, now, credentials=credentials)
        return None

    def _open(self, now: datetime) -> None:
        self.state = BreakerState.OPEN
        self._next_probe = now + self._backoff

    def _succeed(self) -> Transition | None:
        self._failures = 0
        if self.state is BreakerState.CLOSED:
            return None
        started = self._outage_started or self._clock()
        self.state = BreakerState.CLOSED
        self._next_probe = None
        self._outage_started = None
        return Transition("closed", "CrowdTwist answered again", started, credentials=self._credentials)

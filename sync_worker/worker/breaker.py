"""The outage breaker: when CrowdTwist keeps failing, stop starting syncs, probe with backoff, resume on success.

Pure state machine (clock and jitter injected), fed with the outcome of every sync on the consumer's thread:

    closed ──(threshold consecutive CrowdTwist outages, or credentials refused)──▶ open
    open ──(probe time reached: allow() lets exactly one sync through, or claim_probe() one probe call)──▶ half-open
    half-open ──(CrowdTwist answered)──▶ closed          half-open ──(still failing)──▶ open, longer backoff

The wait before a probe doubles from `first_backoff` up to `max_backoff`, and each wait is drawn between half and
all of it (jitter: workers that saw one outage begin together do not probe in step). `max_backoff` is the promise:
CrowdTwist back, the next probe comes at most that long after the last failed one, and never more than one probe
is in flight. `pause` says since when syncing is paused and when the next probe is due, for the log, the ledger,
`ct-sync status` and the console.

Only CrowdTwist's own failures count: a Siebel outage or a member's bad data says nothing about CrowdTwist.
"""

from __future__ import annotations

import enum
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sync_worker.core.errors import CtSyncError, NotAuthorized, TransientError

_JITTER = 0.5  # a wait is drawn from [backoff × (1 - _JITTER), backoff]


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


@dataclass(frozen=True)
class Pause:
    """Syncing paused: since when, the latest failure, and when CrowdTwist is probed next (while half-open, the
    probe in flight was due then)."""

    since: datetime
    cause: str
    next_probe_at: datetime
    credentials: bool = False


class Breaker:
    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        threshold: int = 5,
        first_backoff: timedelta = timedelta(seconds=5),
        max_backoff: timedelta = timedelta(seconds=20),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._clock = clock
        self._threshold = threshold
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._jitter = jitter  # in [0, 1): tests pin it
        self._lock = threading.Lock()  # allow() is asked from pool threads, record() told on the connection thread
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._backoff = first_backoff
        self._next_probe: datetime | None = None
        self._outage_started: datetime | None = None
        self._cause = ""
        self._credentials = False

    @property
    def pause(self) -> Pause | None:
        """While open or half-open: since when, why, and the next probe; None while closed."""
        with self._lock:
            if self.state is BreakerState.CLOSED or self._next_probe is None or self._outage_started is None:
                return None
            return Pause(self._outage_started, self._cause, self._next_probe, credentials=self._credentials)

    def allow(self) -> bool:
        """May a sync start now? While open, exactly one probe is let through when its time comes."""
        with self._lock:
            return self._allow()

    def claim_probe(self) -> bool:
        """While open and the probe time has come, take the one probe for a call of the caller's own (no member
        needs to be waiting); the caller must `record` its result. False while closed, half-open or not yet due."""
        with self._lock:
            return self.state is BreakerState.OPEN and self._allow()

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
            self._cause = error.message
            self._backoff = min(self._backoff * 2, self._max_backoff)
            self._open(now)
            return None
        if self.state is BreakerState.OPEN:
            return None
        if credentials or self._failures >= self._threshold:
            self._outage_started = now
            self._cause = error.message
            self._credentials = credentials
            self._backoff = min(self._first_backoff, self._max_backoff)
            self._open(now)
            return Transition("opened", error.message, now, credentials=credentials)
        return None

    def _open(self, now: datetime) -> None:
        self.state = BreakerState.OPEN
        self._next_probe = now + self._backoff * (1 - _JITTER * self._jitter())

    def _succeed(self) -> Transition | None:
        self._failures = 0
        if self.state is BreakerState.CLOSED:
            return None
        started = self._outage_started or self._clock()
        self.state = BreakerState.CLOSED
        self._next_probe = None
        self._outage_started = None
        return Transition("closed", "CrowdTwist answered again", started, credentials=self._credentials)

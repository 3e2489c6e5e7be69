"""Client-side pacing: a leaky bucket (GCRA) at `requests_per_minute × budget_share`.

Each `acquire()` reserves the next free slot in a timeline of slots, then sleeps until the slot comes, so N threads
are admitted at exactly the rate, never in a burst. The timeline is this process's (`LocalSlots`), or one shared by
every worker process through Redis (`crowdtwist_client.budget.RedisSlots`): then all of them together stay under the
budget.

The rate adapts to a CrowdTwist whose real limit is lower than configured. A 429 halves the rate (once a second at
most: requests already in flight come back 429 together, and they are one signal), as far down as the 429s demand,
to a floor of one call per second, and remembers the rate that drew it as the ceiling. While no 429 comes, the rate
climbs back quickly to 90 % of that ceiling and holds there; after a minute without a 429 it is logged as settled,
and only then probes higher, slowly (half a percent of the configured rate per second), until a 429 sets a new
ceiling or the configured rate is reached again. So a limit below the setting costs a 429 every minute or two, not a
steady share of refusals.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import structlog

log = structlog.get_logger("ct_sync.pacing")

_FLOOR_PER_SECOND = 1.0
_HALVING_COOLDOWN = 1.0  # seconds: 429s closer together than this are one signal
_BELOW_CEILING = 0.9  # the quick climb stops at this share of the rate that drew the last 429
_CLIMB_SHARE_PER_SECOND = 0.05  # of the ceiling, per second, on the way back up to it
_SETTLED_AFTER = 60.0  # seconds without a 429 at the held rate before it is called settled and probing begins
_PROBE_SHARE_PER_SECOND = 0.005  # of the configured rate, per second, when probing above the ceiling


class Slots(Protocol):
    """A timeline of call slots."""

    def reserve(self, interval: float) -> float:
        """Take the next free slot, the one after it `interval` seconds later; the seconds until the slot."""
        ...

    def close(self) -> None: ...


class LocalSlots:
    """This process's own timeline, shared by its threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._next_slot = 0.0

    def reserve(self, interval: float) -> float:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + interval
        return slot - now

    def close(self) -> None:
        """Nothing held."""


class Pacer:
    def __init__(
        self,
        requests_per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        slots: Slots | None = None,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self._configured = requests_per_minute / 60.0  # calls per second
        self._floor = min(_FLOOR_PER_SECOND, self._configured)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots = slots or LocalSlots(clock)
        self._rate = self._configured  # in force now
        self._ceiling = self._configured  # the rate that drew the last 429
        self._updated_at = clock()
        self._limited_at: float | None = None  # when the last 429 lowered the rate; None: never, or recovered
        self._settled = False

    @property
    def rate_per_minute(self) -> float:
        with self._lock:
            self._adapt(self._clock())
            return self._rate * 60.0

    def acquire(self) -> float:
        """Wait for the next slot; return the seconds waited."""
        with self._lock:
            self._adapt(self._clock())
            interval = 1.0 / self._rate
        wait = self._slots.reserve(interval)
        if wait > 0:
            self._sleep(wait)
        return wait

    def close(self) -> None:
        self._slots.close()

    def rate_limited(self) -> None:
        with self._lock:
            now = self._clock()
            self._adapt(now)
            if self._limited_at is not None and now - self._limited_at < _HALVING_COOLDOWN:
                return
            self._limited_at, self._settled = now, False
            self._ceiling = self._rate
            self._rate = max(self._floor, self._rate / 2)
            rate = self._rate
        log.warning("crowdtwist_pace_lowered", per_minute=round(rate * 60))

    def _adapt(self, now: float) -> None:
        """Climb back since the last look; called with the lock held."""
        elapsed, self._updated_at = max(now - self._updated_at, 0.0), now
        if self._limited_at is None:
            return
        held = self._ceiling * _BELOW_CEILING
        if self._rate < held:
            self._rate = min(held, self._rate + self._ceiling * _CLIMB_SHARE_PER_SECOND * elapsed)
            return
        probing = now - self._limited_at - _SETTLED_AFTER  # seconds since the held rate proved itself
        if probing < 0:
            return
        if not self._settled:
            self._settled = True
            log.info("crowdtwist_pace_settled", per_minute=round(self._rate * 60))
        step = self._configured * _PROBE_SHARE_PER_SECOND * min(elapsed, probing)
        self._rate = min(self._configured, self._rate + step)
        if self._rate >= self._configured:
            self._limited_at = None
            log.info("crowdtwist_pace_restored", per_minute=round(self._rate * 60))

"""Client-side pacing: a leaky bucket (GCRA) at `requests_per_minute × budget_share`, shared by all threads.

Each `acquire()` reserves the next free slot under a lock, then sleeps outside it until the slot comes, so N
threads are admitted at exactly the rate, never in a burst. After a 429 the rate halves (down to an eighth);
each success wins back a little (multiplicative decrease, additive increase, as TCP does).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_MIN_FACTOR = 0.125
_RECOVERY_PER_SUCCESS = 0.01


class Pacer:
    def __init__(
        self,
        requests_per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_minute <= 0:
            raise ValueError("requests_per_minute must be positive")
        self._interval = 60.0 / requests_per_minute
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._factor = 1.0  # share of the configured rate in force, lowered after a 429

    @property
    def rate_per_minute(self) -> float:
        return 60.0 / self._interval * self._factor

    def acquire(self) -> float:
        """Wait for the next slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval / self._factor
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def rate_limited(self) -> None:
        with self._lock:
            self._factor = max(_MIN_FACTOR, self._factor / 2)

    def succeeded(self) -> None:
        if self._factor < 1.0:
            with self._lock:
                self._factor = min(1.0, self._factor + _RECOVERY_PER_SUCCESS)

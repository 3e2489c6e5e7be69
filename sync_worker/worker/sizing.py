"""How many syncs may run at once: enough to spend the CrowdTwist budget, no more (Little's law).

    in flight = calls per second × seconds per sync

The calls per second are the pacer's (the budget share in force, lower after 429s); the seconds are each sync's
own time but for its waits on the pacer (CrowdTwist's latency, Siebel's, the ledger's), averaged as they come.
With some headroom, within a floor and the cap `CTSYNC_WORKER__CONCURRENCY`. CrowdTwist at 100 ms and 7,500 calls a
minute (125 a second) want about 14 syncs at once; at 300 ms, about 40. A fixed count is either too few for a slow
CrowdTwist (the budget goes unspent) or threads that only wait for the pacer.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

_HEADROOM = 1.25  # latency varies: a quarter more than the average needs
_SMOOTHING = 0.05  # weight of each new sync in the running average (about the last twenty syncs)


class InFlightSizer:
    def __init__(self, *, calls_per_second: Callable[[], float | None], cap: int, floor: int = 2) -> None:
        self._calls_per_second = calls_per_second
        self._cap = cap
        self._floor = min(floor, cap)
        self._seconds_per_sync: float | None = None
        self._lock = threading.Lock()

    def observe(self, busy_seconds: float) -> None:
        """One sync's time, its waits on the pacer left out."""
        with self._lock:
            previous = self._seconds_per_sync
            self._seconds_per_sync = (
                busy_seconds if previous is None else previous + _SMOOTHING * (busy_seconds - previous)
            )

    @property
    def limit(self) -> int:
        rate, seconds = self._calls_per_second(), self._seconds_per_sync
        if rate is None:
            return self._cap  # unpaced: the cap
        if seconds is None:
            return self._floor  # nothing seen yet: the first syncs tell how long one takes
        return max(self._floor, min(self._cap, math.ceil(_HEADROOM * rate * seconds)))

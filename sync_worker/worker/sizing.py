"""How many syncs may run at once: enough to spend the CrowdTwist budget (Little's law), and no more than the one
core a Python process computes on can keep busy.

    in flight = calls per second × seconds per sync

The calls per second are the pacer's (the budget share in force, lower after 429s); the seconds are each sync's
own time but for its waits on the pacer (CrowdTwist's latency, Siebel's, the ledger's), averaged as they come.
With some headroom, within a floor and the cap `CTSYNC_WORKER__CONCURRENCY`. CrowdTwist at 100 ms and 7,500 calls a
minute (125 a second) want about 14 syncs at once; at 300 ms, about 40. A fixed count is either too few for a slow
CrowdTwist (the budget goes unspent) or threads that only wait for the pacer.

Little's law alone overshoots when the process, not the budget, is the bound (a sandbox that answers at once, a
budget above what one core can sync): syncs then wait for the GIL, that wait reads as latency, and the figure asks
for more syncs, each costing more CPU than the last (measured: 1.43 ms of CPU per member one at a time, 2.79 ms at
64). So the CPU in use is sampled every half second, and a second limit moves with it: from the floor it grows by
half (at least one) while the core has room, and shrinks by a quarter (at least one) while the process keeps a core
busy. It settles at the fewest syncs that keep the core busy, down to one; a process that never fills its core
reaches Little's figure within a few seconds of starting and is not held back.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

_HEADROOM = 1.25  # latency varies: a quarter more than the average needs
_SMOOTHING = 0.05  # weight of each new sync in the running average (about the last twenty syncs)
_SAMPLE_SECONDS = 0.5  # how often the CPU in use is looked at
_BUSY_CORE = 0.85  # share of one core above which the process counts as CPU-bound (the rest: waits, other work)


class InFlightSizer:
    def __init__(
        self,
        *,
        calls_per_second: Callable[[], float | None],
        cap: int,
        floor: int = 2,
        cpu_seconds: Callable[[], float] | None = time.process_time,  # None: Little's law alone
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._calls_per_second = calls_per_second
        self._cap = cap
        self._floor = min(floor, cap)
        self._seconds_per_sync: float | None = None
        self._cpu_seconds = cpu_seconds
        self._monotonic = monotonic
        self._sampled_at = monotonic()
        self._cpu_at = cpu_seconds() if cpu_seconds else 0.0
        # What the core allows: grows while it has room.
        self._cpu_bound_limit = self._floor if cpu_seconds else cap
        self._lock = threading.Lock()

    def observe(self, busy_seconds: float) -> None:
        """One sync's time, its waits on the pacer left out."""
        with self._lock:
            previous = self._seconds_per_sync
            self._seconds_per_sync = (
                busy_seconds if previous is None else previous + _SMOOTHING * (busy_seconds - previous)
            )

    @property
    def calls_per_second(self) -> float | None:
        """The pacer's rate in force (None: unpaced)."""
        return self._calls_per_second()

    @property
    def limit(self) -> int:
        with self._lock:
            wanted = self._littles_law()
            self._sample_cpu(wanted)
            return max(1, min(wanted, self._cpu_bound_limit))

    def _littles_law(self) -> int:
        rate, seconds = self._calls_per_second(), self._seconds_per_sync
        if rate is None:
            return self._cap  # unpaced: the cap
        if seconds is None:
            return self._floor  # nothing seen yet: the first syncs tell how long one takes
        return max(self._floor, min(self._cap, math.ceil(_HEADROOM * rate * seconds)))

    def _sample_cpu(self, wanted: int) -> None:
        now = self._monotonic()
        if self._cpu_seconds is None or now - self._sampled_at < _SAMPLE_SECONDS:
            return
        cpu = self._cpu_seconds()
        busy_share = (cpu - self._cpu_at) / (now - self._sampled_at)
        self._sampled_at, self._cpu_at = now, cpu
        in_force = min(wanted, self._cpu_bound_limit)
        if busy_share >= _BUSY_CORE:
            self._cpu_bound_limit = max(1, in_force - max(1, in_force // 4))
        else:
            self._cpu_bound_limit = min(self._cap, self._cpu_bound_limit + max(1, self._cpu_bound_limit // 2))

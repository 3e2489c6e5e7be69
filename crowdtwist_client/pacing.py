"""Client-side pacing: a leaky bucket (GCRA) at a rate that starts at `requests_per_minute × budget_share` and
follows what CrowdTwist really lets through.

Each `acquire()` reserves the next free slot in a timeline of slots, then sleeps until the slot comes, so N threads
are admitted at exactly the rate, never in a burst. The timeline is this process's (`LocalSlots`), or one shared by
every worker process through Redis (`crowdtwist_client.budget.RedisSlots`): then all of them together stay under the
budget. A call whose rate was lowered while it waited for its slot waits again, at the new rate.

When CrowdTwist's real limit is below the setting, its 429s say so and the rate adapts (additive-increase,
multiplicative-decrease, as TCP and the AWS SDKs' adaptive retry mode do, but with the limit measured, not guessed):

- Measure. Once CrowdTwist's leaky bucket is full it lets calls through at exactly its limit, however fast they
  come. So from the first 429 on, the share of our calls it accepted times the timeline's calls per second is its
  limit: one call in twelve accepted at 125 a second is 10 a second. The timeline counts every process's calls, so
  each process measures the whole limit from its own share of the calls.
- Decrease once per signal. A 429 is news only for a call paced at the rate in force (reserved after the last
  decrease, one interval on): calls already in flight come back 429 together, and they are one signal. Once the
  measurement spans a second and a few accepted calls, the rate drops to just under the measured limit (95 %) and
  holds there. Before that it drops to the best rate thought to be under the limit (the held one, when a probe
  above it drew the 429), or, when that very rate drew it, to a quarter: the limit may be anywhere below.
- Increase. After such a drop the rate stays a second (the measurement grows), then doubles every second, which
  takes it back over the limit within seconds, where the next 429 completes the measurement. Held under a measured
  limit for a minute without news, the rate is settled (logged) and probes higher, slowly at first and faster as it
  goes (a cubic, as in TCP CUBIC), in case the limit was raised: a 429 sends it back and measures again, reaching
  the configured rate forgets the limit.
- Share. The measured limit is published on the timeline (`Slots.publish`): with a shared budget every process
  holds, settles and probes on the same limit and the same clock, so they never drift apart.

So a limit far below the setting costs a handful of 429s at the start and two or three at each probe.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import structlog

log = structlog.get_logger("ct_sync.pacing")

_FLOOR_PER_SECOND = 1.0
_CUT = 0.25  # a 429 with no limit measured: it may be anywhere below, so cut deep and climb back fast
_DOUBLING_SECONDS = 1.0  # that climb
_MEASURED_AFTER = 1.0  # seconds since the first 429 before the accepted calls measure the limit,
_MEASURED_ACCEPTED = 5  # and calls accepted since: the count is right to one call, so to a fifth at worst
_BELOW_LIMIT = 0.95  # the held rate, as a share of the measured limit
_SETTLED_AFTER = 60.0  # seconds the held rate must go without a 429 before it is settled and probing begins
_PROBE_DOUBLING_SECONDS = 10.0  # the probe's cubic: twice the held rate this long after it began


class SharedLimit(NamedTuple):
    """CrowdTwist's limit as one process measured it and published it on the timeline."""

    per_second: float
    age: float  # seconds since it was published (measured, or confirmed by a probe's 429)
    version: int  # which publication: the same version is the same news


class Reserved(NamedTuple):
    wait: float  # seconds until the slot
    calls: float  # the timeline's running count of calls, this one included (in calls of the whole budget)
    limit: SharedLimit | None = None  # the limit published on the timeline, if any


class Slots(Protocol):
    """A timeline of call slots."""

    def reserve(self, interval: float, *, again: bool = False) -> Reserved:
        """Take the next free slot, the one after it `interval` seconds later. `again`: in place of a slot left
        unused, so the call is not counted twice."""
        ...

    def publish(self, per_second: float) -> int | None:
        """Tell every user of the timeline CrowdTwist's limit; the publication's version, or None when the
        timeline is this process's alone (its pacer knows already)."""
        ...

    def close(self) -> None: ...


class LocalSlots:
    """This process's own timeline, shared by its threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, counts_for: float = 1.0) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._calls = 0.0
        self._counts_for = counts_for  # calls of the whole budget one call here stands for

    def reserve(self, interval: float, *, again: bool = False) -> Reserved:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + interval
            if not again:
                self._calls += self._counts_for
            calls = self._calls
        return Reserved(slot - now, calls)

    def publish(self, per_second: float) -> None:
        """No one else to tell."""

    def close(self) -> None:
        """Nothing held."""


@dataclass(frozen=True)
class Admission:
    """One call let through: what the pacer needs back with its answer (`Pacer.answered`)."""

    waited: float  # seconds slept for the slot
    slot: float  # when the call went, on the pacer's clock
    calls: float  # the timeline's running count of calls at this one
    generation: int  # decreases before it was paced: a 429 for an older generation is no news


@dataclass
class _Measure:
    """CrowdTwist's limit from the calls sent since the first 429 of an episode (see the module docstring)."""

    since: float  # the first 429's slot,
    calls_then: float  # and the timeline's count of calls at it
    answered: int = 0  # this process's calls after it, answered
    accepted: int = 0
    last_slot: float = float("-inf")
    last_calls: float = 0.0

    def add(self, admission: Admission, *, limited: bool) -> None:
        if admission.slot <= self.since:
            return
        self.answered += 1
        self.accepted += not limited
        if admission.slot > self.last_slot:
            self.last_slot, self.last_calls = admission.slot, admission.calls

    def per_second(self) -> float | None:
        """The calls per second CrowdTwist let through; None until the measure is long enough to trust."""
        span, calls = self.last_slot - self.since, self.last_calls - self.calls_then
        if span < _MEASURED_AFTER or self.accepted < _MEASURED_ACCEPTED or calls <= 0:
            return None
        return self.accepted / self.answered * calls / span


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
        self._generation = 0  # decreases so far
        self._lowered_at = float("-inf")
        self._measure: _Measure | None = None  # open from an episode's first 429 until the rate settles
        # What the rate follows: the configured rate; or CrowdTwist's measured limit (ours or published on the
        # timeline), held since `_limit_since` (our clock) and probed above a minute later; or, after a 429 with
        # nothing measured, the search for it: from `_base` (the best rate thought to be below it), climbing.
        self._limit: float | None = None
        self._limit_since = float("-inf")
        self._limit_version: int | None = None
        self._finding_since: float | None = None
        self._base = self._configured
        self._settled_since = float("-inf")  # the `_limit_since` that settled last
        self._settled: float | None = None  # the held rate last logged as settled

    @property
    def rate_per_minute(self) -> float:
        """The rate in force now."""
        with self._lock:
            self._adapt(self._clock())
            return self._rate * 60.0

    def acquire(self) -> Admission:
        """Wait for the next slot at the rate in force."""
        waited, again = 0.0, False
        while True:
            with self._lock:
                now = self._clock()
                self._adapt(now)
                interval, generation = 1.0 / self._rate, self._generation
            wait, calls, published = self._slots.reserve(interval, again=again)
            again = True
            with self._lock:
                if not self._follow(published, now):
                    continue  # another process lowered the budget's rate: this slot was taken at the old one
            if wait > 0:
                self._sleep(wait)
                waited += wait
            with self._lock:
                # Lowered while this call waited: the slot was taken at the old pace, so take one at the new.
                if self._generation == generation:
                    return Admission(waited, now + max(wait, 0.0), calls, generation)

    def answered(self, admission: Admission, *, limited: bool) -> None:
        """CrowdTwist answered the call `admission` let through: 429 (`limited`) or anything else."""
        with self._lock:
            now = self._clock()
            self._adapt(now)
            if self._measure is not None:
                self._measure.add(admission, limited=limited)
            if not limited:
                return
            if self._measure is None:
                # CrowdTwist's bucket is full now: from here its accepted calls come at its limit.
                self._measure = _Measure(since=admission.slot, calls_then=admission.calls)
            rate = self._rate
            if admission.generation != self._generation or admission.slot < self._lowered_at + 1.0 / rate:
                return  # paced before the last decrease: no news
            measured = self._measure.per_second()
            if measured is not None:
                self._publish(min(measured, rate), now)  # a 429 at `rate`: the limit is below it, whatever measured
            else:
                # Back to the best rate thought to be under the limit, unless that very rate drew the 429.
                below = self._held() if self._limit is not None else self._base
                self._find(below if rate > below else max(self._floor, rate * _CUT), now)
            self._adapt(now)
            self._generation += 1
            self._lowered_at = now
            rate, limit = self._rate, self._limit
        log.warning(
            "crowdtwist_pace_lowered",
            per_minute=round(rate * 60),
            measured_limit_per_minute=None if limit is None else round(limit * 60),
        )

    def close(self) -> None:
        self._slots.close()

    # -- called with the lock held ----------------------------------------------------------------------------

    def _held(self) -> float:
        assert self._limit is not None
        return max(self._floor, min(self._configured, self._limit * _BELOW_LIMIT))

    def _publish(self, per_second: float, now: float) -> None:
        """Hold under `per_second` from now on, and tell the timeline's other users."""
        self._limit, self._limit_since, self._finding_since = per_second, now, None
        self._limit_version = self._slots.publish(per_second)

    def _find(self, base: float, now: float) -> None:
        self._limit, self._finding_since, self._base = None, now, base

    def _follow(self, published: SharedLimit | None, now: float) -> bool:
        """Take a limit another process published, unless what this one knows is newer; False if that lowered
        the rate."""
        if published is None or published.version == self._limit_version:
            return True
        since = now - published.age
        if since <= self._limit_since or (self._finding_since is not None and since <= self._finding_since):
            return True
        before = self._rate
        self._limit, self._limit_since, self._limit_version = published.per_second, since, published.version
        self._finding_since = None
        self._adapt(now)
        if self._rate >= before:
            return True
        self._generation += 1  # calls already waiting at the old pace wait again
        self._lowered_at = now
        return False

    def _adapt(self, now: float) -> None:
        """The rate now: climbing while finding the limit, held under a measured one or probing above it."""
        if self._finding_since is not None:
            # A second at the base first, so the measure spans at least that before the climb draws the next 429.
            climbing = max(0.0, now - self._finding_since - _MEASURED_AFTER) / _DOUBLING_SECONDS
            self._rate = min(self._configured, self._base * 2**climbing)
            # CrowdTwist's bucket may take a while to fill again: only a minute at the configured rate without
            # a 429 says there is no limit below it.
            if climbing > math.log2(self._configured / self._base) + _SETTLED_AFTER / _DOUBLING_SECONDS:
                self._restored()
            return
        if self._limit is None:
            self._rate = self._configured
            return
        probing = now - self._limit_since - _SETTLED_AFTER
        if probing < 0:
            self._rate = self._held()
            return
        if self._settled_since != self._limit_since:  # a minute without news: the next 429 starts a new episode
            self._settled_since, self._measure = self._limit_since, None
            if self._settled != self._held():  # logged once per limit, not after every probe
                self._settled = self._held()
                log.info("crowdtwist_pace_settled", per_minute=round(self._settled * 60))
        self._rate = min(self._configured, self._held() * (1 + (probing / _PROBE_DOUBLING_SECONDS) ** 3))
        at_the_top = _PROBE_DOUBLING_SECONDS * (self._configured / self._held() - 1) ** (1 / 3)
        if probing > at_the_top + _SETTLED_AFTER:  # as above: a minute at the configured rate without a 429
            self._restored()

    def _restored(self) -> None:
        """No limit below the setting after all (or no more): a 429 from now on is found as if it were the first."""
        self._limit = self._settled = self._finding_since = self._measure = None
        self._base = self._configured
        log.info("crowdtwist_pace_restored", per_minute=round(self._configured * 60))

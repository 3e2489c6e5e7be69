"""One CrowdTwist budget shared by every worker process, on every host: a GCRA timeline of call slots in Redis.

Each call reserves its slot with one round trip: a short Lua script reads Redis's own clock (`TIME`, so the hosts'
clocks need not agree), takes the later of now and the next free slot, moves the next free slot one interval on,
and answers how long to wait. Atomic, because Redis runs a script alone. A library was considered: `limits` offers
fixed and moving windows that say yes or no, not a reservation to sleep until; a window admits a burst at each
boundary, which CrowdTwist's leaky bucket answers with 429s. Twelve lines of Lua do exactly GCRA.

The same round trip counts the budget's calls (every process's) and hands back CrowdTwist's limit as the last
process to measure it published it (`publish`, with Redis's time, so its age needs no agreement between clocks
either): each pacer measures the limit from its share of the calls, and all of them hold, settle and probe on the
same one (`crowdtwist_client.pacing`). Keys: `<budget key>:next-slot`, `:calls`, `:limit`.

If Redis cannot be reached, syncing never stops: the process paces alone at the budget divided by
`fallback_processes` (so that many processes together still stay within it), tells `on_sharing(False)` once, tries
Redis again every few seconds (one thread tries; the others pace alone meanwhile, so a Redis that does not answer
never holds up more than one call), and tells `on_sharing(True)` when it is back. The `redis` package comes with the
`redis` extra (`pip install 'ct-sync[redis]'`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from crowdtwist_client.pacing import LocalSlots, Reserved, SharedLimit
from sync_worker.core.errors import ConfigurationError, TransientError

log = structlog.get_logger("ct_sync.budget")

_RESERVE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX', math.ceil((after - now) * 1000) + 60000)
local calls = redis.call('INCRBY', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], 86400000)
local limit = redis.call('HMGET', KEYS[3], 'per_second', 'at', 'version')
if not limit[1] then
  return {string.format('%.6f', slot - now), calls}
end
return {string.format('%.6f', slot - now), calls, limit[1], string.format('%.6f', now - tonumber(limit[2])), limit[3]}
"""
_PUBLISH = """
local now = redis.call('TIME')
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'per_second', ARGV[1], 'at', now[1] .. '.' .. string.format('%06d', tonumber(now[2])))
redis.call('PEXPIRE', KEYS[1], 86400000)
return version
"""
_RETRY_REDIS_EVERY = 5.0  # seconds between attempts to return to the shared budget


class RedisSlots:
    """`Slots` shared through Redis, with a per-process fallback (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        key: str,
        fallback_processes: int,
        on_sharing: Callable[[bool], None] = lambda shared: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            import redis
        except ImportError:
            raise ConfigurationError(
                "CTSYNC_CROWDTWIST__BUDGET_URL needs the redis extra: pip install 'ct-sync[redis]'", system="redis"
            ) from None
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._refusals = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)
        self._reserve = self._redis.register_script(_RESERVE)
        self._publish = self._redis.register_script(_PUBLISH)
        self._keys = [f"{key}:next-slot", f"{key}:calls", f"{key}:limit"]
        self._fallback = LocalSlots(clock, counts_for=fallback_processes)
        self._fallback_processes = fallback_processes
        self._on_sharing = on_sharing
        self._clock = clock
        self._lock = threading.Lock()
        self._alone_since: float | None = None  # when Redis was last found unreachable; None: sharing
        self._trying = False  # a thread is trying Redis again while alone

    @property
    def shared(self) -> bool:
        return self._alone_since is None

    def reserve(self, interval: float, *, again: bool = False) -> Reserved:
        trying = self._try_redis()
        if trying is not None:
            try:
                answer = self._reserve(keys=self._keys, args=[f"{interval:.6f}", 0 if again else 1])
            except self._errors as exc:
                self._alone(exc, tried_again=trying)
            else:
                if trying:
                    self._shared_again()
                wait, calls, *published = answer
                limit = SharedLimit(float(published[0]), float(published[1]), int(published[2])) if published else None
                return Reserved(float(wait), float(calls), limit)
        # Alone, each process takes its share of the budget: the slots come `fallback_processes` times as far apart,
        # and each call stands for that many of the whole budget's (`LocalSlots(counts_for=…)`).
        return self._fallback.reserve(interval * self._fallback_processes, again=again)

    def _try_redis(self) -> bool | None:
        """Whether this call goes to Redis: False while sharing, True for the one try again while alone, None
        to pace alone."""
        with self._lock:
            if self._alone_since is None:
                return False
            if self._trying or self._clock() - self._alone_since < _RETRY_REDIS_EVERY:
                return None
            self._trying = True
            return True

    def _shared_again(self) -> None:
        with self._lock:
            self._alone_since, self._trying = None, False
        log.info("crowdtwist_budget_shared_again")
        self._on_sharing(True)

    def publish(self, per_second: float) -> int | None:
        """Record CrowdTwist's limit, as measured now, for every process; its version. None while alone (each
        process then follows what it measures itself) or when Redis does not answer."""
        if self._alone_since is not None:
            return None
        try:
            return int(self._publish(keys=self._keys[2:], args=[f"{per_second:.6f}"]))
        except self._errors as exc:
            self._alone(exc, tried_again=False)
            return None

    def ping(self) -> None:
        """Reach Redis once, as `ct-sync check` does: a refused password is a `ConfigurationError`, no answer a
        `TransientError`."""
        try:
            self._redis.ping()
        except self._refusals:
            raise ConfigurationError(
                "Redis refused the login of CTSYNC_CROWDTWIST__BUDGET_URL", system="redis"
            ) from None
        except self._errors as exc:
            raise TransientError(f"Redis unreachable: {type(exc).__name__}", system="redis") from None

    def close(self) -> None:
        self._redis.close()

    def _alone(self, exc: Exception, *, tried_again: bool) -> None:
        with self._lock:  # the calls in flight when Redis went all fail: one of them tells
            first = self._alone_since is None
            self._alone_since = self._clock()
            if tried_again:
                self._trying = False
        if first:
            log.warning("crowdtwist_budget_unshared", error=type(exc).__name__, fallback=self._fallback_processes)
            self._on_sharing(False)

"""The CrowdTwist budget shared through Redis: one timeline of slots for every process, counting their calls and
carrying the limit one of them measured to the others, and syncing that never stops when Redis does."""

from __future__ import annotations

import contextlib
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from crowdtwist_client.budget import RedisSlots
from tests.redis_server import PrivateRedis


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0


def test_two_processes_take_their_slots_from_one_timeline(private_redis: PrivateRedis) -> None:
    """Ten calls from two processes, a slot a second: together they wait 0, 1, 2, … 9 s, never two in one slot."""
    first = RedisSlots(private_redis.url, key="test", fallback_processes=2)
    second = RedisSlots(private_redis.url, key="test", fallback_processes=2)
    waits = [(first if n % 2 else second).reserve(1.0).wait for n in range(10)]
    assert [round(wait) for wait in sorted(waits)] == list(range(10))
    first.close()
    second.close()


def test_the_timeline_counts_every_process_s_calls_once(private_redis: PrivateRedis) -> None:
    first = RedisSlots(private_redis.url, key="test", fallback_processes=2)
    second = RedisSlots(private_redis.url, key="test", fallback_processes=2)
    counts = [first.reserve(0.001).calls, second.reserve(0.001).calls, first.reserve(0.001, again=True).calls]
    assert counts == [1, 2, 2]  # a slot taken again, in place of one left unused, is the same call
    first.close()
    second.close()


def test_a_limit_published_by_one_process_reaches_the_others_with_its_age(private_redis: PrivateRedis) -> None:
    first = RedisSlots(private_redis.url, key="test", fallback_processes=2)
    second = RedisSlots(private_redis.url, key="test", fallback_processes=2)
    assert second.reserve(0.001).limit is None
    assert first.publish(10.0) == 1
    limit = second.reserve(0.001).limit
    assert limit is not None
    assert (limit.per_second, limit.version) == (10.0, 1)
    assert 0 <= limit.age < 5
    assert first.publish(9.5) == 2
    assert second.reserve(0.001).limit == (9.5, pytest.approx(0, abs=5), 2)
    first.close()
    second.close()


def test_redis_down_paces_alone_at_a_share_alerts_once_and_returns_when_redis_does(
    private_redis: PrivateRedis,
) -> None:
    time = FakeTime()
    told: list[bool] = []
    slots = RedisSlots(
        private_redis.url, key="test", fallback_processes=4, on_sharing=told.append, clock=lambda: time.now
    )
    assert slots.reserve(1.0).wait == 0.0 or slots.shared
    private_redis.stop()
    alone = [slots.reserve(1.0) for _ in range(3)]
    assert [reserved.wait for reserved in alone] == [0.0, 4.0, 8.0]  # slots four times as far apart: four
    assert [reserved.calls for reserved in alone] == [4, 8, 12]  # processes alone stay within the budget
    assert slots.publish(10.0) is None  # and each follows what it measures itself
    assert told == [False]
    assert not slots.shared
    private_redis.start()
    time.now += 1.0
    assert slots.reserve(1.0).wait == 11.0  # alone still: Redis is tried again only every few seconds
    time.now += 5.0
    slots.reserve(1.0)
    assert told == [False, True]
    assert slots.shared
    slots.close()


class SilentRedis:
    """A server that takes connections and never answers (a Redis whose host hangs): counts the connections."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.connections.append(self._listener.accept()[0])

    def close(self) -> None:
        self._listener.close()
        for connection in self.connections:
            connection.close()


def test_while_redis_is_away_one_call_tries_it_again_and_the_others_pace_alone_meanwhile() -> None:
    time = FakeTime()
    told: list[bool] = []
    redis = SilentRedis()
    slots = RedisSlots(redis.url, key="test", fallback_processes=2, on_sharing=told.append, clock=lambda: time.now)
    try:
        slots.reserve(1.0)  # finds Redis silent: alone
        one_try = len(redis.connections)
        time.now += 5.0
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _: slots.reserve(1.0), range(8)))
        assert len(redis.connections) == 2 * one_try  # eight calls at once, one try of Redis between them
        assert told == [False]
    finally:
        slots.close()
        redis.close()

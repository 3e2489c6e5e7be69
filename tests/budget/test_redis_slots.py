"""The CrowdTwist budget shared through Redis: one timeline of slots for every process, and syncing that never stops
when Redis does."""

from __future__ import annotations

from crowdtwist_client.budget import RedisSlots
from tests.redis_server import PrivateRedis


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0


def test_two_processes_take_their_slots_from_one_timeline(private_redis: PrivateRedis) -> None:
    """Ten calls from two processes, a slot a second: together they wait 0, 1, 2, … 9 s, never two in one slot."""
    first = RedisSlots(private_redis.url, key="test", fallback_processes=2)
    second = RedisSlots(private_redis.url, key="test", fallback_processes=2)
    waits = [(first if n % 2 else second).reserve(1.0) for n in range(10)]
    assert [round(wait) for wait in sorted(waits)] == list(range(10))
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
    assert slots.reserve(1.0) == 0.0 or slots.shared
    private_redis.stop()
    alone = [slots.reserve(1.0) for _ in range(3)]
    assert alone == [0.0, 4.0, 8.0]  # slots four times as far apart: four processes alone stay within the budget
    assert told == [False]
    assert not slots.shared
    private_redis.start()
    time.now += 1.0
    assert slots.reserve(1.0) == 11.0  # alone still: Redis is tried again only every few seconds
    time.now += 5.0
    slots.reserve(1.0)
    assert told == [False, True]
    assert slots.shared
    slots.close()

"""In-flight syncs sized by Little's law from the budget and the time a sync takes, and held to what one busy core
can use (fake clocks: the CPU a process spent and the time that passed)."""

from __future__ import annotations

from dataclasses import dataclass

from sync_worker.worker.sizing import InFlightSizer


@dataclass
class Clocks:
    """The process's CPU seconds and wall seconds, moved by hand."""

    cpu: float = 0.0
    wall: float = 0.0

    def spend(self, seconds: float, *, busy_share: float) -> None:
        self.wall += seconds
        self.cpu += seconds * busy_share


def sizer(rate: float | None, cap: int = 64, clocks: Clocks | None = None) -> InFlightSizer:
    clocks = clocks or Clocks()
    return InFlightSizer(
        calls_per_second=lambda: rate, cap=cap, cpu_seconds=lambda: clocks.cpu, monotonic=lambda: clocks.wall
    )


def settle(sized: InFlightSizer, clocks: Clocks, *, busy_share: float, samples: int = 20) -> list[int]:
    """The limit after each half-second sample at the given CPU use."""
    limits = []
    for _ in range(samples):
        clocks.spend(0.5, busy_share=busy_share)
        limits.append(sized.limit)
    return limits


def test_enough_syncs_at_once_to_spend_the_budget_at_the_latency_seen() -> None:
    clocks = Clocks()
    at_100_ms, at_300_ms = sizer(125.0, clocks=clocks), sizer(125.0, clocks=clocks)
    for _ in range(50):
        at_100_ms.observe(0.11)  # CrowdTwist at 100 ms, Siebel and the ledger 10 ms
        at_300_ms.observe(0.31)
    settle(at_100_ms, clocks, busy_share=0.2, samples=10)  # a core with room: the CPU limit opens within seconds
    settle(at_300_ms, clocks, busy_share=0.2, samples=10)
    assert at_100_ms.limit == 18  # 125 calls/s × 0.11 s, and a quarter more
    assert at_300_ms.limit == 49


def test_waits_on_the_pacer_are_not_latency_and_a_fast_crowdtwist_needs_few() -> None:
    clocks = Clocks()
    fast = sizer(125.0, clocks=clocks)
    for _ in range(50):
        fast.observe(0.004)
    assert settle(fast, clocks, busy_share=0.2)[-1] == 2


def test_a_slower_pace_after_429s_wants_fewer_within_the_floor_and_cap() -> None:
    rate = [125.0]
    clocks = Clocks()
    sized = InFlightSizer(
        calls_per_second=lambda: rate[0], cap=32, cpu_seconds=lambda: clocks.cpu, monotonic=lambda: clocks.wall
    )
    sized.observe(0.5)
    assert settle(sized, clocks, busy_share=0.2)[-1] == 32  # 78 wanted, the cap holds
    rate[0] = 10.0
    assert sized.limit == 7


def test_before_any_sync_only_the_floor_and_unpaced_the_cap_once_the_core_has_shown_room() -> None:
    clocks = Clocks()
    assert sizer(125.0, clocks=clocks).limit == 2
    unpaced = sizer(None, cap=16, clocks=clocks)
    assert unpaced.limit == 2  # the CPU limit starts at the floor
    assert settle(unpaced, clocks, busy_share=0.3, samples=6) == [3, 4, 6, 9, 13, 16]


def test_a_process_that_keeps_its_core_busy_comes_down_to_one_sync_at_a_time() -> None:
    """CrowdTwist answering at once and no budget to wait for: more syncs only wait for the GIL."""
    clocks = Clocks()
    sized = sizer(None, cap=64, clocks=clocks)
    opened = settle(sized, clocks, busy_share=0.3, samples=12)
    assert opened[-1] == 64
    busy = settle(sized, clocks, busy_share=1.0, samples=20)
    assert busy[:4] == [48, 36, 27, 21]  # a quarter less each half second
    assert busy[-1] == 1


def test_one_sync_at_a_time_grows_again_when_the_core_has_room() -> None:
    clocks = Clocks()
    sized = sizer(125.0, clocks=clocks)
    for _ in range(50):
        sized.observe(0.11)  # Little's law wants 18
    settle(sized, clocks, busy_share=1.0, samples=10)
    assert sized.limit == 1
    assert settle(sized, clocks, busy_share=0.5, samples=10)[-1] == 18  # back to Little's figure, no further


def test_the_cpu_is_looked_at_only_every_half_second() -> None:
    clocks = Clocks()
    sized = sizer(None, clocks=clocks)
    clocks.spend(0.2, busy_share=0.1)
    assert sized.limit == 2
    clocks.spend(0.2, busy_share=0.1)
    assert sized.limit == 2
    clocks.spend(0.2, busy_share=0.1)
    assert sized.limit == 3


def test_without_a_cpu_clock_little_s_law_alone_sizes_them() -> None:
    sized = InFlightSizer(calls_per_second=lambda: 125.0, cap=64, cpu_seconds=None)
    for _ in range(50):
        sized.observe(0.11)
    assert sized.limit == 18

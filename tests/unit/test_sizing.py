"""In-flight syncs sized by Little's law from the budget and the time a sync takes."""

from __future__ import annotations

from sync_worker.worker.sizing import InFlightSizer


def sizer(rate: float | None, cap: int = 64) -> InFlightSizer:
    return InFlightSizer(calls_per_second=lambda: rate, cap=cap)


def test_enough_syncs_at_once_to_spend_the_budget_at_the_latency_seen() -> None:
    at_100_ms, at_300_ms = sizer(125.0), sizer(125.0)
    for _ in range(50):
        at_100_ms.observe(0.11)  # CrowdTwist at 100 ms, Siebel and the ledger 10 ms
        at_300_ms.observe(0.31)
    assert at_100_ms.limit == 18  # 125 calls/s × 0.11 s, and a quarter more
    assert at_300_ms.limit == 49


def test_waits_on_the_pacer_are_not_latency_and_a_fast_crowdtwist_needs_few() -> None:
    fast = sizer(125.0)
    for _ in range(50):
        fast.observe(0.004)
    assert fast.limit == 2


def test_a_slower_pace_after_429s_wants_fewer_within_the_floor_and_cap() -> None:
    rate = [125.0]
    sized = InFlightSizer(calls_per_second=lambda: rate[0], cap=32)
    sized.observe(0.5)
    assert sized.limit == 32  # 78 wanted, the cap holds
    rate[0] = 10.0
    assert sized.limit == 7


def test_before_any_sync_only_the_floor_and_unpaced_the_cap() -> None:
    assert sizer(125.0).limit == 2
    assert sizer(None, cap=16).limit == 16

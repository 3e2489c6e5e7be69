"""Pacing: many threads, one leaky bucket, admitted at exactly the configured rate."""

from __future__ import annotations

import threading

import pytest

from crowdtwist_client.pacing import Pacer
from sandbox.crowdtwist import SandboxState


def test_many_threads_are_admitted_at_exactly_the_rate() -> None:
    waits: list[float] = []
    lock = threading.Lock()
    pacer = Pacer(600, clock=lambda: 0.0, sleep=lambda seconds: None)  # one slot every 0.1 s; time stands still
    barrier = threading.Barrier(50)

    def take() -> None:
        barrier.wait()
        for _ in range(20):
            wait = pacer.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(round(wait, 6) for wait in waits) == [round(slot * 0.1, 6) for slot in range(1000)]


def test_no_wait_when_under_the_rate() -> None:
    now = [0.0]
    pacer = Pacer(60, clock=lambda: now[0], sleep=lambda seconds: None)
    assert pacer.acquire() == 0
    now[0] = 5.0
    assert pacer.acquire() == 0


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_burst_of_429s_in_flight_together_halves_the_rate_once() -> None:
    time = FakeTime()
    pacer = Pacer(1000, clock=lambda: time.now, sleep=time.sleep)
    for _ in range(16):  # sixteen requests in flight, all answered 429
        pacer.rate_limited()
    assert pacer.rate_per_minute == pytest.approx(500)


def test_the_rate_falls_as_far_as_the_429s_demand_down_to_one_call_a_second() -> None:
    time = FakeTime()
    pacer = Pacer(7500, clock=lambda: time.now, sleep=time.sleep)
    for _ in range(20):
        pacer.rate_limited()
        time.now += 1.0
    assert pacer.rate_per_minute == pytest.approx(60, rel=0.05)


def test_after_a_429_the_rate_climbs_back_near_it_then_holds_then_probes_slowly() -> None:
    time = FakeTime()
    pacer = Pacer(6000, clock=lambda: time.now, sleep=time.sleep)  # 100 calls/s
    pacer.rate_limited()  # drawn at 100/s: down to 50/s
    assert pacer.rate_per_minute == pytest.approx(3000)
    time.now += 30
    assert pacer.rate_per_minute == pytest.approx(5400)  # 90 % of the rate that drew the 429, held
    time.now += 40  # a minute without a 429: probe above it, slowly (0.5 calls/s each second)
    assert pacer.rate_per_minute == pytest.approx(5400 + 10 * 30, rel=0.01)
    time.now += 3600
    assert pacer.rate_per_minute == pytest.approx(6000)


def test_against_a_limit_far_below_the_setting_429s_become_rare() -> None:
    """The sandbox's leaky bucket at 600/min, ct-sync set to its default 7,500/min: 41 % of calls were refused with a
    floor of an eighth of the rate. Now the pace finds the limit and few calls are refused after the first minute."""
    time = FakeTime()
    crowdtwist = SandboxState(clock=lambda: time.now)
    crowdtwist.set_faults(rate_limit_per_minute=600)
    pacer = Pacer(7500, clock=lambda: time.now, sleep=time.sleep)
    refused: list[bool] = []
    while time.now < 600:  # ten minutes of calls, one after the other
        pacer.acquire()
        answer = crowdtwist.handle("GET", "/v2/users/296-1", {"id_type": "third_party_id"}, {}, b"")
        if answer.status == 429:
            pacer.rate_limited()
        refused.append(answer.status == 429)
        time.now += 0.001  # each call takes a millisecond
    after_first_minute = refused[len(refused) // 10 :]
    share = sum(after_first_minute) / len(after_first_minute)
    per_minute = len(after_first_minute) / 9
    print(f"{len(refused)} calls, 429 after the first minute: {share:.2%}; {per_minute:.0f} calls/min")
    assert share < 0.01
    assert per_minute > 0.75 * 600

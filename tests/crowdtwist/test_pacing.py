"""Pacing: many threads, one leaky bucket, admitted at exactly the configured rate."""

from __future__ import annotations

import threading

import pytest

from crowdtwist_client.pacing import Pacer


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


def test_a_429_halves_the_rate_and_successes_win_it_back() -> None:
    pacer = Pacer(1000, clock=lambda: 0.0, sleep=lambda seconds: None)
    pacer.rate_limited()
    assert pacer.rate_per_minute == pytest.approx(500)
    for _ in range(50):
        pacer.succeeded()
    assert pacer.rate_per_minute == pytest.approx(1000)


def test_the_slow_down_has_a_floor() -> None:
    pacer = Pacer(800, clock=lambda: 0.0, sleep=lambda seconds: None)
    for _ in range(20):
        pacer.rate_limited()
    assert pacer.rate_per_minute == pytest.approx(100)

"""The tests' virtual time: threads run one at a time, woken in the order of the clock, which jumps, never waits."""

from __future__ import annotations

import pytest

from tests.virtual_time import VirtualTime


def test_threads_wake_in_the_clock_s_order_and_the_clock_jumps() -> None:
    time = VirtualTime()
    woke: list[tuple[str, float]] = []

    def sleeper(name: str, seconds: float) -> None:
        for _ in range(2):
            time.sleep(seconds)
            woke.append((name, time.now))

    time.run([lambda: sleeper("slow", 3600.0), lambda: sleeper("quick", 1500.0)])
    assert woke == [("quick", 1500.0), ("quick", 3000.0), ("slow", 3600.0), ("slow", 7200.0)]


def test_an_error_in_a_thread_is_raised_once_every_thread_is_done() -> None:
    time = VirtualTime()
    finished: list[str] = []

    def failing() -> None:
        time.sleep(1)
        raise ValueError("boom")

    def lasting() -> None:
        time.sleep(5)
        finished.append("lasting")

    with pytest.raises(ValueError, match="boom"):
        time.run([failing, lasting])
    assert finished == ["lasting"]

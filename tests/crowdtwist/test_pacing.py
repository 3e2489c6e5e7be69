"""Pacing: many threads, one leaky bucket, admitted at exactly the rate; the rate measured down to CrowdTwist's real
limit by its 429s, held just under it, probed above it; the limit shared on the timeline. All on a fake clock."""

from __future__ import annotations

import threading

import pytest

from crowdtwist_client.pacing import Admission, LocalSlots, Pacer, Reserved, SharedLimit
from sandbox.crowdtwist import SandboxState


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def paced(per_minute: float, time: FakeTime) -> Pacer:
    return Pacer(per_minute, clock=lambda: time.now, sleep=time.sleep)


def crowdtwist_limited_to(per_minute: float, time: FakeTime) -> SandboxState:
    """The sandbox's leaky bucket (one second of burst), on the test's clock."""
    crowdtwist = SandboxState(clock=lambda: time.now)
    crowdtwist.set_faults(rate_limit_per_minute=per_minute)
    return crowdtwist


def call(pacer: Pacer, crowdtwist: SandboxState, time: FakeTime) -> bool:
    """One look-up, paced, answered in a millisecond; True if CrowdTwist answered 429."""
    admission = pacer.acquire()
    limited = crowdtwist.handle("GET", "/v2/users/296-1/", {"id_type": "third_party_id"}, {}, b"").status == 429
    time.now += 0.001
    pacer.answered(admission, limited=limited)
    return limited


def calls_for(seconds: float, pacer: Pacer, crowdtwist: SandboxState, time: FakeTime) -> list[bool]:
    until, refused = time.now + seconds, []
    while time.now < until:
        refused.append(call(pacer, crowdtwist, time))
    return refused


def measured(pacer: Pacer, crowdtwist: SandboxState, time: FakeTime) -> float:
    """Ten seconds of calls, CrowdTwist's limit measured in them; when the rate last fell."""
    fell_at, rate = 0.0, pacer.rate_per_minute
    while time.now < 10:
        call(pacer, crowdtwist, time)
        if pacer.rate_per_minute < rate:
            fell_at = time.now
        rate = pacer.rate_per_minute
    return fell_at


def test_many_threads_are_admitted_at_exactly_the_rate() -> None:
    waits: list[float] = []
    lock = threading.Lock()
    pacer = Pacer(600, clock=lambda: 0.0, sleep=lambda seconds: None)  # one slot every 0.1 s; time stands still
    barrier = threading.Barrier(50)

    def take() -> None:
        barrier.wait()
        for _ in range(20):
            wait = pacer.acquire().waited
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
    assert pacer.acquire().waited == 0
    now[0] = 5.0
    assert pacer.acquire().waited == 0


def test_429s_for_calls_in_flight_together_lower_the_rate_once() -> None:
    time = FakeTime()
    pacer = paced(7500, time)
    in_flight = [pacer.acquire() for _ in range(16)]
    for admission in in_flight:
        pacer.answered(admission, limited=True)
    assert pacer.rate_per_minute == pytest.approx(7500 / 4)  # nothing measured yet: the limit may be anywhere below


def test_a_429_for_a_call_paced_at_the_lowered_rate_lowers_it_again() -> None:
    time = FakeTime()
    pacer = paced(7500, time)
    pacer.answered(pacer.acquire(), limited=True)
    pacer.acquire()  # its slot was spaced at the old rate: a 429 for it would be no news
    pacer.answered(pacer.acquire(), limited=True)
    assert pacer.rate_per_minute == pytest.approx(7500 / 16)


def test_the_rate_never_falls_below_one_call_a_second() -> None:
    time = FakeTime()
    pacer = paced(7500, time)
    for _ in range(20):
        pacer.answered(pacer.acquire(), limited=True)
    assert pacer.rate_per_minute == pytest.approx(60)


def test_the_limit_is_measured_from_the_calls_crowdtwist_accepted_and_the_rate_held_just_under_it() -> None:
    time = FakeTime()
    crowdtwist, pacer = crowdtwist_limited_to(600, time), paced(7500, time)
    refused = calls_for(60, pacer, crowdtwist, time)
    assert pacer.rate_per_minute == pytest.approx(0.95 * 600, rel=0.02)
    assert sum(refused) <= 6  # the first 429, the search, the one that completed the measure


def test_after_a_minute_without_a_429_the_rate_probes_higher_slowly_then_faster_and_is_restored() -> None:
    time = FakeTime()
    crowdtwist, pacer = crowdtwist_limited_to(600, time), paced(7500, time)
    time.now = measured(pacer, crowdtwist, time) + 59  # not a minute since (no calls: none refused either)
    held = pacer.rate_per_minute
    assert held == pytest.approx(0.95 * 600, rel=0.02)
    time.now += 6  # probing for 5 s: an eighth above
    assert pacer.rate_per_minute == pytest.approx(held * 1.125, rel=0.01)
    time.now += 5  # for 10 s: twice
    assert pacer.rate_per_minute == pytest.approx(held * 2, rel=0.01)
    time.now += 20  # far above: the configured rate again
    assert pacer.rate_per_minute == 7500
    time.now += 60  # and a minute there without a 429: the limit forgotten
    assert pacer.rate_per_minute == 7500
    pacer.answered(pacer.acquire(), limited=True)
    assert pacer.rate_per_minute == 7500 / 4  # a 429 now is a new limit: found as at the start


def test_a_probe_that_draws_a_429_goes_back_to_the_held_rate() -> None:
    time = FakeTime()
    crowdtwist, pacer = crowdtwist_limited_to(600, time), paced(7500, time)
    time.now = measured(pacer, crowdtwist, time)
    held = pacer.rate_per_minute
    time.now += 70  # probing for 10 s: twice the held rate
    assert pacer.rate_per_minute == pytest.approx(2 * held)
    pacer.answered(pacer.acquire(), limited=True)
    assert pacer.rate_per_minute == held


def test_against_a_limit_far_below_the_setting_429s_are_rare_from_the_start() -> None:
    """The sandbox's leaky bucket at 600/min, ct-sync at its default 7,500/min (10,000 × 0.75), ten minutes of
    calls one after another: 12 % of the first few hundred calls were refused when the rate halved once a second
    and held at 90 % of a rate that had drawn a 429."""
    time = FakeTime()
    crowdtwist, pacer = crowdtwist_limited_to(600, time), paced(7500, time)
    refused = calls_for(600, pacer, crowdtwist, time)
    first_300 = refused[:300]
    accepted_per_minute = (len(refused) - sum(refused)) / 10
    print(f"{len(refused)} calls, {sum(refused)} refused; first 300: {sum(first_300)}; {accepted_per_minute:.0f}/min")
    assert sum(first_300) / len(first_300) <= 0.05
    assert sum(refused) / len(refused) <= 0.01
    assert 0.9 * 600 <= accepted_per_minute <= 600


def test_with_a_generous_limit_the_configured_rate_is_kept_without_a_429() -> None:
    time = FakeTime()
    crowdtwist, pacer = crowdtwist_limited_to(10_000, time), paced(7500, time)
    refused = calls_for(120, pacer, crowdtwist, time)
    assert sum(refused) == 0
    assert len(refused) == pytest.approx(2 * 7500, abs=2)


def test_a_call_whose_rate_was_lowered_while_it_waited_waits_again_at_the_new_rate() -> None:
    time = FakeTime()
    pacer = Pacer(600, clock=lambda: time.now, sleep=lambda seconds: sleep(seconds))  # 10/s
    first = pacer.acquire()

    def sleep(seconds: float) -> None:
        time.now += seconds
        if time.now == pytest.approx(0.1):  # while the second call waits, the first comes back 429
            pacer.answered(first, limited=True)

    second = pacer.acquire()
    third = pacer.acquire()
    assert (second.generation, second.waited) == (1, pytest.approx(0.2))  # its old slot at 0.1 left unused
    assert third.slot - second.slot == pytest.approx(0.4)  # 2.5/s, a quarter


class SharedTimeline:
    """Several processes' slots on one timeline, with the limit published on it (as `RedisSlots` does)."""

    def __init__(self, time: FakeTime) -> None:
        self._time = time
        self._slots = LocalSlots(lambda: time.now)
        self.published: tuple[float, float, int] | None = None  # per second, when, version

    def reserve(self, interval: float, *, again: bool = False) -> Reserved:
        reserved = self._slots.reserve(interval, again=again)
        if self.published is None:
            return reserved
        per_second, at, version = self.published
        return reserved._replace(limit=SharedLimit(per_second, self._time.now - at, version))

    def publish(self, per_second: float) -> int:
        version = self.published[2] + 1 if self.published else 1
        self.published = (per_second, self._time.now, version)
        return version

    def close(self) -> None:
        pass


def test_a_limit_measured_by_one_process_is_held_by_every_process_on_the_timeline() -> None:
    time = FakeTime()
    crowdtwist, timeline = crowdtwist_limited_to(600, time), SharedTimeline(time)
    measuring = Pacer(7500, clock=lambda: time.now, sleep=time.sleep, slots=timeline)
    other = Pacer(7500, clock=lambda: time.now, sleep=time.sleep, slots=timeline)
    time.now = measured(measuring, crowdtwist, time)
    assert timeline.published is not None
    assert other.rate_per_minute == 7500  # not told yet
    other.acquire()
    assert other.rate_per_minute == measuring.rate_per_minute == pytest.approx(0.95 * 600, rel=0.02)
    time.now += 70  # and both probe alike, on the limit's clock
    assert other.rate_per_minute == measuring.rate_per_minute > 0.95 * 600


def test_each_process_measures_the_whole_limit_from_its_share_of_the_calls() -> None:
    """Two processes on one timeline: each sees half the calls and half the refusals, and still measures 600."""
    time = FakeTime()
    crowdtwist, timeline = crowdtwist_limited_to(600, time), SharedTimeline(time)
    pacers = [Pacer(7500, clock=lambda: time.now, sleep=time.sleep, slots=timeline) for _ in range(2)]
    versions: list[int] = []
    while time.now < 10:
        for pacer in pacers:
            call(pacer, crowdtwist, time)
            if timeline.published and timeline.published[2] not in versions:
                versions.append(timeline.published[2])
                assert timeline.published[0] * 60 == pytest.approx(600, rel=0.05)
    assert versions


def test_a_published_limit_older_than_what_this_process_found_since_is_not_taken() -> None:
    time = FakeTime()
    published: list[SharedLimit] = []

    class Timeline(LocalSlots):
        def reserve(self, interval: float, *, again: bool = False) -> Reserved:
            reserved = super().reserve(interval, again=again)
            return reserved._replace(limit=published[-1]) if published else reserved

    pacer = Pacer(7500, clock=lambda: time.now, sleep=time.sleep, slots=Timeline(lambda: time.now))
    time.now = 10.0
    pacer.answered(pacer.acquire(), limited=True)  # this process finds CrowdTwist lower than the setting, now
    published.append(SharedLimit(per_second=100.0, age=2.0, version=1))  # 6,000/min, said 2 s before that
    pacer.acquire()
    assert pacer.rate_per_minute == pytest.approx(7500 / 4)
    published.append(SharedLimit(per_second=20.0, age=0.0, version=2))  # 1,200/min, said since
    pacer.acquire()
    assert pacer.rate_per_minute == pytest.approx(0.95 * 1200)


def test_admission_says_what_the_pacer_needs_back() -> None:
    time = FakeTime()
    admission = paced(600, time).acquire()
    assert admission == Admission(waited=0.0, slot=0.0, calls=1.0, generation=0)

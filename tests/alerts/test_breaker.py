"""The outage breaker as a table of fed results: when it opens, probes, and closes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync_worker.core.errors import DataRejected, NotAuthorized, TransientError
from sync_worker.worker.breaker import Breaker, BreakerState
from tests.fakes import FakeClock

DOWN = TransientError("HTTP 503", system="crowdtwist", status_code=503)


def breaker(clock: FakeClock, *, jitter: float = 0.0) -> Breaker:
    """Jitter 0 draws the whole backoff; towards 1, half of it."""
    return Breaker(
        clock=clock.now,
        threshold=3,
        first_backoff=timedelta(seconds=5),
        max_backoff=timedelta(seconds=20),
        jitter=lambda: jitter,
    )


def waits_between_probes(subject: Breaker, clock: FakeClock, probes: int) -> list[float]:
    """Open it, then fail `probes` probes in a row: the seconds from each failure to the next probe's time."""
    for _ in range(3):
        subject.record(DOWN, calls=1)
    waits = []
    for _ in range(probes):
        pause = subject.pause
        assert pause is not None
        waits.append((pause.next_probe_at - clock.now()).total_seconds())
        clock.advance(pause.next_probe_at - clock.now())
        assert subject.allow() is True
        subject.record(DOWN, calls=1)
    return waits


def test_it_opens_after_the_threshold_once_and_stops_new_syncs() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    transitions = [subject.record(DOWN, calls=1) for _ in range(10)]
    assert [t.kind for t in transitions if t] == ["opened"]
    assert subject.state is BreakerState.OPEN
    assert subject.allow() is False


def test_one_probe_when_the_backoff_has_passed_and_a_success_closes_it() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    for _ in range(3):
        subject.record(DOWN, calls=1)
    clock.advance(timedelta(seconds=5))
    assert subject.allow() is True
    assert subject.allow() is False  # exactly one probe in flight
    transition = subject.record(None, calls=1)
    assert transition is not None
    assert transition.kind == "closed"
    assert subject.state is BreakerState.CLOSED
    assert subject.allow() is True


def test_a_failed_probe_doubles_the_backoff_up_to_the_cap() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    for _ in range(3):
        subject.record(DOWN, calls=1)
    waits = []
    for _ in range(4):
        waited = 0
        while not subject.allow():
            clock.advance(timedelta(seconds=1))
            waited += 1
        waits.append(waited)
        assert subject.record(DOWN, calls=1) is None  # no new alert per failed probe
    assert waits == [5, 10, 20, 20]


@pytest.mark.parametrize("jitter", [0.0, 0.5, 0.999])
def test_jitter_draws_each_wait_between_half_and_all_of_the_backoff_and_never_past_the_cap(jitter: float) -> None:
    clock = FakeClock()
    waits = waits_between_probes(breaker(clock, jitter=jitter), clock, probes=6)
    backoffs = [5, 10, 20, 20, 20, 20]
    assert all(backoff / 2 <= wait <= backoff for wait, backoff in zip(waits, backoffs, strict=True))
    assert max(waits) <= 20  # CrowdTwist back: a probe within the cap of the last failed one


def test_the_pause_says_since_when_why_and_the_next_probe_and_follows_each_failed_probe() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    assert subject.pause is None
    opened_at = clock.now()
    for _ in range(3):
        subject.record(DOWN, calls=1)
    first = subject.pause
    assert first is not None
    assert (first.since, first.cause, first.next_probe_at) == (opened_at, "HTTP 503", opened_at + timedelta(seconds=5))
    clock.advance(timedelta(seconds=5))
    assert subject.allow() is True
    subject.record(TransientError("connection refused", system="crowdtwist"), calls=1)
    second = subject.pause
    assert second is not None
    assert (second.since, second.cause) == (opened_at, "connection refused")
    assert second.next_probe_at == clock.now() + timedelta(seconds=10)
    clock.advance(timedelta(seconds=10))
    assert subject.allow() is True
    subject.record(None, calls=1)
    assert subject.pause is None


def test_a_probe_of_ones_own_is_claimed_only_when_open_and_due_and_only_once() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    assert subject.claim_probe() is False  # closed: nothing to probe, syncs go through
    for _ in range(3):
        subject.record(DOWN, calls=1)
    assert subject.claim_probe() is False  # not yet due
    clock.advance(timedelta(seconds=5))
    assert subject.claim_probe() is True
    assert subject.claim_probe() is False  # one probe in flight
    assert subject.allow() is False  # and no member sync beside it
    subject.record(None, calls=1)
    assert subject.state is BreakerState.CLOSED


def test_a_cap_below_the_first_backoff_caps_the_first_probe_too() -> None:
    clock = FakeClock()
    subject = Breaker(clock=clock.now, threshold=1, max_backoff=timedelta(seconds=2), jitter=lambda: 0.0)
    subject.record(DOWN, calls=1)
    clock.advance(timedelta(seconds=2))
    assert subject.allow() is True


def test_refused_credentials_open_it_at_once() -> None:
    subject = breaker(FakeClock())
    transition = subject.record(NotAuthorized("HTTP 401", system="crowdtwist", status_code=401), calls=1)
    assert transition is not None
    assert transition.credentials


def test_siebel_outages_and_data_errors_say_nothing_about_crowdtwist() -> None:
    subject = breaker(FakeClock())
    for _ in range(10):
        subject.record(TransientError("down", system="siebel"), calls=0)
        subject.record(DataRejected("Email Address is already taken", system="crowdtwist"), calls=1)
    assert subject.state is BreakerState.CLOSED


def test_successes_in_between_reset_the_count() -> None:
    subject = breaker(FakeClock())
    for _ in range(5):
        subject.record(DOWN, calls=1)
        subject.record(DOWN, calls=1)
        subject.record(None, calls=1)
    assert subject.state is BreakerState.CLOSED

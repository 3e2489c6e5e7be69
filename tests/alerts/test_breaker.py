"""The outage breaker as a table of fed results: when it opens, probes, and closes."""

from __future__ import annotations

from datetime import timedelta

from sync_worker.core.errors import DataRejected, NotAuthorized, TransientError
from sync_worker.worker.breaker import Breaker, BreakerState
from tests.fakes import FakeClock

DOWN = TransientError("HTTP 503", system="crowdtwist", status_code=503)


def breaker(clock: FakeClock) -> Breaker:
    return Breaker(clock=clock.now, threshold=3, first_backoff=timedelta(seconds=5), max_backoff=timedelta(seconds=20))


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


def test_a_cap_below_the_first_backoff_caps_the_first_probe_too() -> None:
    clock = FakeClock()
    subject = Breaker(clock=clock.now, threshold=1, max_backoff=timedelta(seconds=2))  # first_backoff 5 s
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

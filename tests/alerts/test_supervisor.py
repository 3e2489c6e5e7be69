"""The supervisor with fakes: a summary line each minute (with the pace CrowdTwist held the worker to, when below
its budget); CrowdTwist probed while the breaker is open, with no member waiting, each probe's time logged and told to
the ledger; and a pause for refused credentials remembered across a restart, so the next worker tells the admins,
once, that syncing resumed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from sync_worker.alerts.dispatcher import AlertDispatcher
from sync_worker.alerts.policy import AlertPolicy
from sync_worker.core.decisions import Decision, Handled
from sync_worker.core.errors import CtSyncError, NotAuthorized, TransientError
from sync_worker.metrics import Metrics
from sync_worker.worker import supervisor as supervisor_module
from sync_worker.worker.breaker import Breaker, BreakerState, Pause
from sync_worker.worker.sizing import InFlightSizer
from sync_worker.worker.summary import MinuteSummary
from sync_worker.worker.supervisor import CREDENTIALS_REFUSED, Supervisor
from tests.fakes import FakeClock, FakeMailer
from tests.integration.helpers import eventually

PAUSED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
REFUSED = NotAuthorized("HTTP 403: Invalid API key", system="crowdtwist", status_code=403)
DOWN = TransientError("HTTP 503", system="crowdtwist", status_code=503)
CAP = timedelta(seconds=20)


class FakePauses:
    """The ledger's pause record, shared by the workers of one test."""

    def __init__(self, remembered: dict[str, datetime] | None = None) -> None:
        self.remembered = dict(remembered or {})

    def pause_began(self, reason: str, *, since: datetime, cause: str) -> None:
        self.remembered.setdefault(reason, since)

    def pause_since(self, reason: str) -> datetime | None:
        return self.remembered.get(reason)

    def end_pause(self, reason: str) -> bool:
        return self.remembered.pop(reason, None) is not None


class World:
    def __init__(self, pauses: FakePauses, *, pace: float = 10.0) -> None:
        self.clock = FakeClock()
        self.policy = AlertPolicy(notify="failures", digest_interval=timedelta(minutes=15), clock=self.clock.now)
        self.dispatcher = AlertDispatcher(FakeMailer())
        self.resubmitted: list[datetime] = []
        self.metrics = Metrics()
        self.scheduled: list[Pause] = []  # what the ledger was told
        self.supervisor = Supervisor(
            # No jitter: each wait is the whole backoff, 5 s doubling up to the cap.
            breaker=Breaker(clock=self.clock.now, threshold=5, max_backoff=CAP, jitter=lambda: 0.0),
            policy=self.policy,
            dispatcher=self.dispatcher,
            metrics=self.metrics,
            clock=self.clock.now,
            monotonic=self.clock.monotonic,
            resubmit_failed_since=lambda since: self.resubmitted.append(since) or 0,
            summary=MinuteSummary(budget_per_minute=600),
            pauses=pauses,
            sizer=InFlightSizer(calls_per_second=lambda: pace, cap=64, cpu_seconds=None),  # Little's law alone
            on_probe_scheduled=self.scheduled.append,
            spawn=lambda job: job(),  # a probe runs in place; its answer is acted on at the next tick
        )

    def subjects(self) -> list[str]:
        return [alert.subject for alert in self.policy.due()]


@pytest.fixture
def worlds() -> Iterator[list[World]]:
    made: list[World] = []
    yield made
    for world in made:
        world.dispatcher.close()


def start(worlds: list[World], pauses: FakePauses, *, pace: float = 10.0) -> World:
    world = World(pauses, pace=pace)
    worlds.append(world)
    return world


def handled(outcome: str, *, calls: int, error: CtSyncError | None = None) -> Handled:
    action = "retry_later" if outcome == "Retrying" else "ack"
    return Handled(Decision(action, outcome), "296-1", calls, error)  # type: ignore[arg-type]


def summaries(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    return [line for line in lines if line["event"] == "worker_summary"]


def test_a_summary_line_each_minute_says_what_the_worker_did(
    worlds: list[World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = start(worlds, FakePauses())
    for _ in range(40):
        world.supervisor.handled(replace(handled("Synced", calls=2), busy_seconds=0.4))
    world.supervisor.handled(handled("Data Error", calls=1))
    world.supervisor.handled(handled("Unchanged", calls=0))
    world.supervisor.summary.queue_depth(1250)
    with capture_logs() as lines:
        # A logger of the capture's own: one an earlier test used may be cached with the real configuration.
        monkeypatch.setattr(supervisor_module, "log", structlog.get_logger("ct_sync.supervisor"))
        world.clock.advance(timedelta(seconds=59))
        world.supervisor.tick()
        assert summaries(lines) == []
        world.clock.advance(timedelta(seconds=1))
        world.supervisor.tick()
    assert summaries(lines) == [
        {
            "event": "worker_summary",
            "log_level": "info",
            "seconds": 60,
            "synced": 40,
            "unchanged": 1,
            "skipped": 0,
            "errors": 1,
            "errors_by_status": {"Data Error": 1},
            "retries": 0,
            "crowdtwist_calls": 81,
            "budget_use": "14%",
            "queue_depth": 1250,
            "in_flight_limit": 5,  # 10 calls/s × 0.4 s per sync, and a quarter more
            "paused": False,
        }
    ]


def test_the_summary_shows_the_pace_crowdtwist_s_429s_held_the_worker_to_when_below_its_budget(
    worlds: list[World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = start(worlds, FakePauses(), pace=9.5)  # the budget is 600 a minute; CrowdTwist let through 600 at most
    with capture_logs() as lines:
        monkeypatch.setattr(supervisor_module, "log", structlog.get_logger("ct_sync.supervisor"))
        world.clock.advance(timedelta(seconds=60))
        world.supervisor.tick()
    (line,) = summaries(lines)
    assert line["crowdtwist_pace_per_minute"] == 570
    at_budget = world.supervisor.summary.take(seconds=60, pause=None, pace_per_minute=600)
    assert "crowdtwist_pace_per_minute" not in at_budget  # nothing to say
    assert "ct_sync_crowdtwist_pace_per_minute 570.0" in generate_latest(world.metrics.registry).decode()


def test_a_refusal_of_our_credentials_is_remembered_for_the_next_start(worlds: list[World]) -> None:
    pauses = FakePauses()
    world = start(worlds, pauses)
    world.supervisor.handled(handled("Retrying", calls=1, error=REFUSED))
    assert world.subjects() == ["[ct-sync] CrowdTwist refused our credentials: syncing paused"]
    assert pauses.remembered == {CREDENTIALS_REFUSED: world.clock.now()}


def test_a_worker_started_after_a_credentials_pause_says_once_that_syncing_resumed(worlds: list[World]) -> None:
    pauses = FakePauses({CREDENTIALS_REFUSED: PAUSED})
    first, second = start(worlds, pauses), start(worlds, pauses)  # two workers restarted with the new key
    first.supervisor.started(probe=lambda: None)
    second.supervisor.started(probe=lambda: None)
    assert first.subjects() == ["[ct-sync] CrowdTwist accepts our credentials again: syncing resumed"]
    assert second.subjects() == []
    assert pauses.remembered == {}
    assert first.resubmitted == [PAUSED]  # the members the pause failed are queued again


def test_a_worker_started_with_a_key_still_refused_alerts_again_and_keeps_the_pause(worlds: list[World]) -> None:
    pauses = FakePauses({CREDENTIALS_REFUSED: PAUSED})
    world = start(worlds, pauses)

    def refused() -> None:
        raise REFUSED

    world.supervisor.started(probe=refused)
    assert world.subjects() == ["[ct-sync] CrowdTwist refused our credentials: syncing paused"]
    assert pauses.remembered == {CREDENTIALS_REFUSED: PAUSED}
    world.supervisor.handled(handled("Synced", calls=1))  # were the key to work again after all:
    assert world.subjects() == ["[ct-sync] CrowdTwist reachable again: syncing resumed"]  # one email, not two
    assert pauses.remembered == {}


class CrowdTwist:
    """The probe's view of CrowdTwist: down or up, and how often it was asked."""

    def __init__(self) -> None:
        self.down = True
        self.probes: list[datetime] = []

    def probe(self, clock: FakeClock) -> None:
        self.probes.append(clock.now())
        if self.down:
            raise DOWN


def open_breaker(world: World) -> None:
    for _ in range(5):
        world.supervisor.handled(handled("Retrying", calls=1, error=DOWN))
    assert world.supervisor.breaker.state is BreakerState.OPEN


def ticks_until(world: World, moment: datetime) -> None:
    """The consumer's loop ticking until `moment`, a second at a time (no member waiting)."""
    while world.clock.now() < moment:
        world.clock.advance(timedelta(seconds=1))
        world.supervisor.tick()


def test_while_open_crowdtwist_is_probed_with_no_member_waiting_and_syncing_resumes_at_the_first_answer(
    worlds: list[World],
) -> None:
    world = start(worlds, FakePauses())
    crowdtwist = CrowdTwist()
    world.supervisor.started(probe=lambda: crowdtwist.probe(world.clock))
    opened = world.clock.now()
    open_breaker(world)
    ticks_until(world, opened + timedelta(minutes=2))  # down for two minutes
    assert crowdtwist.probes == [opened + timedelta(seconds=s) for s in (5, 15, 35, 55, 75, 95, 115)]
    crowdtwist.down = False
    back = world.clock.now()
    ticks_until(world, back + CAP)
    assert world.supervisor.breaker.state is BreakerState.CLOSED
    assert crowdtwist.probes[-1] - back <= CAP  # the first probe after CrowdTwist's return answered
    assert len(crowdtwist.probes) == 8  # and no probe since: syncing resumed
    assert world.subjects() == [
        "[ct-sync] CrowdTwist unreachable: syncing paused",
        "[ct-sync] CrowdTwist reachable again: syncing resumed",
    ]
    eventually(lambda: world.resubmitted == [opened])  # the members the outage failed, queued again


def test_each_probe_scheduled_is_logged_and_told_to_the_ledger_at_most_the_cap_after_the_failure(
    worlds: list[World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = start(worlds, FakePauses())
    crowdtwist = CrowdTwist()
    world.supervisor.started(probe=lambda: crowdtwist.probe(world.clock))
    opened = world.clock.now()
    with capture_logs() as lines:
        monkeypatch.setattr(supervisor_module, "log", structlog.get_logger("ct_sync.supervisor"))
        open_breaker(world)
        ticks_until(world, opened + timedelta(seconds=60))
    logged = [line for line in lines if line["event"] == "crowdtwist_probe_scheduled"]
    assert [line["next_probe_at"] for line in logged] == [pause.next_probe_at.isoformat() for pause in world.scheduled]
    assert [pause.next_probe_at - opened for pause in world.scheduled] == [
        timedelta(seconds=s) for s in (5, 15, 35, 55, 75)
    ]
    assert {(pause.since, pause.cause) for pause in world.scheduled} == {(opened, "HTTP 503")}
    # Each probe time is at most the cap after the failure that scheduled it (the breaker opening, or a probe).
    failures = [opened, *crowdtwist.probes]
    after_failure = [pause.next_probe_at - failed for pause, failed in zip(world.scheduled, failures, strict=True)]
    assert all(timedelta(0) < wait <= CAP for wait in after_failure)
    assert logged[0]["paused_since"] == opened.isoformat()
    assert logged[0]["in_s"] == 5.0


def test_the_summary_line_says_since_when_syncing_is_paused_and_when_the_next_probe_is(
    worlds: list[World], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = start(worlds, FakePauses())
    crowdtwist = CrowdTwist()
    world.supervisor.started(probe=lambda: crowdtwist.probe(world.clock))
    opened = world.clock.now()
    open_breaker(world)
    with capture_logs() as lines:
        monkeypatch.setattr(supervisor_module, "log", structlog.get_logger("ct_sync.supervisor"))
        ticks_until(world, opened + timedelta(seconds=60))
    [line] = summaries(lines)
    assert line["paused"] is True
    assert line["paused_since"] == opened.isoformat()
    assert line["next_probe_at"] == (opened + timedelta(seconds=75)).isoformat()
    assert line["probes"] == 4  # at 5, 15, 35 and 55 s
    assert line["crowdtwist_calls"] == 5 + 4  # the syncs that opened the breaker, and the probes


def test_a_credentials_pause_ends_at_the_first_probe_crowdtwist_accepts_with_no_member_waiting(
    worlds: list[World],
) -> None:
    pauses = FakePauses({CREDENTIALS_REFUSED: PAUSED})
    world = start(worlds, pauses)
    refusing = True

    def probe() -> None:
        if refusing:
            raise REFUSED

    world.supervisor.started(probe=probe)  # restarted with the old key: refused at once
    assert world.supervisor.breaker.state is BreakerState.OPEN
    ticks_until(world, world.clock.now() + timedelta(seconds=30))
    refusing = False  # the key is fixed on CrowdTwist's side
    ticks_until(world, world.clock.now() + CAP)
    assert world.supervisor.breaker.state is BreakerState.CLOSED
    assert pauses.remembered == {}
    assert world.subjects() == [
        "[ct-sync] CrowdTwist refused our credentials: syncing paused",
        "[ct-sync] CrowdTwist reachable again: syncing resumed",
    ]

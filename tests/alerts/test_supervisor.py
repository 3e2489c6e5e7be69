"""The supervisor with fakes: a summary line each minute (with the pace CrowdTwist held the worker to, when below
its budget), and a pause for refused credentials remembered across a restart, so the next worker tells the admins,
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
from sync_worker.core.errors import CtSyncError, NotAuthorized
from sync_worker.metrics import Metrics
from sync_worker.worker import supervisor as supervisor_module
from sync_worker.worker.breaker import Breaker
from sync_worker.worker.sizing import InFlightSizer
from sync_worker.worker.summary import MinuteSummary
from sync_worker.worker.supervisor import CREDENTIALS_REFUSED, Supervisor
from tests.fakes import FakeClock, FakeMailer

PAUSED = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
REFUSED = NotAuthorized("HTTP 403: Invalid API key", system="crowdtwist", status_code=403)


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
        self.supervisor = Supervisor(
            breaker=Breaker(clock=self.clock.now, threshold=5),
            policy=self.policy,
            dispatcher=self.dispatcher,
            metrics=self.metrics,
            clock=self.clock.now,
            monotonic=self.clock.monotonic,
            resubmit_failed_since=lambda since: self.resubmitted.append(since) or 0,
            summary=MinuteSummary(budget_per_minute=600),
            pauses=pauses,
            sizer=InFlightSizer(calls_per_second=lambda: pace, cap=64, cpu_seconds=None),  # Little's law alone
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
    at_budget = world.supervisor.summary.take(seconds=60, paused=False, pace_per_minute=600)
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

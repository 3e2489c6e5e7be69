"""The outage gate for the ledger and Siebel, fed results and ticked on a fake clock: when it shuts, how it probes
and backs off, what it logs and emails, and when it opens again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from structlog.testing import capture_logs

from sync_worker.alerts.policy import AlertPolicy
from sync_worker.core.decisions import Decision, Handled
from sync_worker.core.errors import CtSyncError, TransientError
from sync_worker.worker.outages import OutageGate
from tests.fakes import FakeClock, Script

LEDGER_DOWN = TransientError("ledger unavailable: connection refused", system="ledger")
SIEBEL_DOWN = TransientError("Siebel unavailable: HTTP 503", system="siebel", status_code=503)
RETRY = Decision("retry_later", "Retrying")
SYNCED = Handled(Decision("ack", "Synced"), "296-1", 1)


def failed(error: CtSyncError) -> Handled:
    return Handled(RETRY, "296-1", 0, error)


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.policy = AlertPolicy(notify="failures", digest_interval=timedelta(hours=1), clock=self.clock.now)
        self.ledger = Script()  # the ledger probe's failures
        self.siebel = Script()
        self.probes: list[str] = []
        self.deferred: list[Callable[[], None]] = []
        self.defer = False  # hold probes back, as a slow probe on its own thread would be
        self.gate = OutageGate(
            probes={
                "ledger": lambda: self._probe("ledger", self.ledger),
                "siebel": lambda: self._probe("siebel", self.siebel),
            },
            clock=self.clock,
            policy=self.policy,
            alert_after=timedelta(minutes=5),
            threshold=3,
            first_backoff=1.0,
            max_backoff=8.0,
            run_probe=self._run,
        )

    def _probe(self, system: str, script: Script) -> None:
        self.probes.append(system)
        script.next()

    def _run(self, probe: Callable[[], None]) -> None:
        if self.defer:
            self.deferred.append(probe)
        else:
            probe()

    def feed(self, *results: Handled) -> None:
        for result in results:
            self.gate.handled(result)

    def after(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.gate.tick()

    def subjects(self) -> list[str]:
        return [alert.subject for alert in self.policy.due()]


def test_three_syncs_in_a_row_failing_on_the_ledger_shut_the_gate_and_fewer_do_not() -> None:
    world = World()
    world.feed(failed(LEDGER_DOWN), failed(LEDGER_DOWN), SYNCED, failed(LEDGER_DOWN), failed(LEDGER_DOWN))
    assert world.gate.allow() is True  # a success in between: two blips, no outage
    world.feed(failed(LEDGER_DOWN))
    assert world.gate.allow() is False
    assert world.gate.up("ledger") is False
    assert world.gate.up("siebel") is True


def test_history_the_ledger_would_not_take_counts_as_a_failure_of_the_ledger() -> None:
    world = World()
    world.feed(*[Handled(Decision("ack", "Synced"), "296-1", 1, ledger_error=LEDGER_DOWN)] * 3)
    assert world.gate.allow() is False


def test_crowdtwist_failures_and_refusals_are_not_outages_of_ours() -> None:
    world = World()
    crowdtwist_down = TransientError("HTTP 503", system="crowdtwist", status_code=503)
    siebel_refuses = CtSyncError("Siebel refused the request (HTTP 400)", system="siebel", status_code=400)
    world.feed(*[failed(crowdtwist_down)] * 5, *[failed(siebel_refuses)] * 5)
    assert world.gate.allow() is True


def test_while_down_one_probe_at_a_time_with_a_backoff_that_doubles_to_its_cap() -> None:
    world = World()
    world.ledger.failures = [LEDGER_DOWN] * 10
    world.feed(*[failed(LEDGER_DOWN)] * 3)
    probe_times = []
    for second in range(1, 40):
        before = len(world.probes)
        world.after(1)
        if len(world.probes) > before:
            probe_times.append(second)
    # First after 1 s, then 2, 4, 8, 8, … seconds apart.
    assert probe_times == [1, 3, 7, 15, 23, 31, 39]
    assert world.gate.allow() is False


def test_a_probe_still_running_is_not_joined_by_another() -> None:
    world = World()
    world.defer = True
    world.feed(*[failed(LEDGER_DOWN)] * 3)
    for _ in range(10):
        world.after(1)
    assert len(world.deferred) == 1
    world.deferred.pop()()
    assert world.gate.allow() is True


def test_the_outage_is_logged_once_when_it_goes_and_once_when_it_returns_however_many_syncs_fail() -> None:
    world = World()
    world.ledger.failures = [LEDGER_DOWN] * 3
    with capture_logs() as logs:
        world.feed(*[failed(LEDGER_DOWN)] * 200)
        world.after(1)
        world.feed(*[failed(LEDGER_DOWN)] * 3)  # syncs in flight when it went, ending now
        for _ in range(30):
            world.after(1)
    said = [(line["event"], line["log_level"]) for line in logs if line["log_level"] != "debug"]
    assert said == [("ledger_unavailable", "warning"), ("ledger_available_again", "info")]


def test_a_short_outage_sends_no_email_and_a_long_one_sends_one_each_way() -> None:
    short, long = World(), World()
    short.ledger.failures = [LEDGER_DOWN] * 2
    long.ledger.failures = [LEDGER_DOWN] * 40  # about 5 min of probes: 1, 2, 4, then every 8 s
    for world in (short, long):
        world.feed(*[failed(LEDGER_DOWN)] * 3)
        for _ in range(400):
            world.after(1)
    assert short.subjects() == []
    assert long.subjects() == [
        "[ct-sync] the ledger database unreachable: syncing paused",
        "[ct-sync] the ledger database reachable again: syncing resumed",
    ]


def test_siebel_and_the_ledger_go_and_return_apart() -> None:
    world = World()
    world.siebel.failures = [SIEBEL_DOWN] * 2
    world.feed(*[failed(SIEBEL_DOWN)] * 3)
    world.feed(*[failed(LEDGER_DOWN)] * 3)
    world.after(1)
    assert (world.gate.up("ledger"), world.gate.up("siebel")) == (True, False)
    assert world.gate.allow() is False
    for _ in range(10):
        world.after(1)
    assert world.gate.allow() is True


def test_a_probe_that_crashes_keeps_the_gate_shut_and_is_tried_again() -> None:
    world = World()

    def crash() -> None:
        raise RuntimeError("a bug")

    crashes = 0

    def run(probe: Callable[[], None]) -> None:
        nonlocal crashes
        crashes += 1
        probe()

    world.gate = OutageGate(
        probes={"ledger": crash},
        clock=world.clock,
        policy=world.policy,
        alert_after=timedelta(minutes=5),
        run_probe=run,
    )
    world.feed(*[failed(LEDGER_DOWN)] * 3)
    for _ in range(4):
        world.after(1)
    assert world.gate.allow() is False
    assert crashes == 2  # after 1 s, then 2 s later

"""Faults around a real `ct-sync worker` process: a flaky CrowdTwist, Siebel down during write-back, poison sizes.
Each test prints what it counted."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from sandbox.servers import SiebelEmulatorServer
from tests.integration.helpers import eventually
from tests.integration.worker_process import Run, siebel_rest_settings, stop

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def _attempts_per_member(run: Run) -> Counter[str]:
    with sqlite3.connect(run.env["CTSYNC_DATA_DIR"] + "/ledger.sqlite") as db:
        return Counter(number for (number,) in db.execute("SELECT member_number FROM ct_sync_attempts"))


def test_a_flaky_crowdtwist_ends_with_everyone_synced_once_and_attempts_bounded(run: Run) -> None:
    # 20 % server errors, 5 % timeouts, and 5 % of creates stored by CrowdTwist whose answer never arrives.
    run.sandbox.state.set_faults(error_rate=0.2, timeout_rate=0.05, commit_then_timeout_rate=0.05, hang_seconds=2.5)
    numbers = run.enroll(300)
    worker = run.start_worker(
        CTSYNC_CROWDTWIST__TIMEOUT="1s",
        CTSYNC_CROWDTWIST__RETRY_MAX_TIME="5s",
        CTSYNC_WORKER__RETRY_FIRST_DELAY="1s",  # the schedule's shape, compressed to fit a test
        CTSYNC_WORKER__RETRY_MAX_DELAY="4s",
    )
    eventually(lambda: run.synced() == len(numbers), timeout=150)
    assert stop(worker) == 0
    stats = run.sandbox.state.stats()
    attempts = _attempts_per_member(run)
    print(f"synced {run.synced()}/{len(numbers)}; 5xx {stats['server_errors']}, timeouts {stats['timeouts']}; "
          f"calls {stats['total_calls']}; most attempts for one member {max(attempts.values())}")  # fmt: skip
    assert stats["server_errors"] > 0
    assert stats["timeouts"] > 0
    assert all(run.sandbox.state.users_with_third_party_id(number) == 1 for number in numbers)
    assert max(attempts.values()) <= 6
    assert stats["total_calls"] < 3 * len(numbers)


def test_siebel_down_during_write_back_delays_the_outcome_and_loses_none(run: Run) -> None:
    emulator = run.siebel_emulator()
    with SiebelEmulatorServer(emulator) as siebel:
        run.sandbox.state.set_faults(latency=0.02)
        numbers = run.enroll(150)
        worker = run.start_worker(
            **siebel_rest_settings(siebel),
            CTSYNC_WORKER__RETRY_FIRST_DELAY="1s",  # Siebel redeliveries come every 2 s instead of 30 s
        )
        eventually(lambda: run.synced() >= 20, timeout=60)
        emulator.down = True
        eventually(lambda: "Siebel unavailable" in run.log.read_text(), timeout=30)
        synced_while_down = run.synced()
        emulator.down = False
        eventually(lambda: run.synced() == len(numbers), timeout=120)
        assert stop(worker) == 0
    stats = run.sandbox.state.stats()
    print(f"synced {run.synced()}/{len(numbers)} ({synced_while_down} before the outage); creates {stats['creates']}")
    assert stats["max_creates_per_third_party_id"] == 1
    assert run.queue_depth() == 0


def test_sixty_second_crowdtwist_answers_lose_no_connection_and_duplicate_nothing(run: Run) -> None:
    run.sandbox.state.set_faults(latency=60.0)
    numbers = run.enroll(2)
    worker = run.start_worker(CTSYNC_CROWDTWIST__TIMEOUT="90s", CTSYNC_BROKER__HEARTBEAT="10")
    eventually(lambda: run.synced() == len(numbers), timeout=120)
    assert stop(worker) == 0
    log = run.log.read_text()
    lost = "broker_connection_lost" in log
    print(f"synced {run.synced()} of {len(numbers)} through 60 s answers; connection lost: {lost}")
    assert "broker_connection_lost" not in log
    assert run.sandbox.state.stats()["max_creates_per_third_party_id"] == 1


def test_write_backs_siebel_refuses_for_good_end_in_the_dead_letter_queue_and_the_others_go_on(run: Run) -> None:
    """Siebel answers 403 to two members' write-backs: before, each froze a sync slot for good while /readyz stayed
    green. Now each is tried a bounded number of times, dead-lettered with its reason and alerted; the rest sync."""
    emulator = run.siebel_emulator()
    with SiebelEmulatorServer(emulator) as siebel:
        numbers = run.enroll(20)
        locked = [run.store.document(number)["Id"] for number in numbers[:2]]  # type: ignore[index]
        emulator.refused_writes = dict.fromkeys(locked, 403)
        worker = run.start_worker(
            **siebel_rest_settings(siebel),
            CTSYNC_WORKER__CONCURRENCY="2",  # two frozen slots would have stopped this worker entirely
            CTSYNC_WORKER__RETRY_FIRST_DELAY="0.5s",
        )
        eventually(lambda: run.synced() == len(numbers) - 2, timeout=60)
        eventually(lambda: run.dead_letters() == 2, timeout=60)
        assert stop(worker) == 0
    outbox = list((run.log.parent / "outbox").glob("*.eml"))
    print(f"synced {run.synced()}, dead-lettered {run.dead_letters()}, alerts {len(outbox)}")
    assert any("Dead-lettered" in mail.read_text() for mail in outbox)
    assert "Siebel refused it 3 times" in run.log.read_text()

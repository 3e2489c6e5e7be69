"""`ct-sync worker` as a real process on a real RabbitMQ, against the CrowdTwist sandbox over HTTP:
killed mid-run, broker restarted, slow CrowdTwist, SIGTERM. Counts what was synced, lost and duplicated."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from tests.integration.helpers import eventually
from tests.integration.worker_process import Run, stop

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def test_three_sigkills_during_a_5000_member_run_lose_nothing_and_duplicate_nothing(run: Run) -> None:
    numbers = run.enroll(5000)
    for target in (1000, 2500, 4000):
        worker = run.start_worker()
        eventually(lambda target=target: run.synced() >= target, timeout=120)  # type: ignore[misc]
        worker.kill()  # SIGKILL: no goodbye; unacked messages go back to the queue
        worker.wait()
    worker = run.start_worker()
    eventually(lambda: run.synced() == len(numbers), timeout=180)
    assert stop(worker) == 0
    stats = run.sandbox.state.stats()
    duplicated = sum(1 for number in numbers if run.sandbox.state.users_with_third_party_id(number) != 1)
    print(f"synced {run.synced()} of {len(numbers)}, lost {len(numbers) - run.synced()}, duplicated {duplicated}, "
          f"creates {stats['creates']}, CrowdTwist calls {stats['total_calls']}")  # fmt: skip
    assert duplicated == 0
    assert stats["max_creates_per_third_party_id"] == 1
    assert run.queue_depth() == 0


@pytest.mark.parametrize(
    "rules",
    [
        {"duplicate_third_party_id": "refuse", "email_checked_first": True},
        {"duplicate_third_party_id": "refuse", "email_checked_first": False, "third_party_id_taken": "not unique"},
        {"duplicate_third_party_id": "accept"},
    ],
    ids=["refused-email-first", "refused-on-third-party-id", "accepted"],
)
def test_a_sigkill_mid_run_creates_no_member_twice_and_blames_none_whatever_crowdtwist_does_with_a_second_create(
    run: Run, rules: dict[str, object]
) -> None:
    """Killed with creates in flight: CrowdTwist stored some whose outcome was never written, and their enrolls
    come again. No page promises CrowdTwist refuses a second user with the same third_party_id, nor which rule it
    checks first: each way, no member is created twice and none is wrongly written Data Error (before: 4-6 of 300)."""
    run.sandbox.state.set_rules(**rules)
    run.sandbox.state.set_faults(latency=0.05)  # creates stay in flight long enough for the kill to catch some
    numbers = run.enroll(300)
    worker = run.start_worker()
    eventually(lambda: run.synced() >= 100, timeout=120)
    worker.kill()
    worker.wait()
    worker = run.start_worker()
    eventually(lambda: run.synced() == len(numbers), timeout=180)
    assert stop(worker) == 0
    data_errors = [d["Member Number"] for d in run.store.documents() if d.get("CT Sync Status") == "Data Error"]
    twice = [number for number in numbers if run.sandbox.state.users_with_third_party_id(number) != 1]
    stats = run.sandbox.state.stats()
    print(f"{rules}: synced {run.synced()}/{len(numbers)}, created twice {len(twice)}, Data Error {len(data_errors)}, "
          f"creates {stats['creates']}, calls {stats['total_calls']}")  # fmt: skip
    assert twice == []
    assert data_errors == []
    assert stats["max_creates_per_third_party_id"] == 1


def test_slow_crowdtwist_answers_keep_the_broker_connection(run: Run) -> None:
    run.sandbox.state.set_faults(latency=8.0)  # four heartbeat intervals of 2 s
    run.enroll(3)
    worker = run.start_worker()
    eventually(lambda: run.synced() == 3, timeout=60)
    assert stop(worker) == 0
    log = run.log.read_text()
    assert "broker_connection_lost" not in log
    assert run.sandbox.state.stats()["creates"] == 3


def test_sigterm_finishes_the_syncs_in_flight_and_exits_cleanly(run: Run) -> None:
    run.sandbox.state.set_faults(latency=1.5)
    run.enroll(8)
    worker = run.start_worker()
    eventually(lambda: run.sandbox.state.stats()["total_calls"] >= 1, timeout=30)
    assert stop(worker) == 0
    # Everything started was finished and acked; anything not started is still queued, nothing is lost.
    assert run.synced() + run.queue_depth() == 8
    started = next(json.loads(line) for line in run.log.read_text().splitlines() if '"worker_started"' in line)
    assert started["crowdtwist"] == run.sandbox.url
    assert started["broker"] == "amqp://127.0.0.1:5672//"  # the guest:guest of the URL left out


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="rabbitmqctl is needed to restart the broker")
def test_the_worker_reconnects_after_a_broker_restart(run: Run) -> None:
    run.sandbox.state.set_faults(latency=0.02)
    numbers = run.enroll(300)
    worker = run.start_worker()
    eventually(lambda: run.synced() >= 50, timeout=60)
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
    time.sleep(1)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=60)
    back = time.time()
    eventually(lambda: run.log.read_text().count("worker_consuming") >= 2, timeout=30)
    reconnected = time.time() - back
    eventually(lambda: run.synced() == len(numbers), timeout=120)
    assert stop(worker) == 0
    print(f"reconnected {reconnected:.1f} s after the broker was back; synced {run.synced()} of {len(numbers)}")
    assert reconnected < 10
    assert run.sandbox.state.stats()["max_creates_per_third_party_id"] == 1
    assert "broker_connection_lost" in run.log.read_text()

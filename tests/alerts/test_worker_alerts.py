"""The worker's alerts, breaker and metrics end to end: CrowdTwist (the sandbox) goes down and comes back; and the
intake's digest, read against the ledger as it is sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from config import Settings
from sandbox.crowdtwist import SandboxState
from sandbox.servers import SandboxServer
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.bootstrap import Worker, build_intake, build_worker
from sync_worker.core.messages import MemberEvent
from sync_worker.core.ports import AttemptRecord
from sync_worker.queue.publisher import build_publisher
from tests.alerts.conftest import SmtpServer, free_port
from tests.builders import PROGRAM, siebel_member
from tests.fakes import FakeClock
from tests.integration.helpers import eventually

pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, sandbox: SandboxServer, smtp_port: int) -> Settings:
    return Settings(
        data_dir=tmp_path,
        crowdtwist={"base_url": sandbox.url, "retry_attempts": 1},
        siebel={"program_id": PROGRAM},
        alerts={"to": ["admins@example.com"], "smtp_host": "127.0.0.1", "smtp_port": smtp_port},
        worker={"concurrency": 4, "breaker_threshold": 3, "retry_budget": "5m"},
        metrics={"port": free_port()},
    )


def _enroll(settings: Settings, count: int) -> list[str]:
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    numbers = [f"296-{n}" for n in range(count)]
    for number in numbers:
        store.upsert_member(siebel_member(**{"Member Number": number, "Email Address": f"{number}@example.com"}))
    publisher = build_publisher(settings)
    publisher.publish_many(MemberEvent(event_type="enroll", member_number=number) for number in numbers)
    publisher.close()
    return numbers


def _synced(settings: Settings) -> int:
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    return sum(1 for document in store.documents() if document.get("CT Sync Status") == "Synced")


@pytest.fixture
def running() -> Iterator[list[tuple[Worker, threading.Thread]]]:
    started: list[tuple[Worker, threading.Thread]] = []
    yield started
    for worker, thread in started:
        worker.stop()
        thread.join(30)
        worker.close()


def _start(settings: Settings, running: list[tuple[Worker, threading.Thread]]) -> Worker:
    worker = build_worker(settings)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    running.append((worker, thread))
    return worker


def test_an_outage_pauses_syncing_with_one_alert_and_one_recovery_then_everyone_syncs(
    tmp_path: Path, smtp: SmtpServer, running: list[tuple[Worker, threading.Thread]]
) -> None:
    with SandboxServer() as sandbox:
        sandbox.state.set_faults(down=True)
        settings = _settings(tmp_path, sandbox, smtp.port)
        numbers = _enroll(settings, 20)
        worker = _start(settings, running)
        eventually(lambda: any("unreachable" in subject for subject in smtp.inbox.subjects), timeout=30)
        calls_while_down = sandbox.state.stats()["total_calls"]
        sandbox.state.set_faults(down=False)
        eventually(lambda: _synced(settings) == len(numbers), timeout=60)
        eventually(lambda: any("reachable again" in subject for subject in smtp.inbox.subjects), timeout=10)
        metrics = httpx.get(f"http://127.0.0.1:{settings.metrics.port}/metrics").text
        worker.stop()
    unreachable = [s for s in smtp.inbox.subjects if "unreachable" in s]
    recovered = [s for s in smtp.inbox.subjects if "reachable again" in s]
    print(f"calls while down: {calls_while_down}; emails: {smtp.inbox.subjects}")
    assert (len(unreachable), len(recovered)) == (1, 1)
    assert calls_while_down < 20, "the breaker did not pause syncing: every member was tried against the outage"
    assert 'ct_sync_outcomes_total{outcome="Synced"} 20.0' in metrics
    assert "ct_sync_breaker_state 0.0" in metrics


def test_a_dead_smtp_server_does_not_stop_syncing(
    tmp_path: Path, running: list[tuple[Worker, threading.Thread]]
) -> None:
    with SandboxServer() as sandbox:
        settings = _settings(tmp_path, sandbox, free_port())  # nothing listens there
        store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
        store.upsert_member(siebel_member(**{"Member Number": "296-bad", "Last Name": ""}))
        numbers = _enroll(settings, 10)
        publisher = build_publisher(settings)
        publisher.publish(MemberEvent(event_type="enroll", member_number="296-bad"))
        publisher.close()
        _start(settings, running)
        eventually(lambda: _synced(settings) == len(numbers), timeout=30)
        eventually(lambda: (store.document("296-bad") or {}).get("CT Sync Status") == "Data Error", timeout=30)


def test_members_failed_by_an_outage_are_resubmitted_by_themselves_when_it_ends(
    tmp_path: Path, smtp: SmtpServer, running: list[tuple[Worker, threading.Thread]]
) -> None:
    with SandboxServer() as sandbox:
        sandbox.state.set_faults(down=True)
        base = _settings(tmp_path, sandbox, smtp.port)
        # A short budget, so the outage writes CT Failure onto members before CrowdTwist is back.
        settings = base.model_copy(
            update={"worker": base.worker.model_copy(update={"retry_budget": timedelta(seconds=2),
                                                              "retry_first_delay": timedelta(milliseconds=500)})}
        )  # fmt: skip
        # As many members as sync threads: all fail at once, then wait; the first probe finds one past its budget.
        numbers = _enroll(settings, 4)
        _start(settings, running)
        store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
        eventually(lambda: any(d.get("CT Sync Status") == "CT Failure" for d in store.documents()), timeout=60)
        failed = sorted(d["Member Number"] for d in store.documents() if d.get("CT Sync Status") == "CT Failure")
        sandbox.state.set_faults(down=False)
        eventually(lambda: _synced(settings) == len(numbers), timeout=90)
    print(f"{len(failed)} member(s) ended CT Failure during the outage; all {len(numbers)} Synced after it")
    assert failed


def test_a_worker_restarted_with_a_good_key_after_a_credentials_pause_emails_that_syncing_resumed(
    tmp_path: Path, smtp: SmtpServer, running: list[tuple[Worker, threading.Thread]]
) -> None:
    with SandboxServer(SandboxState(api_key="rotated-key-2")) as sandbox:
        default = _settings(tmp_path, sandbox, smtp.port)
        quick = default.worker.model_copy(update={"retry_first_delay": timedelta(milliseconds=500)})
        base = default.model_copy(update={"worker": quick})  # the refused members are retried soon after
        revoked = base.model_copy(
            update={"crowdtwist": base.crowdtwist.model_copy(update={"api_key": SecretStr("revoked-key-1")})}
        )
        numbers = _enroll(revoked, 3)
        _start(revoked, running)
        eventually(lambda: any("refused our credentials" in subject for subject in smtp.inbox.subjects), timeout=30)
        paused, thread = running.pop()
        paused.stop()
        thread.join(30)
        paused.close()
        fixed = base.model_copy(
            update={"crowdtwist": base.crowdtwist.model_copy(update={"api_key": SecretStr("rotated-key-2")})}
        )
        _start(fixed, running)  # the operator's restart, with the new key
        eventually(lambda: any("accepts our credentials again" in s for s in smtp.inbox.subjects), timeout=30)
        eventually(lambda: _synced(fixed) == len(numbers), timeout=60)
    assert [s for s in smtp.inbox.subjects if "credentials" in s] == [
        "[ct-sync] CrowdTwist refused our credentials: syncing paused",
        "[ct-sync] CrowdTwist accepts our credentials again: syncing resumed",
    ]


def test_the_intakes_digest_names_members_as_they_stand_when_it_is_sent(tmp_path: Path, smtp: SmtpServer) -> None:
    """The queue refused two enrolls at the intake (OIC Failure); a worker, another process, has synced one of them
    since. The intake's digest, sent as it stops, names only the other."""
    clock = FakeClock()
    settings = Settings(
        data_dir=tmp_path,
        siebel={"program_id": PROGRAM},
        alerts={"to": ["admins@example.com"], "smtp_host": "127.0.0.1", "smtp_port": smtp.port},
    )
    intake = build_intake(settings, clock=clock)
    refused = clock.now()
    intake.ledger.record([
        AttemptRecord(event_id="e1", member_number="296-1", event_type="enroll", outcome="OIC Failure",
                      at=refused, error="queue unreachable", source="intake"),
        AttemptRecord(event_id="e2", member_number="296-2", event_type="enroll", outcome="OIC Failure",
                      at=refused, error="queue unreachable", source="intake"),
        AttemptRecord(event_id="e3", member_number="296-1", event_type="enroll", outcome="Synced",
                      at=refused + timedelta(minutes=2), source="resubmit"),
    ])  # fmt: skip
    for number in ("296-1", "296-2"):
        intake.policy.member_outcome(number, "OIC Failure", "queue unreachable")  # what the intake's refusal does
    intake.close()
    [digest] = smtp.inbox.messages
    body = digest.get_payload(decode=True).decode()
    assert "1 member(s) not synced: 1 OIC Failure" in digest["Subject"]
    assert "296-2  OIC Failure: queue unreachable" in body
    assert "296-1" not in body

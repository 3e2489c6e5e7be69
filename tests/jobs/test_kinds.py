"""The kinds of job carried out through their ports: what they count, log and leave behind when stopped."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.settings import ResubmitJob
from crowdtwist_client.client import CrowdTwistClient
from sandbox.crowdtwist import SandboxState
from sandbox.crowdtwist.server import SandboxTransport
from sandbox.crowdtwist.switches import Rules
from sync_worker.core.ct_user import UserPayload
from sync_worker.core.member import SyncOutcome, SyncStatus
from sync_worker.core.ports import RunStopped
from sync_worker.core.privacy import Identity, PrivacyRequests
from sync_worker.jobs.context import RunContext
from sync_worker.jobs.kinds import export_segment, follow_privacy_requests, resubmit_by_status
from sync_worker.ledger.runs import RunLedger
from sync_worker.segments.export import SegmentExport, SegmentRequest
from tests.builders import PROGRAM, member
from tests.fakes import FakeClock, FakeDrop, FakePrivacyDeletions, FakePrivacyRegister, FakePublisher, FakeStore

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def context(runs: RunLedger, job: str, kind: str) -> RunContext:
    run_id = runs.start_run(job, kind=kind, trigger="schedule", at=NOON)
    return RunContext(run_id=run_id, job=job, runs=runs, clock=FakeClock(NOON), stopping=threading.Event())


def test_a_segment_export_stopped_before_its_upload_sends_nothing_and_reserves_no_suffix(
    runs: RunLedger, tmp_path: Path
) -> None:
    known = member(**{"Member Number": "296-1"}).model_copy(update={"ct_user_id": 1001})
    drop = FakeDrop()
    exporter = SegmentExport(
        store=FakeStore([known]), drop=drop, deliveries=runs, runs=runs, privacy=FakePrivacyDeletions(),
        clock=FakeClock(NOON), program_id=PROGRAM, max_bytes=1024, spool_dir=tmp_path / "spool",
        archive_dir=tmp_path / "archive",
    )  # fmt: skip
    running = context(runs, "gold", "segment-export")
    runs.request_stop(running.run_id, at=NOON)
    with pytest.raises(RunStopped):
        export_segment(exporter, SegmentRequest(name="Gold", where=(("Status", "Active"),)), running)
    assert (drop.files, runs.deliveries("Gold"), list((tmp_path / "spool").iterdir())) == ({}, [], [])
    assert running.counts["rows"] == 1  # what was written locally before the stop


class NeverResubmitted:
    def resubmit_count(self, member_number: str) -> int:
        return 0


def test_a_resubmit_job_queues_at_most_its_limit_and_counts_the_rest_as_waiting(runs: RunLedger) -> None:
    store = FakeStore()
    for number in ("296-1", "296-2", "296-3"):
        failed = member(**{"Member Number": number, "Id": f"1-{number}"})
        store.put(failed)
        store.write_outcome(failed.row_id, SyncOutcome(status=SyncStatus.CT_FAILURE, at=NOON))
    publisher = FakePublisher()
    job = ResubmitJob(kind="resubmit", status=["CT Failure"], limit=2)
    running = context(runs, "retry", "resubmit")
    resubmit_by_status(
        job, running, store=store, history=NeverResubmitted(), publisher=publisher, max_resubmits=5,
        privacy=FakePrivacyDeletions(),
    )  # fmt: skip
    assert len(publisher.published) == 2
    assert running.counts == {"queued": 2, "refused": 0, "deleted": 0, "waiting": 1}
    assert "1 more left for the next run (limit 2)" in [line for _, line in runs.log_lines(running.run_id)]


def test_a_resubmit_job_leaves_out_members_deleted_on_a_privacy_request(runs: RunLedger) -> None:
    store = FakeStore()
    for number in ("296-1", "296-2"):
        failed = member(**{"Member Number": number, "Id": f"1-{number}"})
        store.put(failed)
        store.write_outcome(failed.row_id, SyncOutcome(status=SyncStatus.CT_FAILURE, at=NOON))
    publisher = FakePublisher()
    running = context(runs, "retry", "resubmit")
    resubmit_by_status(
        ResubmitJob(kind="resubmit", status=["CT Failure"]), running, store=store, history=NeverResubmitted(),
        publisher=publisher, max_resubmits=5, privacy=FakePrivacyDeletions({"296-2": "PR-1"}),
    )  # fmt: skip
    assert [event.member_number for event in publisher.published] == ["296-1"]
    assert running.counts["deleted"] == 1


def test_a_privacy_followup_job_polls_every_open_deletion(runs: RunLedger) -> None:
    state = SandboxState(rules=Rules(deletion_step_seconds=0))
    with CrowdTwistClient(
        base_url="https://sb-api306.crowdtwist.com", api_key=None, transport=SandboxTransport(state)
    ) as ct:
        ct.create_user(UserPayload(third_party_id="296-1", first_name="A", last_name="B", email_address="a@b.example"))
        register = FakePrivacyRegister()
        requests = PrivacyRequests(crowdtwist=ct, register=register, clock=FakeClock())
        request = requests.delete(Identity("third_party_id", "296-1"))
        running = context(runs, "privacy", "privacy-followup")
        follow_privacy_requests(requests, running)
    assert running.counts == {"followed": 1, "Deletion_completed": 1}
    assert f"privacy request {request.request_id}: Deletion_completed" in [
        line for _, line in runs.log_lines(running.run_id)
    ]

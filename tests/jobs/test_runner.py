"""Running a job or a group now: recorded in the ledger, stopped at safe points, notified by email."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sync_worker.core.errors import TransientError
from sync_worker.jobs.context import STOP_CHECK_SECONDS, RunContext
from sync_worker.ledger.runs import RunLedger
from tests.fakes import FakeClock, FakeMailer
from tests.jobs.conftest import ScriptedKinds, catalog, runner

NIGHTLY = {"jobs": ["poll", "gold", "retry"], "notify": "failed"}


def test_a_group_runs_its_jobs_in_order_each_a_run_linked_to_the_groups(
    runs: RunLedger, kinds: ScriptedKinds, mailer: FakeMailer
) -> None:
    jobs = catalog({"poll": {}, "gold": {}, "retry": {}}, {"nightly": NIGHTLY})
    outcome = runner(runs, kinds, mailer, FakeClock()).run(jobs.groups["nightly"], trigger="on-demand")
    assert (outcome.run_id, outcome.result.status) == ("nightly.1", "Success")
    assert kinds.ran == ["poll.1", "gold.1", "retry.1"]
    assert {row.run_id: row.group_run_id for row in runs.runs(group_run_id="nightly.1")} == dict.fromkeys(
        kinds.ran, "nightly.1"
    )


def test_a_group_stops_at_its_first_failing_job_and_says_which(
    runs: RunLedger, kinds: ScriptedKinds, mailer: FakeMailer
) -> None:
    kinds.scripts["gold"] = "fail"
    jobs = catalog({"poll": {}, "gold": {}, "retry": {}}, {"nightly": NIGHTLY})
    outcome = runner(runs, kinds, mailer, FakeClock()).run(jobs.groups["nightly"], trigger="schedule")
    assert kinds.ran == ["poll.1", "gold.1"]
    assert (outcome.result.status, outcome.result.error) == ("Failed", "gold.1: Siebel unavailable: HTTP 503")
    assert [line for _, line in runs.log_lines("nightly.1")][-2:] == [
        "not run: retry",
        "failed: gold.1: Siebel unavailable: HTTP 503",
    ]


def test_a_crashing_job_is_recorded_failed_and_does_not_escape(
    runs: RunLedger, kinds: ScriptedKinds, mailer: FakeMailer
) -> None:
    kinds.scripts["poll"] = "crash"
    outcome = runner(runs, kinds, mailer, FakeClock()).run(catalog({"poll": {}}).jobs["poll"], trigger="on-demand")
    run = runs.run("poll.1")
    assert run is not None
    assert (outcome.result.status, run.status, run.error) == ("Failed", "Failed", "internal error: KeyError: 'a bug'")


def test_a_stop_request_ends_the_run_stopped_at_its_next_safe_point_and_the_group_with_it(
    runs: RunLedger, kinds: ScriptedKinds, mailer: FakeMailer
) -> None:
    clock = FakeClock()

    def asked_to_stop_while_running(context: RunContext) -> None:
        runs.request_stop("nightly.1", at=clock.now())  # `ct-sync jobs stop nightly.1`, from elsewhere
        clock.advance(timedelta(seconds=STOP_CHECK_SECONDS))  # the ledger is asked at most once a second
        context.checkpoint()
        raise AssertionError("the safe point should have stopped the run")

    kinds.scripts["gold"] = asked_to_stop_while_running
    jobs = catalog({"poll": {}, "gold": {}, "retry": {}}, {"nightly": NIGHTLY})
    outcome = runner(runs, kinds, mailer, clock).run(jobs.groups["nightly"], trigger="on-demand")
    statuses = {row.run_id: row.status for row in runs.runs()}
    assert statuses == {"nightly.1": "Stopped", "poll.1": "Success", "gold.1": "Stopped"}
    assert outcome.not_run == ["retry"]
    assert mailer.sent == []  # notify = failed: a stop was asked for, nobody needs telling


@pytest.mark.parametrize(
    ("notify", "fails", "emailed"),
    [("each", False, True), ("failed", False, False), ("failed", True, True), ("none", True, False)],
)
def test_notify_decides_whether_a_run_is_emailed(
    runs: RunLedger, kinds: ScriptedKinds, mailer: FakeMailer, notify: str, fails: bool, emailed: bool
) -> None:
    if fails:
        kinds.scripts["poll"] = "fail"
    job = catalog({"poll": {"notify": notify}}).jobs["poll"]
    runner(runs, kinds, mailer, FakeClock()).run(job, trigger="schedule")
    assert bool(mailer.sent) is emailed


def test_the_email_names_job_run_and_status_with_counts_duration_files_and_error(
    runs: RunLedger, kinds: ScriptedKinds, mailer: FakeMailer
) -> None:
    clock = FakeClock()

    def delivers_then_fails(context: RunContext) -> None:
        context.files.append("Gold_20261122_1000.csv")
        context.counts["rows"] = 1200
        clock.advance(timedelta(seconds=75))
        raise TransientError("SFTP server unreachable: ready file not sent", system="sftp")

    kinds.scripts["gold"] = delivers_then_fails
    job = catalog({"gold": {"notify_to": ["crm@example.com"]}}).jobs["gold"]
    runner(runs, kinds, mailer, clock).run(job, trigger="schedule")
    (alert,) = mailer.sent
    assert alert.subject == "[ct-sync] job gold run gold.1: Failed"
    assert alert.to == ("crm@example.com",)
    for text in ("rows: 1200", "took 1m15s", "Gold_20261122_1000.csv", "SFTP server unreachable: ready file not sent"):
        assert text in alert.body


def test_inside_a_group_the_groups_notify_applies_not_the_jobs(
    runs: RunLedger, kinds: ScriptedKinds, mailer: FakeMailer
) -> None:
    jobs = catalog({"poll": {"notify": "each"}, "gold": {"notify": "each"}}, {"nightly": {"jobs": ["poll", "gold"]}})
    runner(runs, kinds, mailer, FakeClock()).run(jobs.groups["nightly"], trigger="schedule")
    assert mailer.sent == []  # the group's notify is `failed`, and nothing failed

"""When alerts go out: one per state change, one recovery, digests at most every interval, nothing personal; and a
digest says what is true when it is sent."""

from __future__ import annotations

from datetime import timedelta

from sync_worker.alerts.policy import AlertPolicy
from sync_worker.core.errors import TransientError
from sync_worker.core.ports import AttemptRecord
from tests.fakes import FakeClock, FakeLedger, Script

INTERVAL = timedelta(minutes=15)


def policy(clock: FakeClock, notify: str = "failures") -> AlertPolicy:
    return AlertPolicy(notify=notify, digest_interval=INTERVAL, clock=clock.now)


def test_a_long_outage_is_one_alert_and_one_recovery() -> None:
    clock = FakeClock()
    subject = policy(clock)
    subject.outage_began(since=clock.now(), cause="HTTP 503", credentials=False)
    sent = subject.due()
    for _ in range(60):
        clock.advance(timedelta(minutes=1))
        sent += subject.due()
    subject.outage_ended(since=clock.now() - timedelta(hours=1))
    sent += subject.due()
    assert [alert.subject for alert in sent] == [
        "[ct-sync] CrowdTwist unreachable: syncing paused",
        "[ct-sync] CrowdTwist reachable again: syncing resumed",
    ]
    assert "ct-sync resubmit --status 'CT Failure' --since" in sent[1].body


def test_first_failures_go_out_at_once_then_in_digests_at_most_every_interval() -> None:
    clock = FakeClock()
    subject = policy(clock)
    subject.member_outcome("296-1", "Data Error", "Email Address is already taken")
    first = subject.due()
    assert len(first) == 1
    assert first[0].subject.startswith("[ct-sync] failures appeared:")
    assert "296-1  Data Error: Email Address is already taken" in first[0].body
    for minute in range(14):
        subject.member_outcome(f"296-{minute + 2}", "CT Failure", "CrowdTwist unreachable after 6 attempts")
        clock.advance(timedelta(minutes=1))
        assert subject.due() == []
    clock.advance(timedelta(minutes=1))
    digest = subject.due()
    assert len(digest) == 1
    assert "14 member(s)" in digest[0].subject
    assert "ct-sync resubmit --member 296-2" in digest[0].body


def test_shutdown_flushes_the_pending_digest() -> None:
    clock = FakeClock()
    subject = policy(clock)
    subject.member_outcome("296-1", "Data Error", "x")
    subject.due()
    subject.member_outcome("296-2", "Data Error", "y")
    assert subject.due() == []
    assert len(subject.due(flush=True)) == 1


def test_notify_none_sends_nothing_and_all_adds_success_counts() -> None:
    clock = FakeClock()
    silent, chatty = policy(clock, "none"), policy(clock, "all")
    for subject in (silent, chatty):
        subject.member_outcome("296-1", "Synced", None)
        subject.outage_began(since=clock.now(), cause="HTTP 503", credentials=False)
    assert silent.due() == []
    sent = chatty.due()
    assert [alert.subject for alert in sent] == [
        "[ct-sync] CrowdTwist unreachable: syncing paused",
        "[ct-sync] 1 member event(s) handled in the last 15m",
    ]


def test_a_digest_counts_members_not_attempts() -> None:
    clock = FakeClock()
    subject = policy(clock)
    subject.member_outcome("296-0", "Data Error", "x")
    subject.due()
    for attempt in range(3):
        subject.member_outcome("296-1", "CT Failure", f"attempt {attempt}")
    subject.member_outcome("296-2", "Data Error", "Email Address is already taken")
    clock.advance(INTERVAL)
    [digest] = subject.due()
    assert "2 member(s)" in digest.subject
    assert digest.body.count("296-1") == 2  # its line (latest failure only) and the resubmit command
    assert "attempt 2" in digest.body
    assert "attempt 0" not in digest.body


def test_the_shared_budget_lost_and_found_is_one_alert_each_way() -> None:
    clock = FakeClock()
    subject = policy(clock)
    subject.budget_sharing(False, fallback=4)
    subject.budget_sharing(True, fallback=4)
    sent = subject.due()
    assert [alert.subject for alert in sent] == [
        "[ct-sync] shared CrowdTwist budget unreachable: pacing alone",
        "[ct-sync] shared CrowdTwist budget reachable again",
    ]
    assert "1/4 of the budget" in sent[0].body


# -- digests say what is true when they are sent ----------------------------------------------------------------


def attempt(member_number: str, outcome: str, clock: FakeClock, error: str | None = None) -> AttemptRecord:
    return AttemptRecord(
        event_id=f"{member_number}-{outcome}",
        member_number=member_number,
        event_type="update",
        outcome=outcome,  # type: ignore[arg-type]
        at=clock.now(),
        error=error,
    )


def failed(subject: AlertPolicy, ledger: FakeLedger, clock: FakeClock, member: str, status: str, reason: str) -> None:
    """A failure as the worker reports it: written to the ledger, then told to the policy."""
    ledger.record([attempt(member, status, clock, reason)])
    subject.member_outcome(member, status, reason)


def test_a_member_synced_before_the_digest_is_sent_is_left_out_and_counted_as_recovered() -> None:
    clock, ledger = FakeClock(), FakeLedger()
    subject = AlertPolicy(notify="failures", digest_interval=INTERVAL, clock=clock.now, latest=ledger)
    failed(subject, ledger, clock, "296-0", "Data Error", "x")
    subject.due()  # the first failures go out at once; the next ones wait for the digest
    clock.advance(timedelta(minutes=1))
    failed(subject, ledger, clock, "296-1", "CT Failure", "CrowdTwist unreachable after 6 attempts")
    failed(subject, ledger, clock, "296-2", "CT Failure", "CrowdTwist unreachable after 6 attempts")
    failed(subject, ledger, clock, "296-3", "Data Error", "Email Address is already taken")
    clock.advance(timedelta(minutes=2))
    # Meanwhile, as another worker (or a later attempt) did it: 296-1 synced, 296-2 is now a Data Error.
    ledger.record([attempt("296-1", "Synced", clock)])
    ledger.record([attempt("296-2", "Data Error", clock, "Last Name is required")])
    ledger.record([attempt("296-3", "Retrying", clock, "HTTP 503")])  # decides nothing: its Data Error stands
    [digest] = subject.due(flush=True)  # a worker stopping
    assert digest.subject == "[ct-sync] 2 member(s) not synced: 2 Data Error"
    assert "296-1" not in digest.body
    assert "296-2  Data Error: Last Name is required" in digest.body
    assert "296-3  Data Error: Email Address is already taken" in digest.body
    assert "1 member(s) recovered since (now Synced)." in digest.body
    assert "as it stands at 2026-11-22 10:03:00 UTC" in digest.body


def test_a_member_this_worker_saw_sync_again_is_recovered_without_a_ledger() -> None:
    clock = FakeClock()
    subject = policy(clock)
    subject.member_outcome("296-0", "Data Error", "x")
    subject.due()
    subject.member_outcome("296-1", "CT Failure", "CrowdTwist unreachable")
    subject.member_outcome("296-2", "CT Failure", "CrowdTwist unreachable")
    subject.member_outcome("296-1", "Synced", None)
    [digest] = subject.due(flush=True)
    assert digest.subject == "[ct-sync] 1 member(s) not synced: 1 CT Failure"
    assert "296-1" not in digest.body
    assert "1 member(s) recovered since (now Synced)." in digest.body


def test_a_digest_whose_members_have_all_synced_since_is_not_sent() -> None:
    clock, ledger = FakeClock(), FakeLedger()
    subject = AlertPolicy(notify="failures", digest_interval=INTERVAL, clock=clock.now, latest=ledger)
    failed(subject, ledger, clock, "296-0", "Data Error", "x")
    subject.due()
    failed(subject, ledger, clock, "296-1", "CT Failure", "CrowdTwist unreachable")
    clock.advance(timedelta(minutes=1))
    ledger.record([attempt("296-1", "Synced", clock)])
    assert subject.due(flush=True) == []


def test_a_failure_newer_than_what_the_ledger_holds_stands() -> None:
    """The ledger missed the failure (its write failed): its older Synced says nothing of the member now."""
    clock, ledger = FakeClock(), FakeLedger()
    subject = AlertPolicy(notify="failures", digest_interval=INTERVAL, clock=clock.now, latest=ledger)
    ledger.record([attempt("296-1", "Synced", clock)])
    clock.advance(timedelta(minutes=1))
    subject.member_outcome("296-1", "CT Failure", "CrowdTwist unreachable")
    [digest] = subject.due()
    assert "296-1  CT Failure: CrowdTwist unreachable" in digest.body
    assert "recovered" not in digest.body


def test_when_the_ledger_cannot_be_read_the_digest_goes_out_as_this_process_saw_it() -> None:
    clock, ledger = FakeClock(), FakeLedger()
    subject = AlertPolicy(notify="failures", digest_interval=INTERVAL, clock=clock.now, latest=ledger)
    ledger.reads = Script([TransientError("ledger unavailable: connection refused", system="ledger")])
    subject.member_outcome("296-1", "CT Failure", "CrowdTwist unreachable")
    [digest] = subject.due()
    assert "296-1  CT Failure: CrowdTwist unreachable" in digest.body
    assert "could not be read: ledger unavailable: connection refused" in digest.body

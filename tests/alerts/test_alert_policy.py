"""When alerts go out: one per state change, one recovery, digests at most every interval, nothing personal."""

from __future__ import annotations

from datetime import timedelta

from sync_worker.alerts.policy import AlertPolicy
from tests.fakes import FakeClock

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

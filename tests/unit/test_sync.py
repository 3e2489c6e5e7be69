"""The use case through the handler, on fakes: calls spent, statuses written, no duplicates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

import pytest

from config.settings import DefaultsSettings
from sync_worker.core.ct_user import UserPayload
from sync_worker.core.decisions import Handled, RetryPolicy
from sync_worker.core.errors import NotAuthorized, PermanentError, TransientError
from sync_worker.core.mapping import map_member
from sync_worker.core.member import Member, SyncStatus
from sync_worker.core.messages import MemberEvent
from sync_worker.core.resubmit import resubmit_event
from sync_worker.core.sync import MemberSync
from sync_worker.worker import handler as handler_module
from sync_worker.worker.handler import EventHandler
from tests.builders import PROGRAM, changed, member
from tests.fakes import FakeClock, FakeCrowdTwist, FakeKnownStates, FakeLedger, FakeMemberLocks, FakeStore

DEFAULTS = DefaultsSettings(email_domain="members.example.com")


@dataclass
class World:
    store: FakeStore = field(default_factory=FakeStore)
    crowdtwist: FakeCrowdTwist = field(default_factory=FakeCrowdTwist)
    states: FakeKnownStates = field(default_factory=FakeKnownStates)
    ledger: FakeLedger = field(default_factory=FakeLedger)
    clock: FakeClock = field(default_factory=FakeClock)
    locks: FakeMemberLocks = field(default_factory=FakeMemberLocks)

    def __post_init__(self) -> None:
        sync = MemberSync(
            store=self.store,
            crowdtwist=self.crowdtwist,
            known_states=self.states,
            defaults=DEFAULTS,
            program_id=PROGRAM,
            clock=self.clock,
        )
        self.handler = EventHandler(
            sync=sync,
            ledger=self.ledger,
            clock=self.clock,
            retry=RetryPolicy(budget=timedelta(minutes=10)),
            locks=self.locks,
            lock_wait=0.0,
            jitter=lambda: 0.5,
        )

    def send(self, subject: Member, event_type: str = "update", **fields: object) -> Handled:
        event = MemberEvent(event_type=event_type, member_number=subject.member_number, row_id=subject.row_id, **fields)  # type: ignore[arg-type]
        return self.handler.handle([event])

    def status_of(self, subject: Member) -> str | None:
        outcome = self.store.last_outcome(subject.row_id)
        return outcome.status if outcome else None


@pytest.fixture
def world() -> World:
    return World()


def enroll_of(subject: Member) -> MemberEvent:
    return MemberEvent(event_type="enroll", member_number=subject.member_number, row_id=subject.row_id)


def update_of(subject: Member) -> MemberEvent:
    return MemberEvent(event_type="update", member_number=subject.member_number, row_id=subject.row_id)


def test_an_enroll_costs_one_create_and_is_written_synced(world: World) -> None:
    ann = member()
    world.store.put(ann)
    handled = world.send(ann, "enroll")
    assert (handled.decision.action, handled.calls) == ("ack", 1)
    assert dict(world.crowdtwist.calls) == {"create_user": 1}
    outcome = world.store.last_outcome(ann.row_id)
    assert outcome is not None
    assert outcome.status == SyncStatus.SYNCED
    assert outcome.ct_user_id == world.crowdtwist.users[ann.member_number].id


def test_an_update_of_a_known_member_costs_one_put(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    world.store.put(changed(world.store.members[ann.member_number], last_name="Li"))
    handled = world.send(ann, "update")
    assert handled.calls == 1
    assert world.crowdtwist.calls["update_user"] == 1
    assert world.crowdtwist.users[ann.member_number].last_name == "Li"


def test_an_update_of_a_member_crowdtwist_does_not_know_creates_it(world: World) -> None:
    ann = member()
    world.store.put(ann)
    handled = world.send(ann, "update")
    assert handled.calls == 2
    assert dict(world.crowdtwist.calls) == {"update_user": 1, "create_user": 1}
    assert world.status_of(ann) == "Synced"


def test_an_enroll_crowdtwist_already_has_becomes_an_update(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    world.states.states.clear()  # e.g. enrolled by the old OIC flow: we have no memory of it
    world.store.put(changed(world.store.members[ann.member_number], ct_user_id=None, first_name="Anne"))
    world.send(ann, "enroll")
    assert world.crowdtwist.creates[ann.member_number] == 1
    assert world.crowdtwist.users[ann.member_number].first_name == "Anne"


def test_an_unchanged_member_costs_no_call_and_writes_nothing(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    writes = len(world.store.outcomes[ann.row_id])
    handled = world.send(ann, "update")
    assert (handled.calls, handled.decision.ledger_outcome) == (0, "Unchanged")
    assert len(world.store.outcomes[ann.row_id]) == writes


def test_a_resubmit_is_sent_even_when_unchanged(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    assert world.send(ann, "update", source="resubmit").calls == 1


def test_duplicate_email_is_written_back_as_data_error_with_crowdtwist_text(world: World) -> None:
    ann, bob = member(), member()
    world.store.put(ann)
    world.store.put(bob.model_copy(update={"email_address": ann.email_address}))
    world.send(ann, "enroll")
    handled = world.send(bob, "enroll")
    outcome = world.store.last_outcome(bob.row_id)
    assert outcome is not None
    assert (outcome.status, outcome.error) == ("Data Error", "Email Address is already taken")
    assert handled.decision.action == "ack"


def test_data_crowdtwist_would_refuse_costs_no_call(world: World) -> None:
    ann = member(**{"Last Name": ""})
    world.store.put(ann)
    handled = world.send(ann, "enroll")
    assert handled.calls == 0
    assert world.crowdtwist.total_calls == 0
    assert world.status_of(ann) == "Data Error"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"Member Type": "Household"}, "Household member: only Individual members are synced"),
        ({"Program Id": "1-OTHER"}, "member of program 1-OTHER, not 1-PRG"),
    ],
)
def test_members_not_for_crowdtwist_are_skipped_and_nothing_is_written(
    world: World, fields: dict[str, str], reason: str
) -> None:
    other = member(**fields)
    world.store.put(other)
    handled = world.send(other, "enroll")
    assert (handled.decision.ledger_outcome, handled.decision.reason) == ("Skipped", reason)
    assert world.crowdtwist.total_calls == 0
    assert world.status_of(other) is None


def test_an_inactive_member_crowdtwist_never_saw_is_not_sent(world: World) -> None:
    gone = member(Status="Inactive")
    world.store.put(gone)
    handled = world.send(gone, "update")
    assert handled.decision.reason == "inactive and never in CrowdTwist"
    assert world.crowdtwist.users == {}
    assert world.status_of(gone) is None


def test_a_member_leaving_the_program_becomes_inactive_in_crowdtwist(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    world.store.put(changed(world.store.members[ann.member_number], status="Cancelled"))
    world.send(ann, "update")
    assert world.crowdtwist.users[ann.member_number].is_active == 0


def test_crowdtwist_down_is_retried_later_and_written_nowhere(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.crowdtwist.script.failures = [TransientError("HTTP 503", system="crowdtwist", status_code=503)]
    handled = world.send(ann, "update")
    assert handled.decision.action == "retry_later"
    assert world.status_of(ann) is None


def test_crowdtwist_down_past_the_budget_is_written_ct_failure(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.crowdtwist.script.failures = [TransientError("HTTP 503", system="crowdtwist", status_code=503)]
    started = world.clock.now() - timedelta(minutes=11)
    handled = world.send(ann, "update", attempt=7, first_failure_at=started)
    assert handled.decision.action == "ack"
    outcome = world.store.last_outcome(ann.row_id)
    assert outcome is not None
    assert outcome.status == "CT Failure"
    assert outcome.error == "CrowdTwist unreachable after 7 attempts over 11m: HTTP 503"


def test_refused_credentials_are_retried_not_blamed_on_the_member(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.crowdtwist.script.failures = [NotAuthorized("refused", system="crowdtwist", status_code=401)]
    assert world.send(ann, "update").decision.action == "retry_later"
    assert world.status_of(ann) is None


def test_siebel_down_during_write_back_keeps_the_message_and_the_next_try_updates(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.store.write_script.failures = [TransientError("Siebel 503", system="siebel")]
    first = world.send(ann, "enroll")
    assert first.decision.action == "retry_later"
    second = world.send(ann, "enroll", attempt=2)
    # A later attempt trusts no "unchanged": one PUT, and still never a second create.
    assert (second.decision.action, second.calls) == ("ack", 1)
    assert world.status_of(ann) == "Synced"
    assert world.crowdtwist.creates[ann.member_number] == 1


@pytest.mark.parametrize("duplicates", ["refuse", "email-first", "accept"])
def test_a_redelivered_enroll_of_a_member_crowdtwist_holds_is_no_second_create_and_no_data_error(
    duplicates: str,
) -> None:
    """A worker killed after CrowdTwist created the member but before the outcome was written: the broker delivers
    the enroll again. However CrowdTwist treats a second create, the member ends Synced, created once."""
    world = World(crowdtwist=FakeCrowdTwist(duplicates=duplicates))
    ann = member()
    world.store.put(ann)
    world.crowdtwist.create_user(world_payload(ann))  # the first delivery's create, its outcome never written
    handled = world.handler.handle([enroll_of(ann)], redelivered=True)
    assert handled.decision.ledger_outcome == "Synced"
    assert world.crowdtwist.creates[ann.member_number] == 1
    assert world.status_of(ann) == "Synced"


@pytest.mark.parametrize("duplicates", ["refuse", "email-first"])
def test_a_create_refused_on_the_email_of_a_member_crowdtwist_holds_looks_it_up_and_updates(duplicates: str) -> None:
    """A fresh enroll whose member CrowdTwist already holds (created by a run whose outcome was lost, its ledger
    gone): the create is refused on the email; one look-up finds the member, and it is updated, not blamed."""
    world = World(crowdtwist=FakeCrowdTwist(duplicates=duplicates))
    ann = member()
    world.store.put(ann)
    world.crowdtwist.create_user(world_payload(ann))
    world.crowdtwist.calls.clear()
    handled = world.send(ann, "enroll")
    assert handled.decision.ledger_outcome == "Synced"
    assert world.crowdtwist.creates[ann.member_number] == 1
    if duplicates == "email-first":
        assert dict(world.crowdtwist.calls) == {"create_user": 1, "get_user": 1, "update_user": 1}


def test_a_create_refused_for_a_member_crowdtwist_does_not_hold_is_a_data_error_after_one_look_up(
    world: World,
) -> None:
    world.crowdtwist.duplicates = "email-first"
    ann, bob = member(), member()
    world.store.put(ann)
    world.store.put(bob.model_copy(update={"email_address": ann.email_address}))
    world.send(ann, "enroll")
    world.crowdtwist.calls.clear()
    handled = world.send(world.store.members[bob.member_number], "enroll")
    assert handled.decision.ledger_outcome == "Data Error"
    assert dict(world.crowdtwist.calls) == {"create_user": 1, "get_user": 1}


def test_a_later_attempt_sends_even_when_the_ledger_says_unchanged(world: World) -> None:
    """Another worker may have sent an older state after ours: a retry never trusts "unchanged"."""
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    assert world.send(ann, "update", attempt=2).calls == 1
    assert world.handler.handle([update_of(ann)], redelivered=True).calls == 1
    assert world.send(ann, "update").calls == 0


def test_a_send_whose_fate_is_unknown_forgets_what_the_ledger_knew(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    timeout = TransientError("ReadTimeout", system="crowdtwist", operation="update_user", outcome_unknown=True)
    world.crowdtwist.script.failures = [timeout, timeout, timeout]
    assert world.send(ann, "update", source="resubmit").decision.action == "retry_later"
    assert world.states.known_state(ann.member_number).synced is None
    assert world.send(ann, "update").calls == 1


def test_a_send_whose_fate_is_unknown_is_tried_again_from_a_fresh_read(world: World) -> None:
    """Not by re-sending the old body (the client never does): the sync reads Siebel again and sends what it
    holds now, here an edit made while the first answer was lost."""
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")

    def edited_meanwhile() -> None:
        world.store.put(changed(world.store.members[ann.member_number], last_name="Newer"))
        raise TransientError("ReadTimeout", system="crowdtwist", operation="update_user", outcome_unknown=True)

    world.store.put(changed(world.store.members[ann.member_number], last_name="Older"))
    world.crowdtwist.before_update = edited_meanwhile
    handled = world.send(ann, "update")
    assert (handled.decision.ledger_outcome, handled.calls) == ("Synced", 2)
    assert world.crowdtwist.users[ann.member_number].last_name == "Newer"


def test_an_unchanged_member_refused_before_costs_no_call_no_write_and_no_alert(world: World) -> None:
    ann, bob = member(), member()
    world.store.put(ann)
    world.store.put(bob.model_copy(update={"email_address": ann.email_address}))
    world.send(ann, "enroll")
    first = world.send(world.store.members[bob.member_number], "enroll")
    assert first.decision.ledger_outcome == "Data Error"
    writes, calls = len(world.store.outcomes[bob.row_id]), world.crowdtwist.total_calls
    # Siebel's write-back moved Updated: the poller brings the member round again, unchanged.
    again = world.send(world.store.members[bob.member_number], "update")
    assert (again.decision.ledger_outcome, again.calls) == ("Unchanged", 0)
    assert (len(world.store.outcomes[bob.row_id]), world.crowdtwist.total_calls) == (writes, calls)
    # An edit is tried again.
    world.store.put(changed(world.store.members[bob.member_number], email_address="bob@example.com"))
    assert world.send(world.store.members[bob.member_number], "update").decision.ledger_outcome == "Synced"


def test_an_unchanged_member_the_pre_check_refused_is_written_once(world: World) -> None:
    ann = member(**{"Last Name": ""})
    world.store.put(ann)
    assert world.send(ann).decision.ledger_outcome == "Data Error"
    again = world.send(world.store.members[ann.member_number])
    assert again.decision.ledger_outcome == "Unchanged"
    assert len(world.store.outcomes[ann.row_id]) == 1


def test_a_failure_is_written_to_the_member_the_event_names_not_to_a_stale_row_id(world: World) -> None:
    ann, bob = member(), member()
    world.store.put(ann)
    world.store.put(bob)
    world.crowdtwist.script.failures = [TransientError("HTTP 503", system="crowdtwist", status_code=503)]
    stale = MemberEvent(
        event_type="update",
        member_number=ann.member_number,
        row_id=bob.row_id,  # a stale id: the row now belongs to another member
        attempt=7,
        first_failure_at=world.clock.now() - timedelta(minutes=11),
    )
    assert world.handler.handle([stale]).decision.ledger_outcome == "CT Failure"
    assert world.status_of(ann) == "CT Failure"
    assert world.status_of(bob) is None


def test_an_uncertain_create_is_followed_by_an_update_not_a_second_create(world: World) -> None:
    ann = member()
    world.store.put(ann)
    # CrowdTwist stored the create, but the answer timed out.
    world.crowdtwist.create_user(world_payload(ann))
    world.crowdtwist.calls.clear()
    handled = world.send(ann, "enroll", attempt=2)
    assert handled.calls == 1
    assert dict(world.crowdtwist.calls) == {"update_user": 1}
    assert world.crowdtwist.creates[ann.member_number] == 1


def test_coalesced_events_cost_one_sync_and_one_ledger_row_each(world: World) -> None:
    ann = member()
    world.store.put(ann)
    events = [MemberEvent(event_type="update", member_number=ann.member_number) for _ in range(5)]
    handled = world.handler.handle(events)
    assert handled.calls == 2  # update → 404 → create
    assert len(world.ledger.rows) == 5
    assert sum(row.ct_calls for row in world.ledger.rows) == 2


def test_each_attempt_records_its_source_and_an_automatic_resubmit_says_so(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll", source="intake")
    world.handler.handle([resubmit_event(ann.member_number, ann.row_id)])
    world.handler.handle([resubmit_event(ann.member_number, ann.row_id, automatic=True)])
    assert [row.source for row in world.ledger.rows] == ["intake", "resubmit", "automatic"]


def test_ledger_rows_carry_no_personal_data(world: World) -> None:
    ann = member(**{"Email Address": "private.person@example.com"})
    world.store.put(ann)
    world.send(ann, "enroll")
    assert "private.person" not in repr(world.ledger.rows)


def test_a_ledger_outage_does_not_cost_the_sync(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.ledger.script.failures = [TransientError("db down", system="ledger")]
    assert world.send(ann, "enroll").decision.action == "ack"
    assert world.status_of(ann) == "Synced"


def world_payload(subject: Member) -> UserPayload:
    return map_member(subject, DEFAULTS).payload.for_create()


def test_a_member_another_worker_is_syncing_is_retried_later_and_ends_with_the_newest_state(world: World) -> None:
    """Two worker processes share the member locks: while one syncs Ann, the other does not start her sync (before,
    both sent and a read after sending had to repair the order, a third Siebel call per member)."""
    ann = member(**{"Last Name": "Lee"})
    world.store.put(ann)
    world.send(ann, "enroll")
    world.store.put(changed(world.store.members[ann.member_number], last_name="Li"))
    other_worker = World(
        store=world.store, crowdtwist=world.crowdtwist, states=world.states, clock=world.clock, locks=world.locks
    )
    busy = []

    def meanwhile() -> None:
        # While this worker's PUT of "Li" is on its way, Siebel changes again and the other worker gets the event.
        world.store.put(changed(world.store.members[ann.member_number], seconds=120, last_name="Leigh"))
        busy.append(other_worker.send(ann, "update"))

    world.crowdtwist.before_update = meanwhile
    world.send(ann, "update")
    assert [handled.decision.reason for handled in busy] == ["another worker is syncing this member"]
    retry = busy[0].decision.retry_event
    assert retry is not None
    other_worker.handler.handle([retry])
    assert world.crowdtwist.users[ann.member_number].last_name == "Leigh"
    assert world.status_of(ann) == "Synced"


def test_a_sync_reads_siebel_once_and_writes_once(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    assert (world.store.reads, len(world.store.outcomes[ann.row_id])) == (1, 1)


def test_a_write_back_siebel_refuses_for_good_ends_in_the_dead_letter_queue_after_bounded_tries(world: World) -> None:
    """Siebel answering 403 to the CT Failure write must neither escape the handler nor be retried for ever."""
    ann = member()
    world.store.put(ann)
    refused = PermanentError("Siebel refused the request (HTTP 403): read-only", system="siebel", status_code=403)
    started = world.clock.now() - timedelta(minutes=11)
    decisions = []
    event = update_of(ann).model_copy(update={"attempt": 7, "first_failure_at": started})
    for _ in range(3):
        world.crowdtwist.script.failures = [TransientError("HTTP 503", system="crowdtwist", status_code=503)]
        world.store.write_script.failures = [refused]
        handled = world.handler.handle([event])
        decisions.append(handled.decision.action)
        event = handled.decision.retry_event or event
    assert decisions == ["retry_later", "retry_later", "dead_letter"]
    assert "Siebel refused it 3 times" in (handled.decision.reason or "")


def test_a_bug_goes_to_the_dead_letter_queue_saying_where_not_blamed_on_crowdtwist(world: World) -> None:
    ann = member()
    try:
        {}["missing"]
    except KeyError as bug:
        handled = world.handler.crashed([update_of(ann)], bug)
    assert handled.decision.action == "dead_letter"
    assert handled.decision.reason is not None
    assert handled.decision.reason.startswith("internal error: KeyError at test_sync.py:")
    assert "missing" not in handled.decision.reason  # the exception's text may hold a member's data
    assert [row.outcome for row in world.ledger.rows] == ["Dead-lettered"]


def test_an_update_after_a_privacy_deletion_makes_no_call_and_writes_the_data_error_once(world: World) -> None:
    """Given a member deleted in CrowdTwist on privacy request PR-4, when Siebel sends an update (twice: the first
    write-back brings it round again), then CrowdTwist hears nothing and the member says why, written once."""
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    calls_before = world.crowdtwist.total_calls
    world.states.states[ann.member_number] = replace(world.states.known_state(ann.member_number), deleted_by="PR-4")
    world.send(ann)
    assert world.crowdtwist.total_calls == calls_before
    outcome = world.store.last_outcome(ann.row_id)
    assert outcome is not None
    assert (outcome.status, outcome.error) == ("Data Error", "deleted in CrowdTwist on privacy request PR-4")
    writes = len(world.store.outcomes[ann.row_id])
    world.send(world.store.members[ann.member_number])
    world.send(world.store.members[ann.member_number], source="resubmit")
    assert (world.crowdtwist.total_calls, len(world.store.outcomes[ann.row_id])) == (calls_before, writes)


def test_a_ledger_that_cannot_be_read_fails_the_sync_rather_than_risk_a_deleted_member(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.states.script.failures = [TransientError("db down", system="ledger")]
    handled = world.send(ann, "enroll")
    assert handled.decision.action != "ack"
    assert world.crowdtwist.total_calls == 0


# -- the ledger or Siebel down (issue 29): no call when unsure, and nothing resent once it is back -------------------

LEDGER_DOWN = TransientError("ledger unavailable: connection refused", system="ledger")


def _outage_then_back(world: World, fail: Callable[[], None]) -> tuple[Handled, Handled]:
    """Given a member CrowdTwist holds, an update event met by an outage, then the retry once it is over."""
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    calls = world.crowdtwist.total_calls
    fail()
    during = world.handler.handle([update_of(ann)])
    assert world.crowdtwist.total_calls == calls  # nothing was sent while the member could not be judged
    retry = during.decision.retry_event
    assert retry is not None
    return during, world.handler.handle([retry])


def test_a_member_whose_known_state_cannot_be_read_costs_no_call_now_or_after_the_outage(world: World) -> None:
    def fail() -> None:
        world.states.script.failures = [LEDGER_DOWN]

    during, after = _outage_then_back(world, fail)
    assert (during.decision.action, during.calls, during.error) == ("retry_later", 0, LEDGER_DOWN)
    assert (after.decision.ledger_outcome, after.calls) == ("Unchanged", 0)


def test_a_member_whose_lock_cannot_be_taken_costs_no_call_now_or_after_the_outage(world: World) -> None:
    def fail() -> None:
        world.locks.script.failures = [LEDGER_DOWN]

    during, after = _outage_then_back(world, fail)
    assert during.decision.reason == "ledger unavailable: connection refused"  # not "another worker is syncing"
    assert (after.decision.ledger_outcome, after.calls) == ("Unchanged", 0)


def test_a_member_siebel_cannot_give_costs_no_call_now_or_after_the_outage(world: World) -> None:
    def fail() -> None:
        world.store.read_script.failures = [TransientError("Siebel unavailable: HTTP 503", system="siebel")]

    during, after = _outage_then_back(world, fail)
    assert during.decision.retry_event is not None
    assert during.decision.retry_event.first_failure_at is None  # no budget spent
    assert (after.decision.ledger_outcome, after.calls) == ("Unchanged", 0)


def test_a_redelivery_held_up_by_the_ledger_sends_once_it_is_back(world: World) -> None:
    """The broker's redelivery may follow a send no one saw the end of: its retry trusts no "unchanged"."""
    ann = member()
    world.store.put(ann)
    world.send(ann, "enroll")
    world.locks.script.failures = [LEDGER_DOWN]
    during = world.handler.handle([update_of(ann)], redelivered=True)
    assert during.decision.retry_event is not None
    assert world.handler.handle([during.decision.retry_event]).calls == 1


def test_history_the_ledger_cannot_take_is_held_and_written_in_order_when_it_returns(world: World) -> None:
    ann, bob = member(), member()
    world.store.put(ann)
    world.store.put(bob)
    world.ledger.script.failures = [LEDGER_DOWN]
    held = world.send(ann, "enroll")
    assert (held.decision.action, held.ledger_error) == ("ack", LEDGER_DOWN)  # the sync stands
    assert world.ledger.rows == []
    written = world.send(bob, "enroll")
    assert written.ledger_error is None
    assert [row.member_number for row in world.ledger.rows] == [ann.member_number, bob.member_number]


def test_history_held_is_bounded_and_the_oldest_rows_go_first(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handler_module, "MAX_HELD_ROWS", 2)
    members = [member() for _ in range(4)]
    for subject in members:
        world.store.put(subject)
    world.ledger.script.failures = [LEDGER_DOWN] * 3
    for subject in members:
        world.send(subject, "enroll")
    # Two held (the first member's row gave way to the third's), then written with the fourth's.
    assert [row.member_number for row in world.ledger.rows] == [m.member_number for m in members[1:]]


def test_history_still_held_at_shutdown_is_written_then(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.ledger.script.failures = [LEDGER_DOWN]
    world.send(ann, "enroll")
    world.handler.flush_history()
    assert [row.outcome for row in world.ledger.rows] == ["Synced"]

"""The use case through the handler, on fakes: calls spent, statuses written, no duplicates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from config.settings import DefaultsSettings
from sync_worker.core.ct_user import UserPayload
from sync_worker.core.decisions import RetryPolicy
from sync_worker.core.errors import NotAuthorized, TransientError
from sync_worker.core.mapping import map_member
from sync_worker.core.member import Member, SyncStatus
from sync_worker.core.messages import MemberEvent
from sync_worker.core.sync import MemberSync
from sync_worker.worker.handler import EventHandler, Handled
from tests.builders import PROGRAM, changed, member
from tests.fakes import FakeClock, FakeCrowdTwist, FakeLedger, FakeStore, FakeSyncedStates

DEFAULTS = DefaultsSettings(email_domain="members.example.com")


@dataclass
class World:
    store: FakeStore = field(default_factory=FakeStore)
    crowdtwist: FakeCrowdTwist = field(default_factory=FakeCrowdTwist)
    states: FakeSyncedStates = field(default_factory=FakeSyncedStates)
    ledger: FakeLedger = field(default_factory=FakeLedger)
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        sync = MemberSync(
            store=self.store,
            crowdtwist=self.crowdtwist,
            synced_states=self.states,
            defaults=DEFAULTS,
            program_id=PROGRAM,
            clock=self.clock,
        )
        self.handler = EventHandler(
            sync=sync,
            ledger=self.ledger,
            clock=self.clock,
            retry=RetryPolicy(budget=timedelta(minutes=10)),
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
    assert (handled.calls, handled.decision.ledger_outcome) == (0, "Skipped")
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


def test_siebel_down_during_write_back_keeps_the_message_and_the_next_try_costs_no_call(world: World) -> None:
    ann = member()
    world.store.put(ann)
    world.store.write_script.failures = [TransientError("Siebel 503", system="siebel")]
    first = world.send(ann, "enroll")
    assert first.decision.action == "retry_later"
    second = world.send(ann, "enroll", attempt=2)
    assert (second.decision.action, second.calls) == ("ack", 0)
    assert world.status_of(ann) == "Synced"
    assert world.crowdtwist.creates[ann.member_number] == 1


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


def test_a_stale_write_by_another_worker_is_corrected_by_the_check_after_sending(world: World) -> None:
    ann = member(**{"Last Name": "Lee"})
    world.store.put(ann)
    world.send(ann, "enroll")
    world.store.put(changed(world.store.members[ann.member_number], last_name="Li"))
    other_worker = World(store=world.store, crowdtwist=world.crowdtwist, states=world.states, clock=world.clock)

    def meanwhile() -> None:
        # While this worker's PUT of "Li" is on its way, Siebel changes again and another worker syncs it first.
        world.store.put(changed(world.store.members[ann.member_number], seconds=120, last_name="Leigh"))
        other_worker.send(ann, "update")

    world.crowdtwist.before_update = meanwhile
    world.send(ann, "update")
    assert world.crowdtwist.users[ann.member_number].last_name == "Leigh"
    assert world.status_of(ann) == "Synced"

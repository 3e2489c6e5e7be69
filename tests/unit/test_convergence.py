"""Property: whatever the order, duplication, failures or concurrency of events for a member, CrowdTwist ends with
the newest Siebel state, exactly one CrowdTwist member exists, and the status describes the newest attempt."""

from __future__ import annotations

import threading
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import DefaultsSettings
from sync_worker.core.decisions import RetryPolicy
from sync_worker.core.errors import TransientError
from sync_worker.core.mapping import map_member
from sync_worker.core.messages import MemberEvent
from sync_worker.core.sync import MemberSync
from sync_worker.worker.handler import EventHandler
from tests.builders import PROGRAM, changed, member
from tests.fakes import FakeClock, FakeCrowdTwist, FakeKnownStates, FakeLedger, FakeMemberLocks, FakeStore

DEFAULTS = DefaultsSettings(email_domain="members.example.com")
NAMES = st.sampled_from(["Lee", "Li", "Leigh", "O'Lee", "Lee-Smith", ""])  # "" is a Data Error


def _handler(
    store: FakeStore, crowdtwist: FakeCrowdTwist, clock: FakeClock, states: FakeKnownStates, locks: FakeMemberLocks
) -> EventHandler:
    sync = MemberSync(
        store=store,
        crowdtwist=crowdtwist,
        known_states=states,  # the ledger's table, shared by every worker process as in production
        defaults=DEFAULTS,
        program_id=PROGRAM,
        clock=clock,
    )
    return EventHandler(
        sync=sync,
        ledger=FakeLedger(),
        clock=clock,
        retry=RetryPolicy(budget=timedelta(hours=1)),
        locks=locks,  # the member locks, shared by every worker process as in production
        lock_wait=0.001,
    )


steps = st.lists(
    st.one_of(
        st.tuples(st.just("edit"), NAMES),
        st.tuples(st.just("deliver"), st.integers(min_value=0, max_value=50)),
        st.tuples(st.just("fail_next"), st.sampled_from(["create_user", "update_user"])),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(steps=steps, event_types=st.lists(st.sampled_from(["enroll", "update"]), min_size=1, max_size=5))
def test_any_interleaving_converges_to_the_newest_state_with_one_member(
    steps: list[tuple[str, object]], event_types: list[str]
) -> None:
    clock = FakeClock()
    store, crowdtwist = FakeStore(), FakeCrowdTwist()
    states, locks = FakeKnownStates(), FakeMemberLocks()
    handlers = [_handler(store, crowdtwist, clock, states, locks) for _ in range(2)]  # two workers
    ann = member()
    store.put(ann)
    queue: list[MemberEvent] = [MemberEvent(event_type="enroll", member_number=ann.member_number)]

    def deliver(index: int) -> None:
        event = queue.pop(index % len(queue))
        handled = handlers[index % 2].handle([event])
        if handled.decision.retry_event is not None:
            queue.append(handled.decision.retry_event)
        if index % 3 == 0:  # at-least-once: sometimes the broker delivers the same message twice
            handlers[(index + 1) % 2].handle([event])

    for number, (kind, value) in enumerate(steps):
        clock.advance(timedelta(seconds=1))
        if kind == "edit":
            store.put(changed(store.members[ann.member_number], last_name=value or None))
            queue.append(
                MemberEvent(event_type=event_types[number % len(event_types)], member_number=ann.member_number)
            )
        elif kind == "deliver" and queue:
            deliver(int(str(value)))
        elif kind == "fail_next":
            crowdtwist.script.failures.append(TransientError("HTTP 503", system="crowdtwist", status_code=503))
    while queue:  # drain, as the worker eventually does
        deliver(0)

    newest = store.members[ann.member_number]
    expected = map_member(newest, DEFAULTS)
    outcome = store.last_outcome(ann.row_id)
    assert outcome is not None
    assert crowdtwist.creates[ann.member_number] <= 1
    if expected.accepted:
        assert outcome.status == "Synced"
        user = crowdtwist.users[ann.member_number]
        assert user.last_name == expected.payload.last_name
        assert outcome.ct_user_id == user.id
    else:
        assert outcome.status == "Data Error"


def test_two_workers_racing_on_the_same_members_create_each_once() -> None:
    clock = FakeClock()
    store, crowdtwist = FakeStore(), FakeCrowdTwist()
    members = [member() for _ in range(50)]
    for subject in members:
        store.put(subject)
    barrier = threading.Barrier(4)

    def work(handler: EventHandler) -> None:
        barrier.wait()
        for subject in members:
            handler.handle([MemberEvent(event_type="enroll", member_number=subject.member_number)])

    states, locks = FakeKnownStates(), FakeMemberLocks()
    threads = [
        threading.Thread(target=work, args=(_handler(store, crowdtwist, clock, states, locks),)) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(crowdtwist.users) == 50
    assert max(crowdtwist.creates.values()) == 1
    assert all(store.last_outcome(subject.row_id).status == "Synced" for subject in members)  # type: ignore[union-attr]

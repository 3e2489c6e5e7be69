"""In-memory fakes, one per port, with state a test can assert on and scripted failures instead of patching."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync_worker.core.ct_user import CtUser, UserPayload
from sync_worker.core.errors import AlreadyExists, CtSyncError, DataRejected, InvalidRecord, UnknownField
from sync_worker.core.member import Member, SyncOutcome
from sync_worker.core.messages import MemberEvent
from sync_worker.core.ports import (
    Alert,
    AttemptRecord,
    ChangeCursor,
    ChangePage,
    Delivery,
    KnownState,
    LatestOutcome,
    RefusedState,
    SyncedState,
)
from sync_worker.core.privacy import RELEASED, SETTLED, PrivacyRequest, RequestKind


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)) -> None:
        self.current = start
        self.ticks = 0.0

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return self.ticks

    def advance(self, delta: timedelta) -> None:
        self.current += delta
        self.ticks += delta.total_seconds()


class Script:
    """Failures to raise, one per call, before calls succeed: `Script([err503, None, err503])` (None: succeed)."""

    def __init__(self, failures: Iterable[CtSyncError | None] = ()) -> None:
        self.failures = list(failures)

    def next(self) -> None:
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure


class FakeCrowdTwist:
    """CrowdTwist as documented: email unique, 404 (None) for unknown users. What it does with a second create for
    a taken third_party_id is not documented: `duplicates` chooses — "refuse" (AlreadyExists), "email-first" (a
    taken email is refused before the third_party_id is looked at), or "accept" (a second user; `users` then
    keeps the newest, `creates` counts them all)."""

    def __init__(self, *, duplicates: str = "refuse") -> None:
        self.duplicates = duplicates
        self.users: dict[str, CtUser] = {}
        self.calls: dict[str, int] = defaultdict(int)
        self.creates: dict[str, int] = defaultdict(int)
        self.script = Script()
        self.reject_emails: set[str] = set()
        self.before_update: Callable[[], None] | None = None  # runs once, inside the next update (races)
        self._ids = itertools.count(1000)
        self._lock = threading.Lock()

    def get_user(self, third_party_id: str) -> CtUser | None:
        self._count("get_user")
        return self.users.get(third_party_id)

    def create_user(self, payload: UserPayload) -> CtUser:
        self._count("create_user")
        assert payload.is_active is None, "is_active is update-only"
        third_party_id = payload.third_party_id or ""
        with self._lock:
            if self.duplicates == "email-first":
                self._check_email("", payload.email_address)
            if third_party_id in self.users and self.duplicates != "accept":
                raise AlreadyExists("Third Party Id is already taken", system="crowdtwist", status_code=400)
            self._check_email(third_party_id if self.duplicates != "accept" else "", payload.email_address)
            self.creates[third_party_id] += 1
            user = CtUser(id=next(self._ids), **payload.body())
            self.users[third_party_id] = user
            return user

    def update_user(self, third_party_id: str, payload: UserPayload) -> CtUser | None:
        self._count("update_user")
        if self.before_update is not None:
            hook, self.before_update = self.before_update, None
            hook()
        with self._lock:
            current = self.users.get(third_party_id)
            if current is None:
                return None
            self._check_email(third_party_id, payload.email_address)
            user = current.model_copy(update=payload.body())
            self.users[third_party_id] = user
            return user

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def _count(self, operation: str) -> None:
        self.calls[operation] += 1
        self.script.next()

    def _check_email(self, third_party_id: str, email: str | None) -> None:
        taken = any(u.email_address == email and tp != third_party_id for tp, u in self.users.items())
        if email in self.reject_emails or taken:
            raise DataRejected("Email Address is already taken", system="crowdtwist", status_code=400)


class FakeStore:
    def __init__(self, members: Iterable[Member] = ()) -> None:
        self.members = {member.member_number: member for member in members}
        self.outcomes: dict[str, list[SyncOutcome]] = defaultdict(list)
        self.read_script = Script()
        self.write_script = Script()
        self.reads = 0

    def put(self, member: Member) -> None:
        self.members[member.member_number] = member

    def close(self) -> None:
        pass

    def get_member(self, member_number: str) -> Member | None:
        self.reads += 1
        self.read_script.next()
        return self.members.get(member_number)

    def write_outcome(self, row_id: str, outcome: SyncOutcome) -> None:
        self.write_script.next()
        self.outcomes[row_id].append(outcome)
        for number, member in self.members.items():
            if member.row_id == row_id:
                self.members[number] = member.model_copy(
                    update={"sync_status": outcome.status, "ct_user_id": outcome.ct_user_id or member.ct_user_id}
                )

    def last_outcome(self, row_id: str) -> SyncOutcome | None:
        return self.outcomes[row_id][-1] if self.outcomes[row_id] else None

    def find_by_status(
        self, statuses: Sequence[str], *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[Member]:
        for member in self.members.values():
            last = self.last_outcome(member.row_id)
            if last is None or last.status not in statuses:
                continue
            if (since is None or last.at >= since) and (until is None or last.at < until):
                yield member

    def changed_after(self, cursor: ChangeCursor | None) -> Iterator[ChangePage]:
        changed = sorted(
            (
                m
                for m in self.members.values()
                if cursor is None or (m.updated, m.row_id) > (cursor.updated, cursor.row_id)
            ),
            key=lambda m: (m.updated, m.row_id),
        )
        if changed:
            yield ChangePage(list(changed), ChangeCursor(changed[-1].updated, changed[-1].row_id))

    def count_changed_after(self, cursor: ChangeCursor | None) -> int:
        return sum(len(page.items) for page in self.changed_after(cursor))

    def find_matching(self, conditions: Sequence[tuple[str, str]]) -> Iterator[Member | InvalidRecord]:
        known = self.field_names()
        for field, _ in conditions:
            if self.members and field not in known:
                raise UnknownField(field, known=known, where="the fake store")
        for number in sorted(self.members):
            document = self.members[number].to_siebel()
            if all(str(document.get(field) or "") == value for field, value in conditions):
                yield self.members[number]

    def field_names(self) -> frozenset[str]:
        return frozenset(name for member in self.members.values() for name in member.to_siebel())


class FakeKnownStates:
    def __init__(self) -> None:
        self.states: dict[str, KnownState] = {}
        self.script = Script()

    def known_state(self, member_number: str) -> KnownState:
        self.script.next()
        return self.states.get(member_number, KnownState())

    def remember(self, member_number: str, state: SyncedState | RefusedState) -> None:
        self.script.next()
        current = self.states.get(member_number, KnownState())
        if isinstance(state, SyncedState):
            self.states[member_number] = replace(current, synced=state, refused=None)
        else:
            self.states[member_number] = replace(current, refused=state)

    def forget(self, member_number: str) -> None:
        self.states.pop(member_number, None)


class FakeMemberLocks:
    """Shared by the handlers that stand for several worker processes."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.script = Script()  # failures of the locks' database
        self._lock = threading.Lock()

    def try_lock(self, member_number: str) -> bool:
        self.script.next()
        with self._lock:
            if member_number in self.held:
                return False
            self.held.add(member_number)
            return True

    def unlock(self, member_number: str) -> None:
        with self._lock:
            self.held.discard(member_number)


class FakeLedger:
    """The `Ledger` and `LatestOutcomes` ports: rows in order; `script` fails writes, `reads` fails reads."""

    def __init__(self) -> None:
        self.rows: list[AttemptRecord] = []
        self.script = Script()
        self.reads = Script()

    def record(self, attempts: Sequence[AttemptRecord]) -> None:
        self.script.next()
        self.rows.extend(attempts)

    def latest_outcomes(self, member_numbers: Sequence[str]) -> dict[str, LatestOutcome]:
        self.reads.next()
        wanted = set(member_numbers)
        return {
            row.member_number: LatestOutcome(row.outcome, row.error, row.at)
            for row in self.rows
            if row.member_number in wanted and row.outcome not in ("Retrying", "Unchanged")
        }  # later rows overwrite earlier ones: the newest decisive attempt wins


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[MemberEvent] = []
        self.script = Script()

    def publish(self, event: MemberEvent) -> None:
        self.script.next()
        self.published.append(event)

    def publish_many(self, events: Iterable[MemberEvent]) -> int:
        count = 0
        for event in events:
            self.publish(event)
            count += 1
        return count


class FakeMailer:
    def __init__(self) -> None:
        self.sent: list[Alert] = []
        self.script = Script()

    def send(self, alert: Alert) -> None:
        self.script.next()
        self.sent.append(alert)


class FakeDrop:
    """A drop folder in memory: `files` holds what arrived whole; `script` fails deliveries first."""

    destination = "fake://drop"

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.script = Script()

    def deliver(self, local: Path, name: str, *, progress: Callable[[int], None] | None = None) -> Delivery:
        self.script.next()
        self.files[name] = local.read_bytes()
        return Delivery(name=name, size=len(self.files[name]), destination=self.destination)

    def text(self, name: str) -> str:
        return self.files[name].decode()


class FakePrivacyDeletions:
    def __init__(self, deleted: dict[str, str] | None = None) -> None:
        self.deleted = deleted or {}

    def deletion_request(self, member_number: str) -> str | None:
        return self.deleted.get(member_number)


class FakePrivacyRegister:
    """The register of privacy requests, in memory; `blocked_at_delete` records what blocked when CrowdTwist was
    asked to delete (a test of "recorded before asked")."""

    def __init__(self) -> None:
        self.requests: dict[str, PrivacyRequest] = {}

    def deletion_request(self, member_number: str) -> str | None:
        blocking = [
            request.request_id
            for request in self.requests.values()
            if request.kind == "delete" and request.member_number == member_number and request.status not in RELEASED
        ]
        return blocking[-1] if blocking else None

    def open_request(
        self,
        kind: RequestKind,
        *,
        at: datetime,
        reference: str | None,
        member_number: str | None = None,
        ct_user_id: int | None = None,
    ) -> PrivacyRequest:
        request_id = f"PR-{len(self.requests) + 1}"
        self.requests[request_id] = PrivacyRequest(
            request_id, kind, "Requested", at, at, member_number, ct_user_id, reference
        )
        return self.requests[request_id]

    def update(
        self,
        request_id: str,
        *,
        status: str,
        at: datetime,
        outcome: str | None = None,
        member_number: str | None = None,
        ct_user_id: int | None = None,
    ) -> PrivacyRequest:
        current = self.requests[request_id]
        self.requests[request_id] = replace(
            current,
            status=status,
            updated_at=at,
            outcome=outcome if outcome is not None else current.outcome,
            member_number=member_number or current.member_number,
            ct_user_id=ct_user_id if ct_user_id is not None else current.ct_user_id,
        )
        return self.requests[request_id]

    def get(self, request_id: str) -> PrivacyRequest | None:
        return self.requests.get(request_id)

    def open_deletions(self) -> list[PrivacyRequest]:
        return [r for r in self.requests.values() if r.kind == "delete" and r.status not in SETTLED]

    def restore(self, member_number: str, *, by: str, at: datetime) -> list[str]:
        restored = []
        while (request_id := self.deletion_request(member_number)) is not None:
            self.update(request_id, status="Restored", at=at, outcome=f"restored by privacy request {by}")
            restored.append(request_id)
        return restored

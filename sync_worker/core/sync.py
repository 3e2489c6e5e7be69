"""The use case: bring CrowdTwist to a member's *current* Siebel state with as few calls as possible, and write the
outcome back onto the member.

Calls spent, in the common paths: an unchanged member 0; an update 1 (PUT by third_party_id); an enroll 1 (create);
an update of a member CrowdTwist does not know 2 (PUT → 404 → create); unchanged data CrowdTwist refused before 0.
Siebel calls: 2 (read the member, write the outcome back).

One sync of a member runs at a time, across every worker process (the caller holds the member's lock), and every
change in Siebel brings its own event: so what this sync reads is sent, and a later change is the next sync's. No
read after sending is needed (it cost a third Siebel call per member when concurrent syncs had to check each other).

What the ledger knows (what CrowdTwist last accepted or refused) is trusted only on a *fresh* delivery: the first
delivery of a first attempt. A redelivered message, a later attempt or a resubmit always sends, because its earlier
attempt may have reached CrowdTwist in an order no one saw; a send whose outcome is unknown (a timeout) forgets
what the ledger knew. A create is tried first only for a fresh enroll of a member never synced; otherwise it is
update first. A second CrowdTwist member for one Member Number is never made: a create refused as "already exists"
becomes an update, and a create refused for any other reason is followed by a look-up by third_party_id before the
member is blamed with a Data Error (a create repeated after a crash may be refused on its email first).

A member deleted in CrowdTwist on a privacy request is never sent again: the known-state read (one indexed ledger
read, before any CrowdTwist call) says so, and the member gets `Data Error` "deleted in CrowdTwist on privacy request
R" instead, written once. Because that read guards against re-creating a deleted member, a ledger that cannot be
read fails the sync (retried later) rather than sending blind; the caller learns from `calls` that nothing was sent,
so the retry may still trust the ledger once it is back.

Pure core: talks to the outside only through the ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import structlog

from config.settings import DefaultsSettings
from sync_worker.core.ct_user import CtUser, UserPayload
from sync_worker.core.errors import (
    AlreadyExists,
    CtSyncError,
    DataRejected,
    InvalidRecord,
    NotAuthorized,
    PermanentError,
    TransientError,
)
from sync_worker.core.mapping import Mapping, map_member
from sync_worker.core.member import Member, SyncOutcome, SyncStatus, skip_reason
from sync_worker.core.ports import (
    Clock,
    CrowdTwistUsers,
    KnownState,
    KnownStates,
    MemberStore,
    RefusedState,
    SyncedState,
)
from sync_worker.core.privacy import deleted_text

log = structlog.get_logger(__name__)

# Sends of unknown fate tried again within one sync, each from a fresh read (the client resends no write itself).
_UNKNOWN_OUTCOME_RETRIES = 2
ResultKind = Literal["synced", "unchanged", "skipped", "rejected"]


@dataclass(frozen=True)
class SyncResult:
    kind: ResultKind
    ct_user_id: int | None = None
    reason: str | None = None
    calls: int = 0


@dataclass
class CallCount:
    """CrowdTwist calls one sync began, kept by the caller: after a failure it tells whether anything was sent."""

    count: int = 0


class MemberSync:
    def __init__(
        self,
        *,
        store: MemberStore,
        crowdtwist: CrowdTwistUsers,
        known_states: KnownStates,
        defaults: DefaultsSettings,
        program_id: str | None,
        clock: Clock,
    ) -> None:
        self._store = store
        self._crowdtwist = crowdtwist
        self._known_states = known_states
        self._defaults = defaults
        self._program_id = program_id
        self._clock = clock

    def sync(
        self,
        member_number: str,
        *,
        enroll: bool,
        fresh: bool = True,
        force: bool = False,
        calls: CallCount | None = None,
    ) -> SyncResult:
        """Sync one member. Raises TransientError / NotAuthorized for the caller's retry decision.

        `fresh`: the first delivery of a first attempt (see the module docstring); `force`: send even when the
        ledger says unchanged (a resubmit); `calls`: counts the CrowdTwist calls begun, for a caller that must know
        after a failure whether anything was sent. The caller holds the member's lock.
        """
        calls = calls if calls is not None else CallCount()
        create_first, trust = enroll and fresh, fresh and not force
        for unknown_outcomes in range(_UNKNOWN_OUTCOME_RETRIES + 1):
            try:
                return self._sync_once(member_number, create_first=create_first, trust=trust, calls=calls)
            except TransientError as failure:
                # A send whose fate is unknown (a timeout, a 500) is tried again here, but from a fresh read of
                # Siebel, never with the old body.
                if not failure.outcome_unknown or unknown_outcomes == _UNKNOWN_OUTCOME_RETRIES:
                    raise
                create_first, trust = False, False
        raise AssertionError("unreachable")

    def write_failure(self, member_number: str, *, status: SyncStatus, error: str) -> None:
        """Write a failure status (CT Failure, OIC Failure) found outside `sync`."""
        write_failure(self._store, member_number, status=status, error=error, at=self._clock.now())

    # -- one pass --------------------------------------------------------------------------------------------------

    def _sync_once(self, member_number: str, *, create_first: bool, trust: bool, calls: CallCount) -> SyncResult:
        try:
            member = self._store.get_member(member_number)
        except InvalidRecord as invalid:
            return self._refuse_record(invalid, trust=trust)
        if member is None:
            return SyncResult("skipped", reason="no such member in Siebel")
        reason = skip_reason(member, program_id=self._program_id)
        if reason is not None:
            return SyncResult("skipped", reason=reason)

        known = self._known_state(member_number)
        if known.deleted_by is not None:
            return self._deleted(member, known)
        mapping = map_member(member, self._defaults)
        fingerprint = mapping.fingerprint()
        if not mapping.accepted:
            return self._refuse(member, fingerprint, mapping.error_text, known=known if trust else None)
        if trust and known.synced is not None and known.synced.payload_hash == fingerprint:
            return self._unchanged(member, known.synced)
        if trust and _still_refused(known, fingerprint, member.sync_status):
            return _unchanged_refusal(known)

        try:
            user = self._send(member, mapping, calls, known=known.synced is not None, create_first=create_first)
        except DataRejected as rejected:
            return self._refuse(member, fingerprint, rejected.message, known=None, calls=calls.count)
        except TransientError as failure:
            if failure.outcome_unknown:  # CrowdTwist may hold what we sent, or not: trust nothing next time
                self._forget(member_number)
            raise
        if user is None:
            return SyncResult("skipped", reason="inactive and never in CrowdTwist", calls=calls.count)

        self._remember(member_number, SyncedState(fingerprint, user.id, self._now()))
        self._write(member.row_id, SyncOutcome(status=SyncStatus.SYNCED, ct_user_id=user.id, at=self._now()))
        return SyncResult("synced", ct_user_id=user.id, calls=calls.count)

    # -- CrowdTwist ------------------------------------------------------------------------------------------------

    def _send(
        self, member: Member, mapping: Mapping, calls: CallCount, *, known: bool, create_first: bool
    ) -> CtUser | None:
        known = known or member.ct_user_id is not None
        if create_first and not known and member.is_active:
            return self._create(member, mapping.payload, calls)
        user = self._update(member, mapping.payload, calls)
        if user is not None:
            return user
        if not member.is_active:
            return None  # design: an inactive member CrowdTwist has never seen is not sent
        return self._create(member, mapping.payload, calls)

    def _create(self, member: Member, payload: UserPayload, calls: CallCount) -> CtUser:
        calls.count += 1
        try:
            return self._crowdtwist.create_user(payload.for_create())
        except AlreadyExists:
            return self._update_existing(member, payload, calls)
        except PermanentError as refused:
            if isinstance(refused, NotAuthorized):
                raise
            # Not yet the member's fault: CrowdTwist may already hold it (a create repeated after a crash, refused
            # on the email before the third_party_id). One read, only on this path, before any Data Error.
            calls.count += 1
            if self._crowdtwist.get_user(member.member_number) is None:
                raise
            log.info("create_refused_but_member_exists", refused=refused.message)
            return self._update_existing(member, payload, calls)

    def _update_existing(self, member: Member, payload: UserPayload, calls: CallCount) -> CtUser:
        user = self._update(member, payload, calls)
        if user is None:  # CrowdTwist contradicts itself; try again later rather than guess
            raise TransientError(
                "CrowdTwist says the member exists but cannot find it", system="crowdtwist", operation="update_user"
            )
        return user

    def _update(self, member: Member, payload: UserPayload, calls: CallCount) -> CtUser | None:
        calls.count += 1
        return self._crowdtwist.update_user(member.member_number, payload)

    # -- outcomes --------------------------------------------------------------------------------------------------

    def _unchanged(self, member: Member, state: SyncedState) -> SyncResult:
        """CrowdTwist already holds exactly this payload: spend no call; repair the status if it is stale."""
        if member.sync_status == SyncStatus.SYNCED and member.ct_user_id == state.ct_user_id:
            return SyncResult("unchanged", ct_user_id=state.ct_user_id, reason="unchanged since last sync")
        self._write(member.row_id, SyncOutcome(status=SyncStatus.SYNCED, ct_user_id=state.ct_user_id, at=self._now()))
        return SyncResult("synced", ct_user_id=state.ct_user_id)

    def _refuse(
        self, member: Member, fingerprint: str, reason: str, *, known: KnownState | None, calls: int = 0
    ) -> SyncResult:
        """Data Error, unless this very data was refused before and the member already says so (`known` is given
        only when the ledger may be trusted)."""
        if known is not None and _still_refused(known, fingerprint, member.sync_status):
            return _unchanged_refusal(known)
        self._write(member.row_id, SyncOutcome(status=SyncStatus.DATA_ERROR, error=reason, at=self._now()))
        self._remember(member.member_number, RefusedState(fingerprint, reason, self._now()))
        return SyncResult("rejected", reason=reason, calls=calls)

    def _deleted(self, member: Member, known: KnownState) -> SyncResult:
        """Deleted on a privacy request: no call, a Data Error naming the request, written once (Siebel's write
        stamp brings the member round again; the second time it already says so)."""
        assert known.deleted_by is not None
        reason = deleted_text(known.deleted_by)
        if member.sync_status == SyncStatus.DATA_ERROR and known.refused is not None and known.refused.reason == reason:
            return SyncResult("unchanged", reason=f"unchanged since refused: {reason}")
        self._write(member.row_id, SyncOutcome(status=SyncStatus.DATA_ERROR, error=reason, at=self._now()))
        self._remember(member.member_number, RefusedState(f"privacy:{known.deleted_by}", reason, self._now()))
        return SyncResult("rejected", reason=reason)

    def _refuse_record(self, invalid: InvalidRecord, *, trust: bool) -> SyncResult:
        """A Siebel record that is no valid member: Data Error on its row, once while it stays as it is."""
        number = invalid.member_number
        if trust and number is not None:
            known = self._known_state(number)
            if _still_refused(known, invalid.fingerprint, invalid.sync_status):
                return _unchanged_refusal(known)
        self._write(invalid.row_id, SyncOutcome(status=SyncStatus.DATA_ERROR, error=invalid.message, at=self._now()))
        if number is not None:
            self._remember(number, RefusedState(invalid.fingerprint, invalid.message, self._now()))
        return SyncResult("rejected", reason=invalid.message)

    def _write(self, row_id: str, outcome: SyncOutcome) -> None:
        self._store.write_outcome(row_id, outcome)

    def _now(self) -> datetime:
        return self._clock.now()

    # -- the ledger's knowledge: saves calls, and keeps members deleted on a privacy request out of CrowdTwist ----

    def _known_state(self, member_number: str) -> KnownState:
        """Raises TransientError when the ledger cannot be read: without it, a deleted member could be re-created."""
        try:
            return self._known_states.known_state(member_number)
        except TransientError:
            raise
        except CtSyncError as exc:
            raise TransientError(f"ledger unavailable: {exc.message}", system="ledger") from exc

    def _remember(self, member_number: str, state: SyncedState | RefusedState) -> None:
        try:
            self._known_states.remember(member_number, state)
        except CtSyncError as exc:
            # The outcome stands (CrowdTwist has it, Siebel is told). What the ledger knew of the member is stale
            # now: the ledger forgets it in its next transaction (the port's promise), so no later sync trusts it.
            # The outage itself is the worker's news, said once; this is one member's detail.
            log.debug("known_state_unavailable", error=exc.message)

    def _forget(self, member_number: str) -> None:
        try:
            self._known_states.forget(member_number)
        except CtSyncError as exc:
            # The retry that follows sends anyway (it is not fresh), and the ledger forgets the member in its next
            # transaction.
            log.debug("known_state_unavailable", error=exc.message)


def write_failure(store: MemberStore, member_number: str, *, status: SyncStatus, error: str, at: datetime) -> None:
    """Write a failure status onto the member with this Member Number. Its row is looked up now, never taken from
    an event, whose row id may be stale or another member's. A member Siebel no longer has gets nothing."""
    try:
        member = store.get_member(member_number)
        row_id = member.row_id if member is not None else None
    except InvalidRecord as invalid:
        row_id = invalid.row_id
    if row_id is None:
        log.warning("failure_not_written_no_such_member", status=str(status))
        return
    store.write_outcome(row_id, SyncOutcome(status=status, error=error, at=at))


def _still_refused(known: KnownState, fingerprint: str, sync_status: str | None) -> bool:
    refused = known.refused
    return refused is not None and refused.fingerprint == fingerprint and sync_status == SyncStatus.DATA_ERROR


def _unchanged_refusal(known: KnownState) -> SyncResult:
    assert known.refused is not None
    return SyncResult("unchanged", reason=f"unchanged since refused: {known.refused.reason}")

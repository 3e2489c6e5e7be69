"""The use case: bring CrowdTwist to a member's *current* Siebel state with as few calls as possible, and write the
outcome back onto the member.

Calls spent, in the common paths: an unchanged member 0; an update 1 (PUT by third_party_id); an enroll 1 (create);
an update of a member CrowdTwist does not know 2 (PUT → 404 → create). A second CrowdTwist member for one Member
Number is never created: every create that CrowdTwist refuses as "already exists" becomes an update, and after a
create whose result is unknown (a timeout), later attempts update first instead of creating blindly.

Pure core: talks to the outside only through the ports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import structlog

from config.settings import DefaultsSettings
from sync_worker.core.ct_user import CtUser, UserPayload
from sync_worker.core.errors import AlreadyExists, CtSyncError, DataRejected, InvalidRecord, TransientError
from sync_worker.core.mapping import Mapping, map_member
from sync_worker.core.member import Member, SyncOutcome, SyncStatus, skip_reason
from sync_worker.core.ports import Clock, CrowdTwistUsers, MemberStore, SyncedState, SyncedStates

log = structlog.get_logger(__name__)

# Passes of send-then-check before the member is left to its next event (a member edited non-stop).
_MAX_PASSES = 3
ResultKind = Literal["synced", "unchanged", "skipped", "rejected"]


@dataclass(frozen=True)
class SyncResult:
    kind: ResultKind
    ct_user_id: int | None = None
    reason: str | None = None
    calls: int = 0


@dataclass
class _Calls:
    count: int = 0


class MemberSync:
    def __init__(
        self,
        *,
        store: MemberStore,
        crowdtwist: CrowdTwistUsers,
        synced_states: SyncedStates,
        defaults: DefaultsSettings,
        program_id: str | None,
        clock: Clock,
    ) -> None:
        self._store = store
        self._crowdtwist = crowdtwist
        self._synced_states = synced_states
        self._defaults = defaults
        self._program_id = program_id
        self._clock = clock

    def sync(self, member_number: str, *, enroll: bool, first_attempt: bool = True, force: bool = False) -> SyncResult:
        """Sync one member. Raises TransientError / NotAuthorized for the caller's retry decision.

        After sending, the member is read again: if Siebel now holds other data (it changed meanwhile, or another
        worker process sent an older state after ours), it is sent again, unconditionally. The last write to
        CrowdTwist is therefore always followed by a check by its writer, which is what makes concurrent workers
        converge on the newest Siebel state.
        """
        calls = _Calls()
        result = SyncResult("skipped")
        for _pass in range(_MAX_PASSES):
            result, sent = self._sync_once(
                member_number, enroll=enroll, first_attempt=first_attempt, force=force, calls=calls
            )
            if sent is None or not self._changed_since(member_number, sent):
                return result
            force, enroll = True, False
        return result

    def _changed_since(self, member_number: str, fingerprint: str) -> bool:
        try:
            member = self._store.get_member(member_number)
        except InvalidRecord:
            return False  # the next event for it writes the Data Error
        return member is not None and map_member(member, self._defaults).fingerprint() != fingerprint

    def _sync_once(
        self, member_number: str, *, enroll: bool, first_attempt: bool, force: bool, calls: _Calls
    ) -> tuple[SyncResult, str | None]:
        """One pass; also the fingerprint of what was sent to CrowdTwist, if anything was."""
        try:
            member = self._store.get_member(member_number)
        except InvalidRecord as invalid:
            self._store.write_outcome(
                invalid.row_id, SyncOutcome(status=SyncStatus.DATA_ERROR, error=invalid.message, at=self._clock.now())
            )
            return SyncResult("rejected", reason=invalid.message), None
        if member is None:
            return SyncResult("skipped", reason="no such member in Siebel"), None
        reason = skip_reason(member, program_id=self._program_id)
        if reason is not None:
            return SyncResult("skipped", reason=reason), None

        mapping = map_member(member, self._defaults)
        if not mapping.accepted:
            self._write(member, SyncStatus.DATA_ERROR, error=mapping.error_text)
            return SyncResult("rejected", reason=mapping.error_text), None

        fingerprint = mapping.fingerprint()
        state = self._known_state(member_number)
        if not force and state is not None and state.payload_hash == fingerprint:
            return self._unchanged(member, state), None

        try:
            user = self._send(
                member, mapping, calls, known=state is not None, enroll=enroll, first_attempt=first_attempt
            )
        except DataRejected as rejected:
            self._write(member, SyncStatus.DATA_ERROR, error=rejected.message)
            return SyncResult("rejected", reason=rejected.message, calls=calls.count), None
        if user is None:
            return SyncResult("skipped", reason="inactive and never in CrowdTwist", calls=calls.count), None

        self._remember(member_number, SyncedState(fingerprint, user.id, self._clock.now()))
        self._write(member, SyncStatus.SYNCED, ct_user_id=user.id)
        return SyncResult("synced", ct_user_id=user.id, calls=calls.count), fingerprint

    def write_failure(self, member_number: str, *, row_id: str | None, status: SyncStatus, error: str) -> None:
        """Write a failure status (CT Failure, OIC Failure) found outside `sync`; needs only the row id."""
        if row_id is None:
            member = self._store.get_member(member_number)
            if member is None:
                return
            row_id = member.row_id
        self._store.write_outcome(row_id, SyncOutcome(status=status, error=error, at=self._clock.now()))

    def _send(
        self, member: Member, mapping: Mapping, calls: _Calls, *, known: bool, enroll: bool, first_attempt: bool
    ) -> CtUser | None:
        known = known or member.ct_user_id is not None
        # Create first only when this is surely new: an enroll, never synced, not after an uncertain create.
        if enroll and first_attempt and not known and member.is_active:
            return self._create(member, mapping.payload, calls)
        user = self._update(member, mapping.payload, calls)
        if user is not None:
            return user
        if not member.is_active:
            return None  # design: an inactive member CrowdTwist has never seen is not sent
        return self._create(member, mapping.payload, calls)

    def _create(self, member: Member, payload: UserPayload, calls: _Calls) -> CtUser:
        calls.count += 1
        try:
            return self._crowdtwist.create_user(payload.for_create())
        except AlreadyExists:
            user = self._update(member, payload, calls)
            if user is None:  # CrowdTwist contradicts itself; try again later rather than guess
                raise TransientError(
                    "CrowdTwist says the member exists but cannot find it", system="crowdtwist", operation="update_user"
                ) from None
            return user

    def _update(self, member: Member, payload: UserPayload, calls: _Calls) -> CtUser | None:
        calls.count += 1
        return self._crowdtwist.update_user(member.member_number, payload)

    def _unchanged(self, member: Member, state: SyncedState) -> SyncResult:
        """CrowdTwist already holds exactly this payload: spend no call; repair the status if it is stale."""
        if member.sync_status == SyncStatus.SYNCED and member.ct_user_id == state.ct_user_id:
            return SyncResult("unchanged", ct_user_id=state.ct_user_id, reason="unchanged since last sync")
        self._write(member, SyncStatus.SYNCED, ct_user_id=state.ct_user_id)
        return SyncResult("synced", ct_user_id=state.ct_user_id)

    def _known_state(self, member_number: str) -> SyncedState | None:
        # The synced-state table saves calls; when it is unavailable, syncing costs a call more, nothing worse.
        try:
            return self._synced_states.get_synced_state(member_number)
        except CtSyncError as exc:
            log.warning("synced_state_unavailable", error=exc.message)
            return None

    def _remember(self, member_number: str, state: SyncedState) -> None:
        try:
            self._synced_states.put_synced_state(member_number, state)
        except CtSyncError as exc:
            log.warning("synced_state_unavailable", error=exc.message)

    def _write(
        self, member: Member, status: SyncStatus, *, error: str | None = None, ct_user_id: int | None = None
    ) -> None:
        outcome = SyncOutcome(status=status, error=error, ct_user_id=ct_user_id, at=self._clock.now())
        self._store.write_outcome(member.row_id, outcome)

"""Use case: privacy requests (GDPR, CCPA). An access export of everything CrowdTwist holds about a member, a deletion
in CrowdTwist followed to completion, and the explicit restore that lets the sync send a deleted member again.

Every request is recorded in a register (the ledger) *before* CrowdTwist is asked: a deletion blocks the member's
sync from the moment it is requested, so a sync racing the request can never re-create the member. The register
holds ids, times, statuses and CrowdTwist's refusals, never the exported data. CrowdTwist's refusals are kept
verbatim (an operator answers the data subject with them).

Pure core: CrowdTwist and the register are ports; the caller sleeps between polls (`sleep` is given).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from sync_worker.core.ct_user import CtUser, DeletionStatus, DeletionTicket
from sync_worker.core.errors import CtSyncError, NotAuthorized, PermanentError, TransientError
from sync_worker.core.ports import Clock, PrivacyDeletions

IdType = Literal["third_party_id", "email", "id"]
RequestKind = Literal["access", "delete", "restore"]
# Everything an access export reads besides the profile, in the order of the document.
ACCESS_SOURCES = ("activities", "activity_history", "rewards", "redemption_history", "purchases", "receipts")
NOT_AVAILABLE = "not available"

# Statuses of a request in the register; a deletion also takes CrowdTwist's own (Queued, Deletion_…).
REQUESTED, DONE, NOT_FOUND, REFUSED, FAILED, UNCONFIRMED, RESTORED = (
    "Requested", "Done", "Not found", "Refused", "Failed", "Unconfirmed", "Restored",
)  # fmt: skip
DELETION_COMPLETED = "Deletion_completed"
# A deletion in one of these never reached CrowdTwist's queue, or was taken back: the member may be synced again.
# Every other status blocks the sync (an `Unconfirmed` one too: the DELETE may have been applied).
RELEASED = (NOT_FOUND, REFUSED, FAILED, RESTORED)
# Statuses that need no more polling.
SETTLED = (*RELEASED, DONE, DELETION_COMPLETED)


def deleted_text(request_id: str) -> str:
    """The Data Error written onto a member deleted on a privacy request (design.md)."""
    return f"deleted in CrowdTwist on privacy request {request_id}"


class RequestFailed(Exception):
    """A request CrowdTwist could not answer (unreachable, a refused key): recorded, and named with its cause."""

    def __init__(self, request: PrivacyRequest, cause: CtSyncError) -> None:
        super().__init__(f"privacy request {request.request_id}: {cause.message}")
        self.request = request
        self.cause = cause


@dataclass(frozen=True)
class Identity:
    """Who the request is about: a Member Number, an email, or a CrowdTwist id (CrowdTwist's `id_type`)."""

    id_type: IdType
    value: str

    def describe(self) -> str:
        """For lines and the register: never the email itself (personal data)."""
        if self.id_type == "third_party_id":
            return f"member {self.value}"
        if self.id_type == "id":
            return f"CrowdTwist user {self.value}"
        return "the member with that email"


@dataclass(frozen=True)
class PrivacyRequest:
    """One row of the register: ids and outcomes only."""

    request_id: str
    kind: RequestKind
    status: str
    requested_at: datetime
    updated_at: datetime
    member_number: str | None = None
    ct_user_id: int | None = None
    reference: str | None = None
    outcome: str | None = None

    @property
    def settled(self) -> bool:
        return self.status in SETTLED


@dataclass
class AccessExport:
    """An access request's answer: the JSON document (personal data: for the requester only) and its counts."""

    request: PrivacyRequest
    document: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int | None] = field(default_factory=dict)  # None: the source is not available


class CrowdTwistPrivacy(Protocol):
    """The CrowdTwist calls privacy requests make, through the sync's own pacer, retries and budget."""

    def user_document(self, value: str | int, *, id_type: str = "id") -> dict[str, Any] | None:
        """The whole user object, or None (404)."""
        ...

    def read_source(self, source: str, ct_user_id: int) -> list[dict[str, Any]] | None:
        """Every item (every page) of one of `ACCESS_SOURCES`; None when its endpoint is not served (404)."""
        ...

    def delete_user(self, value: str | int, *, id_type: str = "third_party_id") -> DeletionTicket | None: ...

    def deletion_status(self, ct_user_id: int) -> DeletionStatus | None: ...


class PrivacyRegister(PrivacyDeletions, Protocol):
    """The ledger's record of privacy requests."""

    def open_request(
        self,
        kind: RequestKind,
        *,
        at: datetime,
        reference: str | None,
        member_number: str | None = None,
        ct_user_id: int | None = None,
    ) -> PrivacyRequest:
        """Record a new request, status `Requested`; its id is new."""
        ...

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
        """Set the status (and outcome; ids only when given) of a request."""
        ...

    def get(self, request_id: str) -> PrivacyRequest | None: ...

    def open_deletions(self) -> list[PrivacyRequest]:
        """Deletion requests not yet settled, oldest first."""
        ...

    def restore(self, member_number: str, *, by: str, at: datetime) -> list[str]:
        """Mark the member's blocking deletions `Restored` (by the restore request `by`) and forget what the ledger
        knew of the member in CrowdTwist (it was deleted there); the ids of the deletions restored."""
        ...


class PrivacyRequests:
    def __init__(self, *, crowdtwist: CrowdTwistPrivacy, register: PrivacyRegister, clock: Clock) -> None:
        self._crowdtwist = crowdtwist
        self._register = register
        self._clock = clock

    # -- access ------------------------------------------------------------------------------------------------

    def access(self, who: Identity, *, reference: str | None = None) -> AccessExport:
        """Read the profile and every page of every source. An unknown member is a request `Not found`; a
        CrowdTwist that cannot answer raises `RequestFailed` (the request recorded `Failed`)."""
        request = self._open("access", who, reference)
        try:
            document = self._crowdtwist.user_document(who.value, id_type=who.id_type)
            if document is None:
                return AccessExport(self._settle(request, NOT_FOUND, f"no CrowdTwist user for {who.describe()}"))
            user = CtUser.model_validate(document)
            request = self._identified(request, user, who)
            sources: dict[str, Any] = {}
            counts: dict[str, int | None] = {"profile": 1}
            for source in ACCESS_SOURCES:
                items = self._crowdtwist.read_source(source, user.id)
                sources[source] = NOT_AVAILABLE if items is None else items
                counts[source] = None if items is None else len(items)
        except CtSyncError as failure:
            raise self._failed(request, failure) from failure
        request = self._settle(request, DONE, summary(counts))
        exported = {
            "privacy_request": request.request_id,
            "exported_at": request.updated_at.isoformat(),
            "ct_user_id": user.id,
            "third_party_id": user.third_party_id,
            "profile": document,
            **sources,
            "not_available": [source for source in ACCESS_SOURCES if counts[source] is None],
        }
        return AccessExport(request, exported, counts)

    # -- deletion ----------------------------------------------------------------------------------------------

    def delete(self, who: Identity, *, reference: str | None = None) -> PrivacyRequest:
        """Request the deletion: recorded (blocking the sync) before CrowdTwist is asked. CrowdTwist's refusal is
        the request `Refused` with its words; an unreachable CrowdTwist raises `RequestFailed` after recording
        `Failed` (or `Unconfirmed` when the DELETE may have been applied)."""
        request = self._open("delete", who, reference)
        try:
            document = self._crowdtwist.user_document(who.value, id_type=who.id_type)
            if document is None:
                return self._settle(request, NOT_FOUND, f"no CrowdTwist user for {who.describe()}")
            user = CtUser.model_validate(document)
            request = self._identified(request, user, who)
            ticket = self._crowdtwist.delete_user(user.id, id_type="id")
        except NotAuthorized as failure:
            raise self._failed(request, failure) from failure
        except PermanentError as refusal:  # "Member is inactive but has redeemable points", verbatim
            return self._settle(request, REFUSED, refusal.message)
        except CtSyncError as failure:
            raise self._failed(request, failure) from failure
        if ticket is None:
            return self._settle(request, NOT_FOUND, f"CrowdTwist no longer knows user {user.id}")
        return self._register.update(request.request_id, status=ticket.status, at=self._clock.now())

    def follow(self, request: PrivacyRequest) -> PrivacyRequest:
        """Ask CrowdTwist where a deletion stands; a settled request (or no deletion) is returned as it is."""
        if request.kind != "delete" or request.settled or request.ct_user_id is None:
            return request
        status = self._crowdtwist.deletion_status(request.ct_user_id)
        if status is None or status.status == request.status:
            return request
        return self._register.update(request.request_id, status=status.status, at=self._clock.now())

    def follow_open(self) -> list[PrivacyRequest]:
        """Poll every open deletion once (`privacy status` without an id, the `privacy-followup` job)."""
        return [self.follow(request) for request in self._register.open_deletions()]

    def wait(
        self,
        request: PrivacyRequest,
        *,
        interval: float,
        sleep: Callable[[float], None],
        progress: Callable[[PrivacyRequest], None] = lambda request: None,
    ) -> PrivacyRequest:
        """Poll every `interval` seconds until the deletion is settled; `progress` hears each change."""
        while not request.settled and request.kind == "delete" and request.ct_user_id is not None:
            sleep(interval)
            followed = self.follow(request)
            if followed.status != request.status:
                progress(followed)
            request = followed
        return request

    # -- restore -----------------------------------------------------------------------------------------------

    def restore(self, member_number: str, *, reference: str | None = None) -> PrivacyRequest | None:
        """Let the sync send this member again (a new member in CrowdTwist); None when no deletion blocks it."""
        if self._register.deletion_request(member_number) is None:
            return None
        request = self._register.open_request(
            "restore", at=self._clock.now(), reference=reference, member_number=member_number
        )
        restored = self._register.restore(member_number, by=request.request_id, at=self._clock.now())
        return self._settle(request, DONE, f"sync re-enabled; deletion request {', '.join(restored)} restored")

    # -- the register --------------------------------------------------------------------------------------------

    def _open(self, kind: RequestKind, who: Identity, reference: str | None) -> PrivacyRequest:
        return self._register.open_request(
            kind,
            at=self._clock.now(),
            reference=reference,
            member_number=who.value if who.id_type == "third_party_id" else None,
            ct_user_id=int(who.value) if who.id_type == "id" and who.value.isdigit() else None,
        )

    def _identified(self, request: PrivacyRequest, user: CtUser, who: Identity) -> PrivacyRequest:
        """Both ids on the request, before anything else is asked: a deletion blocks this Member Number now."""
        number = user.third_party_id or request.member_number
        return self._register.update(
            request.request_id, status=REQUESTED, at=self._clock.now(), member_number=number, ct_user_id=user.id
        )

    def _settle(self, request: PrivacyRequest, status: str, outcome: str) -> PrivacyRequest:
        return self._register.update(request.request_id, status=status, at=self._clock.now(), outcome=outcome)

    def _failed(self, request: PrivacyRequest, failure: CtSyncError) -> RequestFailed:
        unknown = isinstance(failure, TransientError) and failure.outcome_unknown and request.kind == "delete"
        return RequestFailed(self._settle(request, UNCONFIRMED if unknown else FAILED, failure.message), failure)


def summary(counts: dict[str, int | None]) -> str:
    """`profile 1, activities 3, receipts not available`: what an access export held, in counts only."""
    return ", ".join(f"{name} {NOT_AVAILABLE if count is None else count}" for name, count in counts.items())

"""Adapter: the register of privacy requests (`ct_sync_privacy_requests`, defined beside the sync's own tables in
`sql`, whose known-state read joins it), in the ledger database.

Implements the core's `PrivacyRegister` (and so `PrivacyDeletions`, which segment exports and resubmits ask). Rows
hold request ids, Member Numbers, CrowdTwist ids, the operator's ticket reference, times, statuses and CrowdTwist's
refusals: never the data an access export read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select, update

from sync_worker.core.privacy import RELEASED, REQUESTED, RESTORED, SETTLED, PrivacyRequest, RequestKind
from sync_worker.ledger.sql import (
    _aware,
    create_ledger_engine,
    create_schema,
    deletion_blocking,
    member_states,
    metadata,
    privacy_requests,
    request_id,
    transaction,
)

_PREFIX = request_id(0).removesuffix("0")


class PrivacyLedger:
    def __init__(self, url: str) -> None:
        self._engine = create_ledger_engine(url, pool_size=2)
        create_schema(self._engine, metadata)

    def close(self) -> None:
        self._engine.dispose()

    # -- PrivacyDeletions --------------------------------------------------------------------------------------

    def deletion_request(self, member_number: str) -> str | None:
        with transaction(self._engine) as connection:
            row_id = connection.execute(select(deletion_blocking(member_number))).scalar()
        return None if row_id is None else request_id(row_id)

    # -- PrivacyRegister ---------------------------------------------------------------------------------------

    def open_request(
        self,
        kind: RequestKind,
        *,
        at: datetime,
        reference: str | None,
        member_number: str | None = None,
        ct_user_id: int | None = None,
    ) -> PrivacyRequest:
        values = {
            "kind": kind, "member_number": member_number, "ct_user_id": ct_user_id, "reference": reference,
            "requested_at": at, "updated_at": at, "status": REQUESTED,
        }  # fmt: skip
        with transaction(self._engine) as connection:
            inserted = connection.execute(insert(privacy_requests).values(values).returning(privacy_requests.c.id))
            return _request(connection.execute(_by_id(inserted.scalar_one())).one())

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
        values: dict[str, Any] = {"status": status, "updated_at": at}
        if outcome is not None:
            values["outcome"] = outcome
        if member_number is not None:
            values["member_number"] = member_number
        if ct_user_id is not None:
            values["ct_user_id"] = ct_user_id
        row_id = _row_id(request_id)
        with transaction(self._engine) as connection:
            connection.execute(update(privacy_requests).where(privacy_requests.c.id == row_id).values(values))
            return _request(connection.execute(_by_id(row_id)).one())

    def get(self, request_id: str) -> PrivacyRequest | None:
        row_id = _row_id(request_id)
        if row_id is None:
            return None
        with transaction(self._engine) as connection:
            row = connection.execute(_by_id(row_id)).first()
        return None if row is None else _request(row)

    def open_deletions(self) -> list[PrivacyRequest]:
        query = (
            privacy_requests.select()
            .where(privacy_requests.c.kind == "delete", privacy_requests.c.status.not_in(SETTLED))
            .order_by(privacy_requests.c.id)
        )
        with transaction(self._engine) as connection:
            return [_request(row) for row in connection.execute(query)]

    def restore(self, member_number: str, *, by: str, at: datetime) -> list[str]:
        blocking = (
            privacy_requests.c.member_number == member_number,
            privacy_requests.c.kind == "delete",
            privacy_requests.c.status.not_in(RELEASED),
        )
        with transaction(self._engine) as connection:
            row_ids = list(connection.execute(select(privacy_requests.c.id).where(*blocking)).scalars())
            connection.execute(
                update(privacy_requests)
                .where(privacy_requests.c.id.in_(row_ids))
                .values(status=RESTORED, updated_at=at, outcome=f"restored by privacy request {by}")
            )
            # CrowdTwist no longer holds what the ledger remembers: the next sync sends (and creates).
            connection.execute(delete(member_states).where(member_states.c.member_number == member_number))
        return [request_id(row_id) for row_id in row_ids]

    def requests(self, *, limit: int = 50) -> list[PrivacyRequest]:
        """The newest requests first (`privacy status --all`)."""
        query = privacy_requests.select().order_by(privacy_requests.c.id.desc()).limit(limit)
        with transaction(self._engine) as connection:
            return [_request(row) for row in connection.execute(query)]


def _by_id(row_id: int | None) -> Any:
    return privacy_requests.select().where(privacy_requests.c.id == row_id)


def _row_id(request_id: str) -> int | None:
    """`PR-17` → 17; `17` is accepted too; anything else is no request."""
    digits = request_id.strip().upper().removeprefix(_PREFIX.upper())
    return int(digits) if digits.isdigit() else None


def _request(row: Row[Any]) -> PrivacyRequest:
    return PrivacyRequest(
        request_id=request_id(row.id),
        kind=row.kind,
        status=row.status,
        requested_at=_aware(row.requested_at),
        updated_at=_aware(row.updated_at),
        member_number=row.member_number,
        ct_user_id=None if row.ct_user_id is None else int(row.ct_user_id),
        reference=row.reference,
        outcome=row.outcome,
    )

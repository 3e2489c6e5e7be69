"""The register of privacy requests on SQLite and PostgreSQL: ids, statuses, the deletion folded into the sync's
one known-state read, restore."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync_worker.core.ports import SyncedState
from sync_worker.ledger.privacy import PrivacyLedger
from sync_worker.ledger.sql import SCHEMA_VERSION, SqlLedger

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    database: str = request.getfixturevalue("postgres_database")
    return database


@pytest.fixture
def both(url: str) -> Iterator[tuple[PrivacyLedger, SqlLedger]]:
    register, ledger = PrivacyLedger(url), SqlLedger(url, pool_size=2)
    yield register, ledger
    register.close()
    ledger.close()


def test_the_schema_version_counts_the_register() -> None:
    assert SCHEMA_VERSION >= 3  # 3 brought the register; later versions keep it


def test_a_request_is_recorded_with_its_ids_and_times(both: tuple[PrivacyLedger, SqlLedger]) -> None:
    register, _ = both
    opened = register.open_request("delete", at=NOON, reference="T-1", member_number="296-1")
    later = NOON + timedelta(minutes=1)
    updated = register.update(opened.request_id, status="Queued", at=later, ct_user_id=100_001)
    assert opened.request_id.startswith("PR-")
    assert (updated.status, updated.member_number, updated.ct_user_id, updated.reference) == (
        "Queued", "296-1", 100_001, "T-1",
    )  # fmt: skip
    assert (updated.requested_at, updated.updated_at) == (NOON, later)
    assert register.get(opened.request_id) == updated
    assert register.get("PR-999") is None
    assert register.get("nonsense") is None


def test_the_known_state_read_says_which_request_deleted_the_member(both: tuple[PrivacyLedger, SqlLedger]) -> None:
    register, ledger = both
    ledger.remember("296-1", SyncedState("hash", 100_001, NOON))
    assert ledger.known_state("296-2").deleted_by is None  # neither state nor request: still one row read
    request = register.open_request("delete", at=NOON, reference=None, member_number="296-1")
    assert ledger.known_state("296-1").deleted_by == request.request_id
    assert register.deletion_request("296-1") == request.request_id
    register.open_request("delete", at=NOON, reference=None, member_number="296-2")  # no state row, still seen
    assert ledger.known_state("296-2").deleted_by is not None


def test_a_refused_deletion_blocks_nothing(both: tuple[PrivacyLedger, SqlLedger]) -> None:
    register, ledger = both
    request = register.open_request("delete", at=NOON, reference=None, member_number="296-1")
    register.update(
        request.request_id, status="Refused", at=NOON, outcome="Member is inactive but has redeemable points"
    )
    assert register.deletion_request("296-1") is None
    assert ledger.known_state("296-1").deleted_by is None
    assert register.open_deletions() == []


def test_open_deletions_are_the_unsettled_ones(both: tuple[PrivacyLedger, SqlLedger]) -> None:
    register, _ = both
    done = register.open_request("delete", at=NOON, reference=None, member_number="296-1")
    register.update(done.request_id, status="Deletion_completed", at=NOON)
    running = register.open_request("delete", at=NOON, reference=None, member_number="296-2")
    register.update(running.request_id, status="Deletion_in_progress", at=NOON)
    register.open_request("access", at=NOON, reference=None, member_number="296-3")
    assert [request.request_id for request in register.open_deletions()] == [running.request_id]


def test_restore_releases_the_member_and_forgets_its_crowdtwist_state(both: tuple[PrivacyLedger, SqlLedger]) -> None:
    register, ledger = both
    ledger.remember("296-1", SyncedState("hash", 100_001, NOON))
    deletion = register.open_request("delete", at=NOON, reference=None, member_number="296-1")
    register.update(deletion.request_id, status="Deletion_completed", at=NOON)
    restore = register.open_request("restore", at=NOON, reference="T-9", member_number="296-1")
    assert register.restore("296-1", by=restore.request_id, at=NOON) == [deletion.request_id]
    known = ledger.known_state("296-1")
    assert (known.deleted_by, known.synced) == (None, None)  # the next sync sends, and creates
    restored = register.get(deletion.request_id)
    assert restored is not None
    assert (restored.status, restored.outcome) == ("Restored", f"restored by privacy request {restore.request_id}")

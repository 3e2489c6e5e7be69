"""The poller: initial load, later changes only, skips counted, the watermark only moves after confirms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.settings import SiebelSettings
from siebel_adapter.poller import Poller
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.errors import TransientError
from tests.builders import PROGRAM, siebel_member
from tests.fakes import FakePublisher

START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> SqliteMemberStore:
    return SqliteMemberStore(tmp_path / "siebel.sqlite", SiebelSettings(), page_size=2)


def poller(store: SqliteMemberStore, publisher: FakePublisher, tmp_path: Path) -> Poller:
    return Poller(
        store, publisher, watermark_path=tmp_path / "watermark.json", overlap=timedelta(minutes=2), program_id=PROGRAM
    )


def test_the_first_run_loads_the_whole_program_and_skips_others(store: SqliteMemberStore, tmp_path: Path) -> None:
    for n in range(5):
        store.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=START + timedelta(minutes=n))
    store.upsert_member(siebel_member(**{"Member Type": "Household"}), at=START)
    store.upsert_member(siebel_member(**{"Program Id": "1-OTHER"}), at=START)
    publisher = FakePublisher()
    report = poller(store, publisher, tmp_path).run_once()
    assert report.initial_load
    assert report.published == 5
    assert sum(report.skipped.values()) == 2
    assert {event.event_type for event in publisher.published} == {"enroll"}
    assert report.watermark == START + timedelta(minutes=4)


def test_a_later_run_publishes_changes_since_the_watermark_with_overlap(
    store: SqliteMemberStore, tmp_path: Path
) -> None:
    for n in range(3):
        store.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=START + timedelta(minutes=10 * n))
    poller(store, FakePublisher(), tmp_path).run_once()
    store.upsert_member(siebel_member(**{"Member Number": "296-new"}), at=START + timedelta(minutes=30))
    publisher = FakePublisher()
    report = poller(store, publisher, tmp_path).run_once()
    # The watermark is +20m; the 2-minute overlap re-reads from +18m, so 296-2 (+20m) comes again: harmless.
    assert [event.member_number for event in publisher.published] == ["296-2", "296-new"]
    assert not report.initial_load
    assert {event.event_type for event in publisher.published} == {"update"}


def test_the_watermark_does_not_move_past_unconfirmed_events(store: SqliteMemberStore, tmp_path: Path) -> None:
    for n in range(4):
        store.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=START + timedelta(minutes=n))
    publisher = FakePublisher()
    publisher.script.failures = [None, None, TransientError("queue down", system="broker")]
    the_poller = poller(store, publisher, tmp_path)
    with pytest.raises(TransientError):
        the_poller.run_once()
    assert the_poller.read_watermark() == START + timedelta(minutes=1)  # the first page of two was confirmed

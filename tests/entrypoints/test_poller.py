"""The poller: initial load, later changes only, skips counted, the cursor only moves after confirms, a page Siebel
cannot answer now read again with backoff."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import SiebelSettings
from sandbox.servers import SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter.rest_store import SiebelRestStore
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.errors import TransientError
from sync_worker.core.messages import MemberEvent
from sync_worker.entrypoints.poller import Poller, PollReport
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
    assert report.cursor is not None
    assert report.cursor.updated == START + timedelta(minutes=4)


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
    state = the_poller.read_state()  # the first page of two was confirmed
    assert state is not None
    assert state.cursor is not None
    assert state.cursor.updated == START + timedelta(minutes=1)
    assert not state.initial_load_complete


def test_an_interrupted_initial_load_resumes_as_an_initial_load(store: SqliteMemberStore, tmp_path: Path) -> None:
    """Resumed as enrolls, so each new member costs one create, not an update answered 404 and then a create."""
    for n in range(4):
        store.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=START + timedelta(minutes=n))
    publisher = FakePublisher()
    publisher.script.failures = [None, None, TransientError("queue down", system="broker")]
    with pytest.raises(TransientError):
        poller(store, publisher, tmp_path).run_once()
    report = poller(store, publisher, tmp_path).run_once()
    assert (report.initial_load, report.resumed) == (True, True)
    assert [(e.member_number, e.event_type) for e in publisher.published] == [
        ("296-0", "enroll"),
        ("296-1", "enroll"),
        ("296-2", "enroll"),
        ("296-3", "enroll"),
    ]


def test_a_record_that_is_no_valid_member_does_not_stop_the_poll(store: SqliteMemberStore, tmp_path: Path) -> None:
    store.upsert_member(siebel_member(**{"Member Number": "296-0"}), at=START)
    store.upsert_member(siebel_member(**{"Member Number": "296-bad", "Date of Birth": "31/31/1985"}), at=START)
    store.upsert_member(siebel_member(**{"Member Number": "296-2"}), at=START + timedelta(minutes=1))
    publisher = FakePublisher()
    report = poller(store, publisher, tmp_path).run_once()
    # Published like any other: the worker reads it, writes its Data Error, and remembers it.
    assert sorted(event.member_number for event in publisher.published) == ["296-0", "296-2", "296-bad"]
    assert report.unreadable == 1


def test_members_moved_by_writes_during_a_poll_are_all_published(store: SqliteMemberStore, tmp_path: Path) -> None:
    """Every write bumps Updated, so a written member moves to the end of the change order while the poll reads it:
    read by key, it is read again later, never skipped (offsets skipped 155 of 1,954 members)."""
    numbers = [f"296-{n:02d}" for n in range(9)]
    for n, number in enumerate(numbers):
        store.upsert_member(siebel_member(**{"Member Number": number}), at=START + timedelta(seconds=n))

    class WritingBack(FakePublisher):
        """Like the worker, writes each published member's outcome at once (which moves its row)."""

        def publish(self, event: MemberEvent) -> None:
            super().publish(event)
            store.update_fields(event.row_id or "", {"CT Sync Status": "Synced"})

    publisher = WritingBack()
    poller(store, publisher, tmp_path).run_once()
    assert {event.member_number for event in publisher.published} == set(numbers)


def test_a_dry_run_counts_what_would_be_published_and_publishes_nothing(
    store: SqliteMemberStore, tmp_path: Path
) -> None:
    for n in range(3):
        store.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=START + timedelta(minutes=n))
    store.upsert_member(siebel_member(**{"Program Id": "1-OTHER"}), at=START)
    publisher = FakePublisher()
    report = poller(store, publisher, tmp_path).run_once(dry_run=True)
    assert (report.read, report.total, report.published, dict(report.skipped)) == (
        4, 4, 3, {"member of program 1-OTHER, not 1-PRG": 1}
    )  # fmt: skip
    assert publisher.published == []
    assert not (tmp_path / "watermark.json").exists()  # the next real poll is still the initial load
    assert poller(store, publisher, tmp_path).run_once().initial_load


def test_progress_says_how_many_of_how_many_were_read_after_each_page(store: SqliteMemberStore, tmp_path: Path) -> None:
    for n in range(5):
        store.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=START + timedelta(minutes=n))
    seen: list[tuple[int, int | None]] = []
    poller(store, FakePublisher(), tmp_path).run_once(lambda report: seen.append((report.read, report.total)))
    assert seen == [(2, 5), (4, 5), (5, 5)]


# -- Siebel failing a page (issue 29): read again with backoff, over real HTTP against the Siebel REST emulator ------


@pytest.fixture
def siebel(tmp_path: Path) -> Iterator[tuple[SiebelEmulator, SiebelRestStore]]:
    """Twelve members behind the emulated Siebel REST API, read five to a page."""
    admin = SqliteMemberStore(tmp_path / "siebel.sqlite", SiebelSettings())
    for n in range(12):
        admin.upsert_member(siebel_member(**{"Member Number": f"296-{n:02d}"}), at=START + timedelta(minutes=n))
    emulator = SiebelEmulator(admin, username="CTSYNC", password="emulator-pw")
    with SiebelEmulatorServer(emulator) as server:
        settings = SiebelSettings(
            backend="rest", base_url=server.base_url, username="CTSYNC", password=SecretStr("emulator-pw"), page_size=5
        )
        store = SiebelRestStore(settings)
        yield emulator, store
        store.close()


def rest_poller(store: SiebelRestStore, publisher: FakePublisher, tmp_path: Path, waits: list[float]) -> Poller:
    return Poller(
        store,
        publisher,
        watermark_path=tmp_path / "watermark.json",
        overlap=timedelta(minutes=2),
        program_id=PROGRAM,
        sleep=waits.append,  # the backoff is recorded, not waited for
    )


def test_a_page_siebel_answers_500_is_read_again_with_backoff_and_the_poll_completes(
    siebel: tuple[SiebelEmulator, SiebelRestStore], tmp_path: Path
) -> None:
    emulator, store = siebel
    publisher, waits = FakePublisher(), []

    def after_each_page(report: PollReport) -> None:
        if report.read == 5:  # the first page confirmed: Siebel fails the next two reads
            emulator.fail_reads = 2

    report = rest_poller(store, publisher, tmp_path, waits).run_once(after_each_page)
    assert emulator.failed_reads == 2
    assert len(waits) == 2
    assert 4 <= waits[0] < 5  # backoff: 4 s, then 8 s, with up to a second of jitter
    assert 8 <= waits[1] < 9
    assert [event.member_number for event in publisher.published] == [f"296-{n:02d}" for n in range(12)]
    assert report.cursor is not None
    assert report.cursor.updated == START + timedelta(minutes=11)


def test_a_page_siebel_keeps_failing_fails_the_run_after_four_tries_and_the_next_run_takes_it_up(
    siebel: tuple[SiebelEmulator, SiebelRestStore], tmp_path: Path
) -> None:
    emulator, store = siebel
    publisher, waits = FakePublisher(), []

    def after_each_page(report: PollReport) -> None:
        if report.read == 5:
            emulator.fail_reads = 100

    the_poller = rest_poller(store, publisher, tmp_path, waits)
    with pytest.raises(TransientError, match="HTTP 500"):
        the_poller.run_once(after_each_page)
    assert (emulator.failed_reads, len(waits)) == (4, 3)
    state = the_poller.read_state()  # the watermark stays at the last page confirmed
    assert state is not None
    assert state.cursor is not None
    assert state.cursor.updated == START + timedelta(minutes=4)
    emulator.fail_reads = 0
    rest_poller(store, publisher, tmp_path, waits).run_once()
    assert [event.member_number for event in publisher.published] == [f"296-{n:02d}" for n in range(12)]

"""The segment export run with fakes for Siebel and the drop folder, and the real ledger on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync_worker.core.errors import TransientError
from sync_worker.core.segments import CountMismatch, LeftOut, SegmentTooLarge
from sync_worker.ledger.runs import RunLedger
from sync_worker.segments.export import SegmentExport, SegmentRequest
from sync_worker.segments.sources import BadMemberList
from tests.builders import PROGRAM, member
from tests.fakes import FakeClock, FakeDrop, FakePrivacyDeletions, FakeStore

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOLD = SegmentRequest(name="Gold", where=(("Status", "Active"),))


def known(number: str, ct_user_id: int, **fields: str) -> object:
    return member(**{"Member Number": number, **fields}).model_copy(update={"ct_user_id": ct_user_id})


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(
        [
            known("296-1", 1001),  # type: ignore[list-item]
            known("296-2", 1002),  # type: ignore[list-item]
            member(**{"Member Number": "296-3"}),  # never synced
            known("296-4", 1004, **{"Program Id": "1-OTHER"}),  # type: ignore[list-item]
        ]
    )


def exporter(
    tmp_path: Path, store: FakeStore, runs: RunLedger, *, drop: FakeDrop | None = None, **options: object
) -> SegmentExport:
    values: dict[str, object] = {
        "store": store,
        "drop": drop or FakeDrop(),
        "deliveries": runs,
        "runs": runs,
        "privacy": FakePrivacyDeletions(),
        "clock": FakeClock(NOON),
        "program_id": PROGRAM,
        "max_bytes": 128 * 1024 * 1024,
        "spool_dir": tmp_path / "spool",
        "archive_dir": tmp_path / "archive",
    }
    values.update(options)
    return SegmentExport(**values)  # type: ignore[arg-type]


def test_the_file_holds_only_members_crowdtwist_knows_one_identifier_column(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    drop = FakeDrop()
    report = exporter(tmp_path, store, runs, drop=drop).run(GOLD)
    assert report.file_name == "Gold_20261122_1200.csv"
    assert drop.text("Gold_20261122_1200.csv") == "CTUserID\n1001\n1002\n"
    assert report.left_out == {LeftOut.NEVER_SYNCED: 1, LeftOut.OTHER_PROGRAM: 1}


def test_left_out_members_are_listed_with_their_reason(tmp_path: Path, store: FakeStore, runs: RunLedger) -> None:
    report = exporter(tmp_path, store, runs).run(GOLD)
    assert report.left_out_file is not None
    assert report.left_out_file.read_text().splitlines() == [
        "Member Number,reason",
        "296-3,never synced (CrowdTwist does not know them)",
        "296-4,other program",
    ]


def test_third_party_id_files_carry_member_numbers(tmp_path: Path, store: FakeStore, runs: RunLedger) -> None:
    drop = FakeDrop()
    exporter(tmp_path, store, runs, drop=drop).run(
        SegmentRequest(name="Gold", where=GOLD.where, identifier="third_party_id")
    )
    assert drop.text("Gold_20261122_1200.csv") == "third_party_id\n296-1\n296-2\n"


def test_a_member_number_that_would_need_enclosing_is_refused_and_reported_never_written(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    store.put(known('296-"5"', 1005))  # type: ignore[arg-type]
    drop = FakeDrop()
    report = exporter(tmp_path, store, runs, drop=drop).run(
        SegmentRequest(name="Gold", where=GOLD.where, identifier="third_party_id")
    )
    assert '"' not in drop.text(report.file_name)
    assert report.left_out[LeftOut.NEEDS_ENCLOSING] == 1


def test_a_member_deleted_on_a_privacy_request_is_never_written(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    drop = FakeDrop()
    privacy = FakePrivacyDeletions({"296-2": "R-7"})
    report = exporter(tmp_path, store, runs, drop=drop, privacy=privacy).run(GOLD)
    assert drop.text(report.file_name) == "CTUserID\n1001\n"
    assert report.left_out[LeftOut.PRIVACY_DELETED] == 1


def test_a_member_list_counts_unknown_numbers_and_writes_duplicates_once(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    listing = tmp_path / "members.csv"
    listing.write_text("\ufeffEmail,Member Number\na@x,296-1\n\nb@x,296-404\nc@x,296-1\nd@x,296-2\n", encoding="utf-8")
    count = tmp_path / "members.count"
    count.write_text("4\n")
    drop = FakeDrop()
    report = exporter(tmp_path, store, runs, drop=drop).run(
        SegmentRequest(name="Gold", from_file=listing, count_file=count)
    )
    assert drop.text(report.file_name) == "CTUserID\n1001\n1002\n"
    assert report.left_out == {LeftOut.UNKNOWN: 1, LeftOut.DUPLICATE: 1}


def test_a_count_file_that_disagrees_fails_the_run_before_anything_is_sent(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    listing = tmp_path / "members.csv"
    listing.write_text("Member Number\n296-1\n296-2\n")
    count = tmp_path / "members.count"
    count.write_text("3")
    drop = FakeDrop()
    with pytest.raises(CountMismatch, match=r"holds 2 data lines, its count file .* says 3"):
        exporter(tmp_path, store, runs, drop=drop).run(SegmentRequest(name="Gold", from_file=listing, count_file=count))
    assert drop.files == {}
    run = runs.run("cli-segment-Gold.1")
    assert run is not None
    assert (run.status, run.error) == ("Failed", f"{listing} holds 2 data lines, its count file {count} says 3")


def test_a_member_list_without_a_member_number_column_is_named(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    listing = tmp_path / "members.csv"
    listing.write_text("Email\na@x\n")
    with pytest.raises(BadMemberList, match="no 'Member Number' column"):
        exporter(tmp_path, store, runs).run(SegmentRequest(name="Gold", from_file=listing))


def test_a_segment_over_the_size_limit_fails_before_upload_naming_the_size(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    drop = FakeDrop()
    with pytest.raises(SegmentTooLarge, match="grows past 16 bytes at row 2"):
        exporter(tmp_path, store, runs, drop=drop, max_bytes=16).run(GOLD)
    assert drop.files == {}
    assert list((tmp_path / "spool").iterdir()) == []


def test_a_second_export_in_the_same_minute_takes_the_next_suffix(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    export = exporter(tmp_path, store, runs)
    first = export.run(GOLD)
    second = export.run(GOLD)
    assert (first.file_name, second.file_name) == ("Gold_20261122_1200.csv", "Gold_20261122_1201.csv")
    assert (first.run_id, second.run_id) == ("cli-segment-Gold.1", "cli-segment-Gold.2")


def test_a_failed_upload_releases_its_suffix_and_records_the_run_failed(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    drop = FakeDrop()
    drop.script.failures = [TransientError("SFTP server 127.0.0.1:22 unreachable: refused", system="sftp")]
    export = exporter(tmp_path, store, runs, drop=drop)
    with pytest.raises(TransientError):
        export.run(GOLD)
    assert runs.deliveries("Gold") == []
    assert runs.run("cli-segment-Gold.1").status == "Failed"  # type: ignore[union-attr]
    assert export.run(GOLD).file_name == "Gold_20261122_1200.csv"


def test_the_run_is_recorded_with_counts_files_and_log(tmp_path: Path, store: FakeStore, runs: RunLedger) -> None:
    exporter(tmp_path, store, runs).run(GOLD)
    run = runs.run("cli-segment-Gold.1")
    assert run is not None
    assert (run.status, run.kind, run.files) == ("Success", "segment-export", ["Gold_20261122_1200.csv"])
    assert run.counts["rows"] == 2
    assert run.counts["left out: never synced (CrowdTwist does not know them)"] == 1
    assert any("delivered Gold_20261122_1200.csv" in line for _, line in runs.log_lines("cli-segment-Gold.1"))


def test_the_ready_file_follows_the_data_file_with_the_row_count(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    drop = FakeDrop()
    exporter(tmp_path, store, runs, drop=drop).run(SegmentRequest(name="Gold", where=GOLD.where, ready="count"))
    assert list(drop.files) == ["Gold_20261122_1200.csv", "Gold_20261122_1200.ready"]
    assert drop.text("Gold_20261122_1200.ready") == "2\n"


def test_a_dry_run_sends_nothing_reserves_nothing_and_records_no_run(
    tmp_path: Path, store: FakeStore, runs: RunLedger
) -> None:
    drop = FakeDrop()
    report = exporter(tmp_path, store, runs, drop=drop).run(GOLD, dry_run=True)
    assert (report.file_name, report.rows, drop.files) == ("Gold_20261122_1200.csv", 2, {})
    assert report.first_lines == ["CTUserID", "1001", "1002"]
    assert runs.deliveries("Gold") == []
    assert runs.runs() == []


def test_the_delivered_file_is_archived(tmp_path: Path, store: FakeStore, runs: RunLedger) -> None:
    report = exporter(tmp_path, store, runs).run(GOLD)
    assert report.archived == tmp_path / "archive" / "Gold_20261122_1200.csv"
    assert report.archived.read_text() == "CTUserID\n1001\n1002\n"


def test_suffixes_restart_on_the_next_utc_date(tmp_path: Path, store: FakeStore, runs: RunLedger) -> None:
    clock = FakeClock(NOON)
    export = exporter(tmp_path, store, runs, clock=clock)
    export.run(GOLD)
    clock.advance(timedelta(days=1) - timedelta(hours=2))
    assert export.run(GOLD).file_name == "Gold_20261123_1000.csv"

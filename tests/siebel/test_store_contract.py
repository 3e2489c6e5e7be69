"""The MemberStore contract, one suite for every adapter (the REST adapter runs against the emulator over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import SiebelSettings
from sandbox.servers import SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter.rest_store import SiebelRestStore
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.errors import ConfigurationError, InvalidRecord, TransientError, UnknownField
from sync_worker.core.member import SyncOutcome, SyncStatus
from sync_worker.core.ports import ChangeCursor, ChangePage, MemberStore
from tests.builders import siebel_member

SETTINGS = SiebelSettings(status_field="CT Sync Status", error_field="CT Sync Error", ct_user_id_field="CT User Id")
ADAPTERS = ["sqlite", "rest"]


@dataclass
class Stores:
    store: MemberStore  # the adapter under test
    admin: SqliteMemberStore  # the Siebel administrator's view of the same data


@pytest.fixture(params=ADAPTERS)
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    admin = SqliteMemberStore(tmp_path / "siebel.sqlite", SETTINGS, page_size=3)
    if request.param == "sqlite":
        yield Stores(admin, admin)
        return
    emulator = SiebelEmulator(admin, username="CTSYNC", password="emulator-pw")
    with SiebelEmulatorServer(emulator) as server:
        settings = SETTINGS.model_copy(
            update={
                "base_url": server.base_url,
                "username": "CTSYNC",
                "password": SecretStr("emulator-pw"),
                "page_size": 3,
            }
        )
        store = SiebelRestStore(settings)
        yield Stores(store, admin)
        store.close()


def test_a_member_is_found_by_member_number(stores: Stores) -> None:
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1", "First Name": "Ann"}))
    member = stores.store.get_member("296-1")
    assert member is not None
    assert member.first_name == "Ann"
    assert stores.store.get_member("296-404") is None


def test_a_member_number_is_searched_literally(stores: Stores) -> None:
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1"}))
    assert stores.store.get_member("296-1' OR '1'='1") is None
    hostile = "296-2' OR [Member Number] LIKE '*"
    stores.admin.upsert_member(siebel_member(**{"Member Number": hostile}))
    member = stores.store.get_member(hostile)
    assert member is not None
    assert member.member_number == hostile


def test_the_outcome_is_written_to_the_configured_fields(stores: Stores) -> None:
    row = stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1"}))
    at = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    stores.store.write_outcome(row, SyncOutcome(status=SyncStatus.SYNCED, ct_user_id=564865656, at=at))
    document = stores.admin.document("296-1")
    assert document is not None
    assert document["CT Sync Status"] == "Synced"
    assert document["CT User Id"] == "564865656"
    assert document["CT Sync Error"] == ""
    member = stores.store.get_member("296-1")
    assert member is not None
    assert (member.sync_status, member.ct_user_id) == ("Synced", 564865656)


def test_writing_the_outcome_twice_is_harmless(stores: Stores) -> None:
    row = stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1"}))
    outcome = SyncOutcome(status=SyncStatus.DATA_ERROR, error="Email Address is already taken", at=datetime.now(UTC))
    stores.store.write_outcome(row, outcome)
    stores.store.write_outcome(row, outcome)
    assert stores.admin.document("296-1")["CT Sync Error"] == "Email Address is already taken"  # type: ignore[index]


def test_a_write_bumps_updated_as_siebel_does(stores: Stores) -> None:
    then = datetime(2026, 1, 1, tzinfo=UTC)
    row = stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1"}), at=then)
    stores.store.write_outcome(row, SyncOutcome(status=SyncStatus.SYNCED, at=datetime.now(UTC)))
    after = stores.store.get_member("296-1")
    assert after is not None
    assert after.updated > then


def test_members_are_found_by_status_inside_a_window(stores: Stores) -> None:
    rows = [stores.admin.upsert_member(siebel_member(**{"Member Number": f"296-{n}"})) for n in range(4)]
    noon = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    stores.store.write_outcome(rows[0], SyncOutcome(status=SyncStatus.CT_FAILURE, at=noon - timedelta(hours=2)))
    stores.store.write_outcome(rows[1], SyncOutcome(status=SyncStatus.CT_FAILURE, at=noon))
    stores.store.write_outcome(rows[2], SyncOutcome(status=SyncStatus.DATA_ERROR, at=noon))
    stores.store.write_outcome(rows[3], SyncOutcome(status=SyncStatus.SYNCED, at=noon))
    found = stores.store.find_by_status(["CT Failure"], since=noon - timedelta(hours=1))
    assert [member.member_number for member in found] == ["296-1"]
    both = stores.store.find_by_status(["CT Failure", "Data Error"])
    assert sorted(member.member_number for member in both) == ["296-0", "296-1", "296-2"]


def test_changed_members_come_page_by_page_oldest_first(stores: Stores) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(7):
        stores.admin.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=start + timedelta(minutes=n))
    pages = list(stores.store.changed_after(None))
    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert [numbers(page) for page in pages] == [["296-0", "296-1", "296-2"], ["296-3", "296-4", "296-5"], ["296-6"]]
    later = list(stores.store.changed_after(ChangeCursor(start + timedelta(minutes=4), "\uffff")))
    assert [number for page in later for number in numbers(page)] == ["296-5", "296-6"]


def test_the_store_counts_the_changed_members_a_poll_will_read(stores: Stores) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for n in range(7):
        stores.admin.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=start + timedelta(minutes=n))
    assert stores.store.count_changed_after(None) == 7
    assert stores.store.count_changed_after(ChangeCursor(start + timedelta(minutes=4), "\uffff")) == 2
    assert stores.store.count_changed_after(ChangeCursor(start + timedelta(minutes=9), "")) == 0


def test_changed_members_sharing_one_stamp_are_paged_by_id_none_twice_none_lost(stores: Stores) -> None:
    same_second = datetime(2026, 11, 1, 10, 0, 0, tzinfo=UTC)
    for n in range(8):
        stores.admin.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=same_second)
    read = [number for page in stores.store.changed_after(None) for number in numbers(page)]
    assert sorted(read) == [f"296-{n}" for n in range(8)]


def test_a_member_written_while_pages_are_read_moves_to_the_end_and_is_still_read(stores: Stores) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        stores.admin.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}), at=start + timedelta(minutes=n))
        for n in range(7)
    ]
    read: list[str] = []
    for page in stores.store.changed_after(None):
        read += numbers(page)
        if len(read) == 3:  # like a write-back between two page reads: 296-0 moves behind everyone
            stores.store.write_outcome(rows[0], SyncOutcome(status=SyncStatus.SYNCED, at=start))
    assert set(read) == {f"296-{n}" for n in range(7)}
    assert read.count("296-0") == 2


def test_a_record_that_is_no_valid_member_stays_in_its_page(stores: Stores) -> None:
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1", "Date of Birth": "31/31/1985"}))
    [page] = list(stores.store.changed_after(None))
    [invalid] = page.items
    assert isinstance(invalid, InvalidRecord)
    assert invalid.member_number == "296-1"
    assert "Date of Birth" in invalid.message


def numbers(page: ChangePage) -> list[str]:
    return [item.member_number or "" for item in page.items]


def test_members_matching_fields_stream_in_member_number_order_across_pages(stores: Stores) -> None:
    for n in (5, 1, 4, 2, 6, 3, 0):
        tier = "Gold" if n != 3 else "Silver"
        stores.admin.upsert_member(siebel_member(**{"Member Number": f"296-{n}", "Tier": tier}))
    found = stores.store.find_matching([("Tier", "Gold"), ("Status", "Active")])
    assert [m.member_number for m in found] == ["296-0", "296-1", "296-2", "296-4", "296-5", "296-6"]  # type: ignore[union-attr]


def test_a_match_value_is_quoted_never_pasted(stores: Stores) -> None:
    hostile = "Gold' OR [Status] = 'Active"
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1", "Tier": "Gold"}))
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-2", "Tier": hostile}))
    found = list(stores.store.find_matching([("Tier", hostile)]))
    assert [m.member_number for m in found] == ["296-2"]  # type: ignore[union-attr]


def test_a_condition_on_a_field_no_member_holds_is_refused_naming_the_nearest_never_an_empty_match(
    stores: Stores,
) -> None:
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1", "Tier": "Gold"}))
    with pytest.raises(UnknownField) as caught:
        list(stores.store.find_matching([("Tier", "Gold"), ("Statuss", "Active")]))
    assert (caught.value.field, caught.value.nearest) == ("Statuss", "Status")
    assert "has no field 'Statuss' (the nearest: 'Status')" in caught.value.message


def test_the_write_back_fields_are_known_before_any_member_holds_one(stores: Stores) -> None:
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1"}))
    assert list(stores.store.find_matching([("CT Sync Status", "Synced")])) == []
    assert {"Member Number", "Status", "CT Sync Status", "CT User Id"} <= stores.store.field_names()


def test_an_invalid_record_in_a_match_stream_is_reported_and_the_stream_goes_on(stores: Stores) -> None:
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1", "Date of Birth": "30.11.1979"}))
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-2"}))
    found = list(stores.store.find_matching([("Status", "Active")]))
    assert isinstance(found[0], InvalidRecord)
    assert [m.member_number for m in found[1:]] == ["296-2"]  # type: ignore[union-attr]


def test_a_record_that_is_no_valid_member_is_named_not_hidden(stores: Stores) -> None:
    stores.admin.upsert_member(siebel_member(**{"Member Number": "296-1", "Date of Birth": "30.11.1979"}))
    with pytest.raises(InvalidRecord, match="Date of Birth") as caught:
        stores.store.get_member("296-1")
    assert "30.11.1979" not in str(caught.value)


def test_the_emulator_down_switch_is_a_transient_error_for_the_rest_adapter(tmp_path: Path) -> None:
    admin = SqliteMemberStore(tmp_path / "siebel.sqlite", SETTINGS)
    emulator = SiebelEmulator(admin, username="CTSYNC", password="emulator-pw")
    with SiebelEmulatorServer(emulator) as server:
        settings = SETTINGS.model_copy(
            update={"base_url": server.base_url, "username": "CTSYNC", "password": SecretStr("emulator-pw")}
        )
        store = SiebelRestStore(settings)
        emulator.down = True
        with pytest.raises(TransientError, match=r"Siebel unavailable at .*: HTTP 503: Service Unavailable"):
            store.get_member("296-1")
        emulator.down = False
        assert store.get_member("296-1") is None
        wrong = SiebelRestStore(settings.model_copy(update={"password": SecretStr("not-the-pw")}))
        with pytest.raises(ConfigurationError, match="refused the credentials"):
            wrong.get_member("296-1")
        store.close()
        wrong.close()

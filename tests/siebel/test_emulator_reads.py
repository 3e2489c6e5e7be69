"""The Siebel REST emulator answers from an index range, as a database would: a look-up reads one row and a poll
reads each row once, whatever the program's size, so a rehearsal against it is not capped by the emulator."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from config.settings import SiebelSettings
from sandbox.servers import SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter.rest_store import SiebelRestStore
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.member import SyncOutcome, SyncStatus
from tests.builders import at, siebel_member

MEMBERS = 2000


class CountingStore(SqliteMemberStore):
    """The stand-in, counting the rows the emulator reads."""

    rows_read = 0

    def scan(self, **bounds: Any) -> Generator[dict[str, Any], None, None]:
        rows = super().scan(**bounds)
        try:
            for row in rows:
                self.rows_read += 1
                yield row
        finally:
            rows.close()


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[SiebelRestStore, CountingStore]]:
    admin = CountingStore(tmp_path / "siebel.sqlite", SiebelSettings())
    # The unkind case: one bulk load, so every member shares one Updated second.
    admin.load_members([siebel_member(**{"Id": f"1-{n:05}", "Member Number": f"296-{n:05}"}) for n in range(MEMBERS)])
    with SiebelEmulatorServer(SiebelEmulator(admin, username="CTSYNC", password="emulator-pw")) as server:
        settings = SiebelSettings(
            backend="rest", base_url=server.base_url, username="CTSYNC", password=SecretStr("emulator-pw")
        )
        store = SiebelRestStore(settings)
        yield store, admin
        store.close()


def test_a_look_up_and_a_write_back_read_one_row(stores: tuple[SiebelRestStore, CountingStore]) -> None:
    store, admin = stores
    found = store.get_member("296-01234")
    assert found is not None
    store.write_outcome(found.row_id, SyncOutcome(status=SyncStatus.SYNCED, at=at("2026-11-22T10:00:00")))
    assert admin.rows_read == 1


def test_a_poll_reads_each_row_once_however_many_share_one_stamp(stores: tuple[SiebelRestStore, CountingStore]) -> None:
    store, admin = stores
    read = [member for page in store.changed_after(None) for member in page.items]
    assert len(read) == MEMBERS
    assert admin.rows_read == MEMBERS  # 20 pages of 100, each from where the last one ended (a scan: 40,000)

"""`ct-sync segment export` on the embedded defaults (SQLite stand-in, local drop folder), and through the Siebel
REST emulator: a `--where` field Siebel does not have is a usage error naming the nearest one (never an empty
file), and a segment with no member is not sent unless `--allow-empty` (or a job's `allow_empty = true`) says so.
What a person reads, at 80 columns."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import load_settings
from sandbox.servers import SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.cli import app
from sync_worker.ledger.runs import RunLedger
from tests.builders import PROGRAM, siebel_member

runner = CliRunner(env={"COLUMNS": "80"})
COMMAND = "ct-sync segment export"


@pytest.fixture
def siebel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteMemberStore:
    """Two Gold members CrowdTwist knows, one Gold member it does not, one Silver member."""
    monkeypatch.setenv("CTSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CTSYNC_SIEBEL__PROGRAM_ID", PROGRAM)
    settings = load_settings()
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    store.load_members(
        [
            siebel_member(**{"Member Number": "296-1", "Tier": "Gold", "CT User Id": "5001"}),
            siebel_member(**{"Member Number": "296-2", "Tier": "Gold", "CT User Id": "5002"}),
            siebel_member(**{"Member Number": "296-3", "Tier": "Gold"}),
            siebel_member(**{"Member Number": "296-4", "Tier": "Silver"}),
        ]
    )
    return store


@pytest.fixture
def through_rest(siebel: SqliteMemberStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with SiebelEmulatorServer(SiebelEmulator(siebel, username="CTSYNC", password="emulator-pw")) as server:
        monkeypatch.setenv("CTSYNC_SIEBEL__BACKEND", "rest")
        monkeypatch.setenv("CTSYNC_SIEBEL__BASE_URL", server.base_url)
        monkeypatch.setenv("CTSYNC_SIEBEL__USERNAME", "CTSYNC")
        monkeypatch.setenv("CTSYNC_SIEBEL__PASSWORD", "emulator-pw")
        yield server.base_url


def export(*arguments: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["segment", "export", *arguments])
    return result.exit_code, result.stdout, result.stderr


def delivered() -> list[str]:
    folder = load_settings().drop_folder
    return sorted(path.name for path in folder.glob("*.csv")) if folder.exists() else []


def test_a_field_the_stand_in_does_not_have_is_a_usage_error_naming_the_nearest(siebel: SqliteMemberStore) -> None:
    code, out, err = export("Active", "--where", "Statuss=Active")
    assert (code, out) == (2, "")
    assert err == (
        f"{COMMAND}: --where 'Statuss=Active': Siebel's LOY Member (the SQLite stand-in) has no field 'Statuss' "
        "(the nearest: 'Status')\n"
    )
    assert delivered() == []


def test_a_field_siebel_refuses_is_the_same_usage_error(through_rest: str) -> None:
    code, _, err = export("Gold", "--where", "Teir=Gold", "--where", "Status=Active")
    assert code == 2
    assert err == (
        f"{COMMAND}: --where 'Teir=Gold': Siebel's LOY Member at {through_rest} has no field 'Teir' "
        "(the nearest: 'Tier')\n"
    )
    assert delivered() == []


def test_no_member_matching_is_not_sent_and_says_why(siebel: SqliteMemberStore) -> None:
    code, out, err = export("Platinum", "--where", "Tier=Platinum")
    assert (code, out) == (1, "")
    assert err == (
        f"{COMMAND}: segment Platinum is empty: no member in Siebel with Tier=Platinum; nothing sent "
        "(--allow-empty sends a file with the header only)\n"
    )
    assert delivered() == []


def test_members_all_left_out_are_not_sent_and_counted_by_reason(siebel: SqliteMemberStore) -> None:
    siebel.load_members([siebel_member(**{"Member Number": "296-5", "Tier": "Bronze", "Status": "Inactive"})])
    code, _, err = export("Bronze", "--where", "Tier=Bronze")
    assert code == 1
    assert err == (
        f"{COMMAND}: segment Bronze is empty: the one member in Siebel with Tier=Bronze does not belong in it "
        "(1 not Active); nothing sent (--allow-empty sends a file with the header only)\n"
    )
    dry_code, _, dry_err = export("Bronze", "--where", "Tier=Bronze", "--dry-run")
    assert (dry_code, dry_err) == (code, err)  # a dry run says what the run would do
    assert delivered() == []
    runs = RunLedger(load_settings().ledger_url)
    run = runs.run("cli-segment-Bronze.1")
    runs.close()
    assert run is not None
    assert (run.status, run.error) == ("Failed", err.removeprefix(f"{COMMAND}: ").rstrip("\n"))


def test_allow_empty_sends_the_header_alone(siebel: SqliteMemberStore) -> None:
    code, out, err = export("Platinum", "--where", "Tier=Platinum", "--allow-empty")
    assert code == 0, err
    [name] = delivered()
    assert (load_settings().drop_folder / name).read_text() == "CTUserID\n"
    assert out.startswith(f"delivered {name} to ")
    assert ": 0 rows, 9 bytes" in out


def test_the_docs_example_delivers_the_gold_members_crowdtwist_knows(through_rest: str) -> None:
    code, out, err = export("Gold", "--where", "Tier=Gold", "--where", "Status=Active")
    assert code == 0, err
    [name] = delivered()
    assert (load_settings().drop_folder / name).read_text() == "CTUserID\n5001\n5002\n"
    assert "  left out 1: never synced (CrowdTwist does not know them)" in out.splitlines()


@pytest.mark.parametrize("allow_empty", [False, True])
def test_a_segment_job_says_the_same_and_can_allow_an_empty_file(
    siebel: SqliteMemberStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, allow_empty: bool
) -> None:
    config = tmp_path / "ct-sync.toml"
    allowed = "allow_empty = true\n" if allow_empty else ""
    config.write_text(
        f'[jobs.platinum]\nkind = "segment-export"\nsegment = "Platinum"\nwhere = ["Tier=Platinum"]\n{allowed}'
    )
    monkeypatch.setenv("CTSYNC_CONFIG", str(config))
    result = runner.invoke(app, ["jobs", "run", "platinum"])
    if allow_empty:
        assert result.exit_code == 0, result.output
        assert result.stdout == "run platinum.1: Success\n"
        assert len(delivered()) == 1
        return
    assert result.exit_code == 1
    assert result.stdout == "run platinum.1: Failed\n"
    assert result.stderr.splitlines()[-1] == (
        "segment Platinum is empty: no member in Siebel with Tier=Platinum; nothing sent (allow_empty = true in "
        "the job sends a file with the header only)"
    )
    assert delivered() == []


def test_a_job_naming_an_unknown_field_fails_naming_it(
    siebel: SqliteMemberStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ct-sync.toml"
    config.write_text(
        '[jobs.gold]\nkind = "segment-export"\nsegment = "Gold"\nwhere = ["Tier=Gold", "Stauts=Active"]\n'
    )
    monkeypatch.setenv("CTSYNC_CONFIG", str(config))
    result = runner.invoke(app, ["jobs", "run", "gold"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "where 'Stauts=Active': Siebel's LOY Member (the SQLite stand-in) has no field 'Stauts' (the nearest: 'Status')"
    )


def test_the_docs_example_works_on_seeded_sandbox_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/operations.md, sections 7 and 10: seed the sandbox, sync, then `--where "Tier=Gold"` (through the REST
    emulator, as the rehearsal does): before the sync every Gold member is left out and nothing is sent; after it,
    the file holds the Gold members and no other."""
    monkeypatch.setenv("CTSYNC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CTSYNC_SIEBEL__PROGRAM_ID", "1-SANDBOX")
    assert runner.invoke(app, ["sandbox", "seed", "--members", "300", "--bad-share", "0"]).exit_code == 0
    settings = load_settings()
    store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
    tiers = {document["Member Number"]: document["Tier"] for document in store.documents()}
    assert set(tiers.values()) == {"Bronze", "Silver", "Gold"}
    gold = sorted(number for number, tier in tiers.items() if tier == "Gold")
    assert 15 <= len(gold) <= 50  # about 10 %
    with SiebelEmulatorServer(SiebelEmulator(store, username="CTSYNC", password="sandbox")) as server:
        monkeypatch.setenv("CTSYNC_SIEBEL__BACKEND", "rest")
        monkeypatch.setenv("CTSYNC_SIEBEL__BASE_URL", server.base_url)
        monkeypatch.setenv("CTSYNC_SIEBEL__USERNAME", "CTSYNC")
        monkeypatch.setenv("CTSYNC_SIEBEL__PASSWORD", "sandbox")
        code, _, err = export("Gold", "--where", "Tier=Gold", "--where", "Status=Active")
        assert code == 1
        assert f"none of the {len(gold)} members in Siebel with Tier=Gold AND Status=Active belongs in it" in err
        for document in store.documents():  # what the worker writes back once CrowdTwist holds them
            store.update_fields(document["Id"], {"CT User Id": str(int(document["Member Number"][3:]))})
        code, out, err = export("Gold", "--where", "Tier=Gold", "--where", "Status=Active", "--identifier",
                                "third_party_id")  # fmt: skip
    assert code == 0, err
    [name] = delivered()
    assert (settings.drop_folder / name).read_text().splitlines() == ["third_party_id", *gold]
    assert f": {len(gold)} rows, " in out

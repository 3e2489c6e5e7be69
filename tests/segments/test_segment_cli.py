"""`ct-sync segment export` on the embedded defaults (SQLite stand-in, local drop folder), and through the Siebel
REST emulator: a `--where` field Siebel does not have is a usage error naming the nearest one (never an empty
file). What a person reads, at 80 columns."""

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

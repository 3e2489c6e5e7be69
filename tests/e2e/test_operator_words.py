"""Small lies and dead ends an operator met, each read as printed (80 columns): `jobs list` with no job file,
`console` on a port already taken, `resubmit --status` with a status misspelt."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sync_worker.cli import app
from tests.alerts.conftest import free_port

runner = CliRunner(env={"COLUMNS": "80"})
CT_SYNC = str(Path(sys.executable).with_name("ct-sync"))
NO_JOB_FILE = (
    "No jobs: no job file is configured. Declare jobs as [jobs.NAME] tables in a TOML file and name it with "
    'CTSYNC_CONFIG=path/to/ct-sync.toml (docs/operations.md, section 8, "A job file").'
)


def test_jobs_list_without_a_job_file_says_how_to_configure_one() -> None:
    result = runner.invoke(app, ["jobs", "list"])
    assert result.exit_code == 0, result.output
    assert result.stdout == NO_JOB_FILE + "\n"


def test_jobs_list_json_without_a_job_file_is_an_empty_list_with_the_hint_on_stderr() -> None:
    result = runner.invoke(app, ["jobs", "list", "--json"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "[]\n", NO_JOB_FILE + "\n")


def test_jobs_list_with_a_config_file_holding_no_job_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ct-sync.toml"
    config.write_text('[crowdtwist]\nauth = "header"\n')
    monkeypatch.setenv("CTSYNC_CONFIG", str(config))
    result = runner.invoke(app, ["jobs", "list"])
    assert result.stdout == (
        f'No jobs in {config}: declare them as [jobs.NAME] tables there (docs/operations.md, section 8, "A job '
        'file").\n'
    )


def test_the_console_on_a_taken_port_says_so_in_one_line_and_prints_no_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("CTSYNC_CONSOLE__PORT", str(port))
        result = runner.invoke(app, ["console"])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"ct-sync: CTSYNC_CONSOLE__PORT: 127.0.0.1:{port} is already in use by another process\n"


def test_the_console_prints_its_url_once_it_listens_there(tmp_path: Path) -> None:
    port = free_port()
    environment = {**os.environ, "CTSYNC_DATA_DIR": str(tmp_path), "CTSYNC_CONSOLE__PORT": str(port)}
    with subprocess.Popen([CT_SYNC, "console"], env=environment, stdout=subprocess.PIPE, text=True) as console:
        try:
            assert console.stdout is not None
            assert console.stdout.readline() == f"ct-sync console on http://127.0.0.1:{port}\n"
            assert httpx.get(f"http://127.0.0.1:{port}/login").status_code == 200  # listening when it said so
        finally:
            console.terminate()
            console.wait(timeout=60)


@pytest.mark.parametrize(
    ("given", "hint"),
    [("CT failure", "; did you mean 'CT Failure'?"), ("Synched", "; did you mean 'Synced'?"), ("Pending", "")],
)
def test_resubmit_with_a_status_that_is_none_lists_them_and_the_nearest(given: str, hint: str) -> None:
    result = runner.invoke(app, ["resubmit", "--status", given])
    assert result.exit_code == 2
    assert result.stderr == (
        f"ct-sync resubmit: --status {given!r} is not a CT Sync Status{hint} (the statuses: 'Synced', "
        "'Data Error', 'CT Failure', 'OIC Failure')\n"
    )

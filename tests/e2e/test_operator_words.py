"""Small lies and dead ends an operator met, each read as printed (80 columns): `jobs list` with no job file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync_worker.cli import app

runner = CliRunner(env={"COLUMNS": "80"})
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

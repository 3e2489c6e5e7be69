"""Jobs and groups in the TOML file: checked at start, one line naming the job and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import SettingsError, load_settings
from sync_worker.cli import app


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ct-sync.toml"
    monkeypatch.setenv("CTSYNC_CONFIG", str(path))
    return path


@pytest.mark.parametrize(
    ("tables", "line"),
    [
        (
            '[jobs.gold]\nkind = "export"\n',
            "[jobs.gold] kind: unknown kind 'export': one of segment-export, poll, resubmit",
        ),
        (
            '[jobs.poll]\nkind = "poll"\nschedule = "0 2 * *"\n',
            "[jobs.poll] schedule: '0 2 * *' is not a 5-field cron expression",
        ),
        (
            '[jobs.poll]\nkind = "poll"\nschedule = "0 2 31 * *"\n',
            "[jobs.poll] schedule: '0 2 31 * *' runs on day 31 of the month, which some months lack",
        ),
        (
            '[jobs.poll]\nkind = "poll"\n\n[groups.nightly]\njobs = ["poll", "gold"]\n',
            "[groups.nightly] jobs: names a job that is not defined: 'gold'",
        ),
        ('[jobs.poll]\nkind = "poll"\nsegment = "Gold"\n', "[jobs.poll] segment: is not an option of this kind of job"),
        (
            '[jobs.gold]\nkind = "segment-export"\nsegment = "Gold"\n',
            "[jobs.gold] where: say which members: `where` conditions or `from_file`, not both or neither",
        ),
        (
            '[jobs.retry]\nkind = "resubmit"\nstatus = "CT Fail"\n',
            "[jobs.retry] status.0: input should be 'Synced', 'Data Error', 'CT Failure' or 'OIC Failure'",
        ),
        ('[jobs.poll]\nkind = "poll"\nnotify = "always"\n', "[jobs.poll] notify: input should be 'each', 'failed'"),
    ],
)
def test_a_wrong_job_is_refused_in_one_line_naming_it(config_file: Path, tables: str, line: str) -> None:
    config_file.write_text(tables)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value).startswith(line)
    assert "\n" not in str(refused.value)


def test_notify_to_takes_one_address_or_a_list(config_file: Path) -> None:
    config_file.write_text(
        '[jobs.a]\nkind = "poll"\nnotify_to = "crm@example.com"\n\n'
        '[jobs.b]\nkind = "poll"\nnotify_to = ["crm@example.com", "ops@example.com"]\n'
    )
    jobs = load_settings().jobs
    assert (jobs["a"].notify_to, jobs["b"].notify_to) == (["crm@example.com"], ["crm@example.com", "ops@example.com"])


@pytest.mark.parametrize(
    ("tables", "line"),
    [
        (
            '[jobs.poll]\nkind = "poll"\nschedule = "0 2 30 * *"\n',
            "ct-sync: configuration error: [jobs.poll] schedule:",
        ),
        (
            '[jobs.gold]\nkind = "segment-export"\nsegment = "Gold members"\nwhere = ["Tier=Gold"]\n',
            "ct-sync: configuration error: [jobs.gold] segment NAME 'Gold members' must be 1-50 of A-Z a-z 0-9 _ -",
        ),
    ],
)
def test_the_scheduler_refuses_a_wrong_job_at_start_with_exit_2(config_file: Path, tables: str, line: str) -> None:
    config_file.write_text(tables)
    result = CliRunner().invoke(app, ["scheduler"])
    assert result.exit_code == 2
    assert result.output.startswith(line)

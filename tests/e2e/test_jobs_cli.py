"""`ct-sync jobs …` on embedded defaults (SQLite stand-in for Siebel, embedded queue, local drop folder): what
the commands print, their JSON, and the exit codes of design.md."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import load_settings
from sync_worker.cli import app
from sync_worker.ledger.runs import RunLedger

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(autouse=True)
def jobs_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    members = tmp_path / "members.csv"
    members.write_text("Member Number\n296-1\n296-2\n")
    count = tmp_path / "members.count"
    count.write_text("3\n")  # the list holds 2: the export fails before anything is sent
    config = tmp_path / "ct-sync.toml"
    config.write_text(
        f"""
[jobs.poll]
kind = "poll"
schedule = "*/5 * * * *"

[jobs.gold]
kind = "segment-export"
segment = "Gold"
from_file = "{members}"
count_file = "{count}"

[jobs.retry]
kind = "resubmit"
status = ["CT Failure"]
active = false

[groups.nightly]
jobs = ["poll", "gold", "retry"]
schedule = "0 2 * * *"
"""
    )
    monkeypatch.setenv("CTSYNC_CONFIG", str(config))


def ledger() -> RunLedger:
    return RunLedger(load_settings().ledger_url)


def test_jobs_list_shows_every_job_and_group_with_its_group_schedule_and_next_run() -> None:
    result = runner.invoke(app, ["jobs", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert list(rows) == ["poll", "gold", "retry", "nightly"]
    assert (rows["poll"]["groups"], rows["poll"]["kind"], rows["poll"]["schedule"]) == (
        ["nightly"], "poll", "*/5 * * * *"
    )  # fmt: skip
    assert datetime.fromisoformat(rows["nightly"]["next_run"]).strftime("%H:%M") == "02:00"
    assert (rows["retry"]["active"], rows["retry"]["next_run"], rows["gold"]["previous_run"]) == (False, None, None)


def test_jobs_run_waits_for_the_end_and_exits_0_on_success() -> None:
    result = runner.invoke(app, ["jobs", "run", "poll"])
    assert result.exit_code == 0, result.output
    assert "run poll.1: Success" in result.stdout


def test_jobs_run_of_a_group_stops_at_the_failing_job_and_exits_1() -> None:
    result = runner.invoke(app, ["jobs", "run", "nightly"])
    assert result.exit_code == 1, result.output
    assert "run nightly.1: Failed\n  poll.1: Success\n  gold.1: Failed\n" in result.stdout
    assert "gold.1: " in result.stderr
    assert "its count file" in result.stderr


@pytest.mark.parametrize(("name", "why"), [("weekly", "no job or group 'weekly'"), ("retry", "retry is inactive")])
def test_jobs_run_of_an_unknown_or_inactive_job_exits_2(name: str, why: str) -> None:
    result = runner.invoke(app, ["jobs", "run", name])
    assert result.exit_code == 2
    assert why in result.stderr


def test_jobs_runs_lists_failed_runs_and_jobs_log_shows_a_runs_lines() -> None:
    runner.invoke(app, ["jobs", "run", "poll"])
    runner.invoke(app, ["jobs", "run", "gold"])
    failed = json.loads(runner.invoke(app, ["jobs", "runs", "--failed", "--json"]).stdout)
    assert [(run["run_id"], run["status"], run["kind"]) for run in failed] == [("gold.1", "Failed", "segment-export")]
    log = runner.invoke(app, ["jobs", "log", "gold.1"])
    assert log.exit_code == 0
    assert log.stdout.startswith("run gold.1 (segment-export, on-demand): Failed, started ")
    assert re.search(r"^\d\d:\d\d:\d\d failed: .*its count file .* says 3$", log.stdout, re.MULTILINE)
    assert runner.invoke(app, ["jobs", "log", "gold.7"]).exit_code == 2


def test_jobs_stop_asks_a_running_run_to_stop_and_refuses_a_finished_one() -> None:
    runs = ledger()
    running = runs.start_run("poll", kind="poll", trigger="schedule", at=datetime.now(UTC))
    result = runner.invoke(app, ["jobs", "stop", running])
    assert result.exit_code == 0, result.output
    assert runs.stop_requested(running)
    runner.invoke(app, ["jobs", "run", "retry"])
    runner.invoke(app, ["jobs", "run", "gold"])
    finished = runner.invoke(app, ["jobs", "stop", "gold.1"])
    assert finished.exit_code == 1
    assert "run gold.1 is not running (it ended Failed)" in finished.stderr
    runs.close()

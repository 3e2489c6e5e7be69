"""Small lies and dead ends an operator met, each read as printed (80 columns): `jobs list` with no job file,
`console` on a port already taken, `resubmit --status` with a status misspelt, and `poll --every` riding out a
Siebel outage in one run per pass (not a failed run per try)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from config import load_settings
from config.settings import SiebelSettings
from sandbox.servers import SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.cli import app
from sync_worker.cli.sync import _poll_pass
from sync_worker.core.errors import TransientError
from sync_worker.entrypoints.poller import PollReport
from sync_worker.ledger.runs import RunLedger
from tests.alerts.conftest import free_port
from tests.builders import siebel_member
from tests.integration.helpers import eventually

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


class BlinkingPoller:
    """A poller whose Siebel is down for the first `failures` tries of a pass."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.tries = 0

    def run_once(self, progress: object = None, *, dry_run: bool = False) -> PollReport:
        self.tries += 1
        if self.tries <= self.failures:
            raise TransientError(
                "Siebel unreachable at http://siebel.example/siebel/v1.0: ConnectError", system="siebel"
            )
        return PollReport(published=3, read=3, skipped=Counter())


def test_the_retries_of_one_poll_pass_belong_to_that_pass_s_run(runs: RunLedger) -> None:
    waits: list[float] = []
    report, run_id = _poll_pass(
        BlinkingPoller(failures=2),  # type: ignore[arg-type]
        runs,
        threading.Event(),
        longest_wait=60,
        sleep=waits.append,
    )
    assert (report.published, run_id, len(waits)) == (3, "cli-poll.1", 2)
    [run] = runs.runs(job="cli-poll", statuses=[], limit=10)
    assert (run.run_id, run.status, run.error) == ("cli-poll.1", "Success", None)
    lines = [line for _, line in runs.log_lines("cli-poll.1")]
    assert [line for line in lines if "trying again" in line] == [
        f"Siebel unreachable at http://siebel.example/siebel/v1.0: ConnectError; trying again in {waits[0]:.0f} s "
        "(attempt 2)",
        f"Siebel unreachable at http://siebel.example/siebel/v1.0: ConnectError; trying again in {waits[1]:.0f} s "
        "(attempt 3)",
    ]


def test_poll_every_with_siebel_down_records_one_run_for_the_pass_not_one_per_try(tmp_path: Path) -> None:
    store = SqliteMemberStore(tmp_path / "siebel.sqlite", SiebelSettings())
    store.load_members([siebel_member(**{"Member Number": f"296-{n}"}) for n in range(3)])
    emulator = SiebelEmulator(store, username="CTSYNC", password="emulator-pw")
    emulator.down = True
    data = tmp_path / "data"
    with SiebelEmulatorServer(emulator) as siebel:
        base_url = siebel.base_url
        environment = {
            **os.environ, "CTSYNC_DATA_DIR": str(data), "CTSYNC_SIEBEL__BACKEND": "rest",
            "CTSYNC_SIEBEL__BASE_URL": base_url, "CTSYNC_SIEBEL__USERNAME": "CTSYNC",
            "CTSYNC_SIEBEL__PASSWORD": "emulator-pw", "CTSYNC_LOG__LEVEL": "ERROR",
        }  # fmt: skip
        log = tmp_path / "poll.err"
        with (
            log.open("w") as errors,
            subprocess.Popen(
                [CT_SYNC, "poll", "--every", "1m"], env=environment, stdout=subprocess.PIPE, stderr=errors, text=True
            ) as poll,
        ):
            try:
                eventually(lambda: "(attempt 2)" in log.read_text(), timeout=60)
                emulator.down = False
                assert poll.stdout is not None
                assert poll.stdout.readline() == "initial load: read 3 of 3, published 3, skipped 0 (run cli-poll.1)\n"
            finally:
                poll.send_signal(signal.SIGTERM)
                poll.wait(timeout=60)
    said = log.read_text()
    assert re.search(
        rf"^ct-sync poll: Siebel unavailable at {re.escape(base_url)}: HTTP 503: Service Unavailable; "
        r"trying again in \d+ s \(attempt 2\)$",
        said,
        re.MULTILINE,
    ), said
    runs = RunLedger(load_settings(data_dir=data).ledger_url)
    try:
        recorded = runs.runs(job="cli-poll", statuses=[], limit=10)
        lines = [line for _, line in runs.log_lines("cli-poll.1")]
    finally:
        runs.close()
    assert [(run.run_id, run.status) for run in recorded] == [("cli-poll.1", "Success")]
    assert any(line.endswith("(attempt 2)") for line in lines), lines

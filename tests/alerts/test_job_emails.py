"""The email after a job run, sent by a real `ct-sync jobs run` process to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from config import load_settings
from siebel_adapter.sqlite_store import SqliteMemberStore
from tests.alerts.conftest import SmtpServer
from tests.builders import siebel_member
from tests.integration.worker_process import CT_SYNC


def test_a_failed_group_run_is_emailed_to_its_recipients_with_runs_counts_and_error_and_no_personal_data(
    smtp: SmtpServer, tmp_path: Path
) -> None:
    members = tmp_path / "gold.csv"
    members.write_text("Member Number\n296-1\n296-2\n")
    (tmp_path / "gold.count").write_text("3\n")
    config = tmp_path / "ct-sync.toml"
    config.write_text(
        f"""
[jobs.poll]
kind = "poll"

[jobs.gold]
kind = "segment-export"
segment = "Gold"
from_file = "{members}"
count_file = "{tmp_path / "gold.count"}"

[jobs.retry]
kind = "resubmit"
status = "CT Failure"

[groups.nightly]
jobs = ["poll", "gold", "retry"]
notify = "failed"
notify_to = ["crm-team@example.com", "ops@example.com"]
"""
    )
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("CTSYNC_")},
        "CTSYNC_CONFIG": str(config),
        "CTSYNC_DATA_DIR": str(tmp_path / "data"),
        "CTSYNC_ALERTS__SMTP_HOST": "127.0.0.1",
        "CTSYNC_ALERTS__SMTP_PORT": str(smtp.port),
    }
    settings = load_settings(data_dir=tmp_path / "data")
    SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel).upsert_member(
        siebel_member(**{"Member Number": "296-1", "First Name": "Zelda", "Email Address": "zelda@example.com"})
    )
    finished = subprocess.run([CT_SYNC, "jobs", "run", "nightly"], env=env, capture_output=True, timeout=120)
    assert finished.returncode == 1, finished.stderr.decode()
    (message,) = smtp.inbox.messages  # the run's command returns once its email is sent
    assert message["Subject"] == "[ct-sync] group nightly run nightly.1: Failed"
    assert message["To"] == "crm-team@example.com, ops@example.com"
    body = str(message.get_payload())
    for expected in ("poll.1: Success", "gold.1: Failed", "retry: not run", "jobs run: 2", "Error:", "count file"):
        assert expected in body
    assert "Zelda" not in body
    assert "zelda@example.com" not in body

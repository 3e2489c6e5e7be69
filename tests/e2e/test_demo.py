"""The demo's code path, end to end: every expected status, so the demo cannot rot."""

from __future__ import annotations

import email
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import load_settings
from sync_worker.cli import app
from sync_worker.cli.demo import run_demo

EXPECTED = {
    "296-2185770": ("Synced", ""),
    "296-2185771": ("Synced", ""),
    "296-2185772": ("Synced", ""),
    "296-2185773": ("Synced", ""),
    "296-2185774": ("Synced", ""),
    "296-2185775": ("Data Error", "Email Address is already taken"),
    "296-2185776": ("Data Error", "Last Name has characters CrowdTwist refuses"),
    "296-2185777": ("(not sent)", ""),
    "296-2185778": ("(not sent)", ""),
    "296-2185779": ("(not sent)", ""),
}


@pytest.mark.parametrize("with_rest", [False, True], ids=["sqlite", "rest-emulator"])
def test_the_demo_ends_with_every_expected_status(tmp_path: Path, with_rest: bool) -> None:
    report = run_demo(load_settings(data_dir=tmp_path), with_rest=with_rest)
    outcomes = {row.member_number: (row.status, row.error) for row in report.rows}
    assert outcomes.keys() == EXPECTED.keys()
    for number, (status, error) in EXPECTED.items():
        assert outcomes[number][0] == status, number
        assert outcomes[number][1].startswith(error), number
    assert all(row.ct_user_id for row in report.rows if row.status == "Synced")
    # 7 creates (one per new member sent), 1 update, 1 inactive PUT answered 404, and one look-up by
    # third_party_id before the taken email is blamed on the member: nothing spent twice.
    assert report.ct_calls == {"create_user": 7, "get_user": 1, "update_user": 2}
    assert report.resubmit == "ct-sync resubmit --member 296-2185775 --member 296-2185776"


def test_the_failure_email_lists_member_numbers_and_no_personal_data(tmp_path: Path) -> None:
    report = run_demo(load_settings(data_dir=tmp_path))
    assert report.emails, "no failure email was written"
    body = "".join(
        email.message_from_bytes(path.read_bytes()).get_payload(decode=True).decode()  # type: ignore[union-attr]
        for path in report.emails
    )
    assert "296-2185775" in body
    assert "296-2185776" in body
    assert "Email Address is already taken" in body
    assert "Jane" not in body
    assert "Smith" not in body
    assert "@example.com" not in body


def test_ct_sync_demo_prints_the_table_and_where_the_email_went(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CTSYNC_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "Data Error" in result.output
    assert "Failure email written to" in result.output
    assert "ct-sync resubmit --member 296-2185775" in result.output
    assert "Segment file DemoMembers_" in result.output


def test_the_demo_ends_with_a_segment_of_the_members_crowdtwist_knows(tmp_path: Path) -> None:
    report = run_demo(load_settings(data_dir=tmp_path))
    assert report.segment is not None
    synced = sorted(row.ct_user_id for row in report.rows if row.status == "Synced")
    delivered = (tmp_path / "demo" / "sftp" / report.segment.file_name).read_text().splitlines()
    assert delivered[0] == "CTUserID"
    assert sorted(delivered[1:]) == synced
    assert report.segment.first_lines == delivered[:6]

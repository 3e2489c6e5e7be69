"""The CLI commands on embedded defaults: what they print and the exit codes of design.md."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import load_settings
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.cli import app
from sync_worker.core.member import SyncOutcome, SyncStatus
from sync_worker.core.messages import decode_event
from sync_worker.core.ports import AttemptRecord
from sync_worker.ledger.operations import OperationsLog
from sync_worker.ledger.sql import build_ledger
from sync_worker.queue.broker import open_broker
from sync_worker.queue.topology import QueueTopology
from tests.builders import PROGRAM, at, siebel_member

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqliteMemberStore:
    monkeypatch.setenv("CTSYNC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CTSYNC_SIEBEL__PROGRAM_ID", PROGRAM)
    monkeypatch.setenv("CTSYNC_DEFAULTS__EMAIL_DOMAIN", "members.example.com")
    settings = load_settings()
    return SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)


def queued() -> list[str]:
    settings = load_settings()
    topology = QueueTopology.from_settings(settings.broker)
    numbers = []
    with open_broker(settings) as connection:
        topology.declare(connection)
        queue = topology.work_queue.bind(connection.default_channel)
        while (message := queue.get(no_ack=True)) is not None:
            numbers.append(decode_event(message.body).member_number)
    return numbers


def test_preview_shows_the_payload_and_a_passing_verdict(store: SqliteMemberStore) -> None:
    store.upsert_member(siebel_member(**{"Member Number": "296-1", "Last Name": "O'Brien"}))
    result = runner.invoke(app, ["preview", "--member", "296-1"])
    assert result.exit_code == 0, result.output
    assert '"last_name": "O’Brien"' in result.output
    assert "passes CrowdTwist's documented rules" in result.output


def test_preview_of_refused_data_exits_1_with_the_reason(store: SqliteMemberStore) -> None:
    store.upsert_member(siebel_member(**{"Member Number": "296-1", "Last Name": ""}))
    result = runner.invoke(app, ["preview", "--member", "296-1"])
    assert result.exit_code == 1
    assert "Data Error: Last Name is empty: CrowdTwist requires it" in result.output


def test_preview_of_an_unknown_member_exits_1(store: SqliteMemberStore) -> None:
    result = runner.invoke(app, ["preview", "--member", "296-404"])
    assert result.exit_code == 1
    assert "no member 296-404 in Siebel" in result.stderr


def test_publish_puts_one_event_on_the_queue(store: SqliteMemberStore) -> None:
    store.upsert_member(siebel_member(**{"Member Number": "296-1"}))
    result = runner.invoke(app, ["publish", "--member", "296-1", "--event", "enroll"])
    assert result.exit_code == 0, result.output
    assert "queued enroll of 296-1" in result.output
    assert queued() == ["296-1"]


def test_publish_refuses_an_unknown_event_type(store: SqliteMemberStore) -> None:
    assert runner.invoke(app, ["publish", "--member", "296-1", "--event", "delete"]).exit_code == 2


def test_resubmit_by_status_and_window_queues_the_failures(store: SqliteMemberStore) -> None:
    rows = [store.upsert_member(siebel_member(**{"Member Number": f"296-{n}"})) for n in range(3)]
    store.write_outcome(rows[0], SyncOutcome(status=SyncStatus.CT_FAILURE, at=at("2026-11-22T10:00:00")))
    store.write_outcome(rows[1], SyncOutcome(status=SyncStatus.CT_FAILURE, at=at("2026-11-20T10:00:00")))
    store.write_outcome(rows[2], SyncOutcome(status=SyncStatus.DATA_ERROR, at=at("2026-11-22T10:00:00")))
    dry = runner.invoke(app, ["resubmit", "--status", "CT Failure", "--since", "2026-11-21T00:00:00Z", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would queue 296-0" in dry.output
    assert queued() == []
    result = runner.invoke(app, ["resubmit", "--status", "CT Failure", "--since", "2026-11-21T00:00:00Z"])
    assert result.exit_code == 0, result.output
    assert queued() == ["296-0"]


def test_resubmit_refuses_a_member_resubmitted_too_often_without_force(store: SqliteMemberStore) -> None:
    store.upsert_member(siebel_member(**{"Member Number": "296-1"}))
    ledger = build_ledger(load_settings())
    ledger.record(
        [
            AttemptRecord(
                event_id=f"e{n}",
                member_number="296-1",
                event_type="update",
                outcome="CT Failure",
                at=at("2026-11-22T10:00:00"),
                source="resubmit",
            )
            for n in range(5)
        ]
    )
    refused = runner.invoke(app, ["resubmit", "--member", "296-1"])
    assert refused.exit_code == 1
    assert "resubmitted 5 times already" in refused.stderr
    assert queued() == []
    assert runner.invoke(app, ["resubmit", "--member", "296-1", "--force"]).exit_code == 0
    assert queued() == ["296-1"]


def test_resubmit_needs_something_to_resubmit(store: SqliteMemberStore) -> None:
    assert runner.invoke(app, ["resubmit"]).exit_code == 2
    assert runner.invoke(app, ["resubmit", "--status", "Broken"]).exit_code == 2


def test_status_prints_counts_and_a_members_history(store: SqliteMemberStore) -> None:
    ledger = build_ledger(load_settings())
    ledger.record([
        AttemptRecord(event_id="e1", member_number="296-1", event_type="enroll", outcome="Data Error",
                      error="Email Address is already taken", at=at("2026-11-22T10:00:00")),
        AttemptRecord(event_id="e2", member_number="296-2", event_type="enroll", outcome="Synced",
                      at=at("2026-11-22T10:00:00"), ct_calls=1),
    ])  # fmt: skip
    overview = runner.invoke(app, ["status"])
    assert overview.exit_code == 0, overview.output
    assert "Members by current state" in overview.output
    assert "Attempts in the last 24 h" in overview.output
    assert "Email Address is already taken" in overview.output
    history = runner.invoke(app, ["status", "--member", "296-2"])
    assert history.exit_code == 0
    assert "Synced" in history.output
    assert runner.invoke(app, ["status", "--member", "296-9"]).exit_code == 1


def test_check_reports_an_unreachable_system_with_75(store: SqliteMemberStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTSYNC_CROWDTWIST__BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CTSYNC_CROWDTWIST__RETRY_ATTEMPTS", "1")
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 75, result.output
    assert "crowdtwist" in result.output


def test_resubmit_dead_letters_requeues_what_names_a_member_and_keeps_the_rest(store: SqliteMemberStore) -> None:
    settings = load_settings()
    topology = QueueTopology.from_settings(settings.broker)
    with open_broker(settings) as connection:
        topology.declare(connection)
        producer = connection.Producer(exchange=topology.exchange)
        for body in (b'{"schema_version": 1, "member_number": "296-5", "event_type": "bogus"}', b"{not json"):
            producer.publish(body, routing_key=topology.dead_queue.routing_key, content_type="application/json",
                             content_encoding="utf-8", headers={"x-ct-sync-reason": "test"})  # fmt: skip
    dry = runner.invoke(app, ["resubmit", "--dead-letters", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would replay 296-5" in dry.output
    assert queued() == []
    result = runner.invoke(app, ["resubmit", "--dead-letters"])
    assert result.exit_code == 0, result.output
    assert queued() == ["296-5"]
    with open_broker(settings) as connection:
        assert topology.depths(connection)[topology.dead_queue.name] == 1  # the unreadable one stays


def test_a_dry_poll_counts_first_and_a_poll_is_a_run_that_status_shows_with_skips_by_reason(
    store: SqliteMemberStore,
) -> None:
    for n in range(3):
        store.upsert_member(siebel_member(**{"Member Number": f"296-{n}"}))
    store.upsert_member(siebel_member(**{"Member Number": "296-9", "Member Type": "Household"}))
    dry = runner.invoke(app, ["poll", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run, initial load: read 4 of 4; would publish 3, skip 1" in dry.stdout
    assert queued() == []
    polled = runner.invoke(app, ["poll"])
    assert polled.exit_code == 0, polled.output
    assert "initial load: read 4 of 4, published 3, skipped 1 (run cli-poll.1)" in polled.stdout
    assert len(queued()) == 3
    shown = json.loads(runner.invoke(app, ["status", "--json"]).stdout)["poll_runs"]
    assert [(run["run_id"], run["status"]) for run in shown] == [("cli-poll.1", "Success")]
    assert shown[0]["counts"] == {
        "read": 4, "published": 3, "skipped": 1, "unreadable": 0,
        "skipped: Household member: only Individual members are synced": 1,
    }  # fmt: skip
    assert "cli-poll.1" in runner.invoke(app, ["status"]).stdout


def test_a_dry_resubmit_says_in_json_what_would_be_queued_and_who_is_unknown(store: SqliteMemberStore) -> None:
    store.upsert_member(siebel_member(**{"Member Number": "296-1"}))
    result = runner.invoke(app, ["resubmit", "--member", "296-1", "--member", "296-404", "--dry-run", "--json"])
    assert result.exit_code == 1  # a member Siebel does not know
    assert json.loads(result.stdout) == {
        "dry_run": True,
        "members": [{"member_number": "296-1", "why": "asked for", "event_id": None}],
        "refused": [],
        "deleted": [],  # deleted in CrowdTwist on a privacy request: refused with that reason
        "unknown": ["296-404"],
    }
    assert queued() == []


def test_a_members_history_names_each_attempts_source_and_never_wraps_the_member_number(
    store: SqliteMemberStore,
) -> None:
    build_ledger(load_settings()).record([
        AttemptRecord(event_id="e1", member_number="296-2185770", event_type="enroll", outcome="CT Failure",
                      at=at("2026-11-22T10:00:00"), source="intake", error="CrowdTwist unreachable after 6 attempts"),
        AttemptRecord(event_id="e2", member_number="296-2185770", event_type="update", outcome="Synced",
                      at=at("2026-11-22T10:30:00"), source="automatic", ct_calls=1),
    ])  # fmt: skip
    result = runner.invoke(app, ["status", "--member", "296-2185770", "--json"])
    assert result.exit_code == 0, result.output
    attempts = json.loads(result.stdout)["attempts"]
    assert [(attempt["outcome"], attempt["source"]) for attempt in attempts] == [
        ("Synced", "automatic"),
        ("CT Failure", "intake"),
    ]
    narrow = runner.invoke(app, ["status", "--member", "296-2185770"], env={"COLUMNS": "60"}).stdout
    assert narrow.count("296-2185770") == 3  # the title and both rows, each whole on its line


def test_status_shows_each_workers_breaker_paused_since_and_next_probe_also_in_json(store: SqliteMemberStore) -> None:
    operations = OperationsLog(load_settings().ledger_url)
    paused = at("2026-11-22T10:00:00")
    operations.record_breaker("host-a:1", "opened", at=paused, cause="HTTP 503", since=paused)
    operations.record_breaker(
        "host-a:1", "probe_scheduled", at=paused + timedelta(seconds=35), cause="HTTP 503", since=paused,
        next_probe_at=paused + timedelta(seconds=52),
    )  # fmt: skip
    operations.record_breaker("host-b:2", "started", at=paused)
    operations.close()
    shown = runner.invoke(app, ["status"])
    assert shown.exit_code == 0, shown.output
    assert "paused since 2026-11-22 10:00:00, next probe at 2026-11-22 10:00:52: HTTP 503" in shown.output
    document = json.loads(runner.invoke(app, ["status", "--json"]).output)
    assert {b["worker"]: (b["state"], b["paused_since"], b["next_probe_at"]) for b in document["breakers"]} == {
        "host-a:1": ("open", "2026-11-22T10:00:00+00:00", "2026-11-22T10:00:52+00:00"),
        "host-b:2": ("closed", None, None),
    }

"""`ct-sync dead-letters list|replay|discard` and the count in `status`, on the embedded queue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from config import load_settings
from sync_worker.bootstrap import build_operations_log
from sync_worker.cli import app
from sync_worker.core.messages import HEADER_DEAD_AT, HEADER_LETTER_ID, HEADER_REASON, decode_event
from sync_worker.queue.broker import open_broker
from sync_worker.queue.topology import QueueTopology

runner = CliRunner(env={"COLUMNS": "200"})
HOSTILE = b'{"schema_version": 1, "member_number": "296-7", "note": "\x1b[31m[bold]red[/bold]\x1b[0m"}'


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CTSYNC_DATA_DIR", str(tmp_path))
    return tmp_path


def dead_letter(letter_id: str, body: bytes, reason: str) -> None:
    settings = load_settings()
    topology = QueueTopology.from_settings(settings.broker)
    with open_broker(settings) as connection:
        topology.declare(connection)
        connection.Producer(exchange=topology.exchange).publish(
            body, routing_key=topology.dead_queue.routing_key, content_type="application/json",
            content_encoding="utf-8", headers={HEADER_REASON: reason, HEADER_DEAD_AT: 1_795_000_000.0,
                                               HEADER_LETTER_ID: letter_id},
        )  # fmt: skip


def queued() -> list[str]:
    settings = load_settings()
    topology = QueueTopology.from_settings(settings.broker)
    with open_broker(settings) as connection:
        topology.declare(connection)
        queue = topology.work_queue.bind(connection.default_channel)
        numbers = []
        while (message := queue.get(no_ack=True)) is not None:
            numbers.append(decode_event(message.body).member_number)
        return numbers


def test_list_shows_reason_headers_and_body_escaped_and_takes_nothing_off() -> None:
    dead_letter("0123456789ab", HOSTILE, "event does not match schema 1: event_type: Field required")
    result = runner.invoke(app, ["dead-letters", "list"])
    assert result.exit_code == 0, result.output
    assert "0123456789ab" in result.output
    assert "event_type: Field required" in result.output
    assert "\\x1b[31m[bold]red[/bold]\\x1b[0m" in result.output  # as text: no colour, no rich markup
    assert "\x1b" not in result.output
    assert "1 dead letter(s)" in result.output
    again = json.loads(runner.invoke(app, ["dead-letters", "list", "--json"]).output)
    assert again["count"] == 1  # listing took nothing off
    assert again["letters"][0]["id"] == "0123456789ab"
    assert again["letters"][0]["member_number"] is None  # raw control characters make it no JSON
    assert again["letters"][0]["body"].startswith('{"schema_version": 1, "member_number": "296-7", "note": "\\x1b[31m')
    assert again["letters"][0]["body_bytes"] == len(HOSTILE)


def test_replay_by_id_queues_the_member_and_records_who_did_it() -> None:
    dead_letter("aaaaaaaaaaaa", b'{"schema_version": 1, "member_number": "296-1"}', "refused")
    dead_letter("bbbbbbbbbbbb", b'{"schema_version": 1, "member_number": "296-2"}', "refused")
    result = runner.invoke(app, ["dead-letters", "replay", "bbbbbbbbbbbb", "--operator", "Grace H."])
    assert result.exit_code == 0, result.output
    assert "replayed bbbbbbbbbbbb: queued 296-2" in result.output
    assert queued() == ["296-2"]
    log = build_operations_log(load_settings())
    actions = log.actions()
    log.close()
    assert [(a.operator, a.origin, a.action, a.letter_id, a.member_number) for a in actions] == [
        ("Grace H.", "cli", "replay", "bbbbbbbbbbbb", "296-2")
    ]


def test_discard_of_an_id_not_on_the_queue_exits_1_naming_it_and_drops_the_rest() -> None:
    dead_letter("cccccccccccc", b"{not json", "body is not JSON")
    result = runner.invoke(app, ["dead-letters", "discard", "cccccccccccc", "ffffffffffff"])
    assert result.exit_code == 1, result.output
    assert "discarded cccccccccccc (no member)" in result.output
    assert "no dead letter ffffffffffff" in result.output
    assert "Dead letters: 0" in runner.invoke(app, ["status"]).output


def test_replay_needs_ids_or_all() -> None:
    result = runner.invoke(app, ["dead-letters", "replay"])
    assert result.exit_code == 2
    assert "name the letters (their ids) or say --all" in result.output


def test_status_counts_the_dead_letters_waiting() -> None:
    dead_letter("dddddddddddd", b"{not json", "body is not JSON")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "Dead letters: 1 (ct-sync dead-letters list)" in result.output

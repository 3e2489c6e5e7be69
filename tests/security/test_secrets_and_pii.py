"""The API key never leaves memory, and members' personal data stays where it must (Siebel, CrowdTwist payloads):
a demo and a failing run are scanned everywhere they leave traces — logs, emails, ledger, metrics, files."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from config import Settings, load_settings
from config.logging import configure_logging
from sandbox.servers import SandboxServer
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.bootstrap import build_worker
from sync_worker.cli.demo import run_demo
from sync_worker.core.messages import MemberEvent
from sync_worker.queue.publisher import build_publisher
from tests.alerts.conftest import free_port
from tests.builders import PROGRAM, siebel_member
from tests.integration.helpers import eventually

API_KEY = "sk-live-7f3c9a1e5b2d4c6f8a0b"
PERSONAL = ["Gwendolyn", "Featherstonehaugh", "gwen.f@private-mail.example"]


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(level="DEBUG", json=True, stream=stream)
    yield stream
    root.handlers[:], root.level = handlers, level
    structlog.reset_defaults()


def _files_under(directory: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def test_a_failing_run_leaks_neither_the_key_nor_personal_data(tmp_path: Path, logs: io.StringIO) -> None:
    with SandboxServer() as sandbox:
        sandbox.state.set_faults(down=True)
        settings = Settings(
            data_dir=tmp_path,
            crowdtwist={"base_url": sandbox.url, "api_key": API_KEY, "retry_attempts": 2, "auth": "query"},
            siebel={"program_id": PROGRAM},
            worker={"retry_budget": "1s", "breaker_threshold": 100},
            metrics={"port": free_port()},
        )
        store = SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel)
        store.upsert_member(siebel_member(**{"Member Number": "296-1", "First Name": PERSONAL[0],
                                             "Last Name": PERSONAL[1], "Email Address": PERSONAL[2]}))  # fmt: skip
        store.upsert_member(siebel_member(**{"Member Number": "296-2", "First Name": PERSONAL[0] + "😀",
                                             "Last Name": PERSONAL[1]}))  # fmt: skip
        publisher = build_publisher(settings)
        publisher.publish_many(MemberEvent(event_type="enroll", member_number=n) for n in ("296-1", "296-2"))
        publisher.close()
        worker = build_worker(settings)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            eventually(lambda: (store.document("296-1") or {}).get("CT Sync Status") == "CT Failure", timeout=60)
            eventually(lambda: (store.document("296-2") or {}).get("CT Sync Status") == "Data Error", timeout=30)
            metrics = httpx.get(f"http://127.0.0.1:{settings.metrics.port}/metrics").text
        finally:
            worker.stop()
            thread.join(30)
            worker.close()
    log_text = logs.getvalue()
    assert "crowdtwist_retry" in log_text, "the run did not fail the way this test needs"
    traces = {"logs": log_text, "metrics": metrics}
    traces.update({str(path): data.decode("utf-8", "replace") for path, data in _files_under(tmp_path).items()})
    for where, text in traces.items():
        assert API_KEY not in text, f"the API key leaked into {where}"
    for where in ["logs", "metrics", *[w for w in traces if w.endswith((".eml", "ledger.sqlite"))]]:
        for value in PERSONAL:
            assert value not in traces[where], f"personal data leaked into {where}"
    assert any(where.endswith(".eml") for where in traces), "no alert email was written"


def test_the_demo_leaks_neither_the_key_nor_personal_data_into_logs_or_alerts(
    tmp_path: Path, logs: io.StringIO
) -> None:
    report = run_demo(load_settings(data_dir=tmp_path))
    outputs = {"logs": logs.getvalue()}
    outputs.update({str(path): path.read_text() for path in report.emails})
    outputs.update({str(p): d.decode("utf-8", "replace") for p, d in _files_under(report.data_dir).items()})
    for where, text in outputs.items():
        assert "demo-api-key-not-secret" not in text, f"the demo's API key leaked into {where}"
    for where in ["logs", *map(str, report.emails)]:
        for personal in ("Garcia", "maria.garcia@example.com", "O’Brien", "j.smith@example.com"):
            assert personal not in outputs[where], f"personal data leaked into {where}"

"""Outages around a real `ct-sync worker` process on RabbitMQ, with a real SMTP server (aiosmtpd) for its alerts:
CrowdTwist down for longer than the in-process retries (and back: how soon syncing resumes), and the SMTP server
down. Each test prints what it counted.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from sync_worker.ledger.operations import breaker_events
from tests.alerts.conftest import SmtpServer, free_port
from tests.builders import siebel_member
from tests.integration.helpers import eventually
from tests.integration.worker_process import CT_SYNC, Run, stop

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def _alerting(smtp_port: int) -> dict[str, str]:
    return {
        "CTSYNC_ALERTS__TO": "admins@example.com",
        "CTSYNC_ALERTS__SMTP_HOST": "127.0.0.1",
        "CTSYNC_ALERTS__SMTP_PORT": str(smtp_port),
        "CTSYNC_METRICS__PORT": str(free_port()),
    }


def test_a_crowdtwist_outage_opens_the_breaker_alerts_once_and_everyone_syncs_after_it(run: Run) -> None:
    smtp = SmtpServer(free_port()).start()
    try:
        run.sandbox.state.set_faults(down=True)
        numbers = run.enroll(12)
        worker = run.start_worker(
            **_alerting(smtp.port),
            # Two at a time, so that few calls are in flight when the breaker opens. While it is open, each probe
            # takes the next member in the queue; a member meets its spent budget once the probes come round to it
            # again (about 2 s per member in the queue).
            CTSYNC_WORKER__CONCURRENCY="2",
            CTSYNC_WORKER__PREFETCH="4",
            CTSYNC_CROWDTWIST__RETRY_ATTEMPTS="1",
            CTSYNC_WORKER__BREAKER_THRESHOLD="3",
            CTSYNC_WORKER__BREAKER_MAX_BACKOFF="2s",
            # A budget shorter than the outage: some members end CT Failure before CrowdTwist is back.
            CTSYNC_WORKER__RETRY_BUDGET="3s",
            CTSYNC_WORKER__RETRY_FIRST_DELAY="500ms",
        )
        failed_during_outage = set[str]()

        def someone_failed() -> bool:
            failed_during_outage.update(
                d["Member Number"] for d in run.store.documents() if d.get("CT Sync Status") == "CT Failure"
            )
            return bool(failed_during_outage)

        eventually(lambda: any("unreachable" in subject for subject in smtp.inbox.subjects), timeout=60)
        calls_before_the_breaker_opened = run.sandbox.state.stats()["total_calls"]
        down_since = time.monotonic()
        eventually(someone_failed, timeout=60)
        calls_while_down = run.sandbox.state.stats()["total_calls"]
        seconds_down = time.monotonic() - down_since
        run.sandbox.state.set_faults(down=False)
        eventually(lambda: run.synced() == len(numbers), timeout=120)  # no resubmit by hand
        eventually(lambda: any("reachable again" in subject for subject in smtp.inbox.subjects), timeout=30)
        assert stop(worker) == 0
        subjects = list(smtp.inbox.subjects)
    finally:
        smtp.stop()
    outage = [subject for subject in subjects if "unreachable" in subject]
    recovery = [subject for subject in subjects if "reachable again" in subject]
    stats = run.sandbox.state.stats()
    print(f"{len(failed_during_outage)} member(s) CT Failure during the outage; synced {run.synced()}/{len(numbers)} "
          f"after it; calls {calls_before_the_breaker_opened} until the breaker opened, then "
          f"{calls_while_down - calls_before_the_breaker_opened} more "
          f"over {seconds_down:.1f} s; outage emails {len(outage)}, recovery {len(recovery)}; "
          f"creates {stats['creates']}")  # fmt: skip
    assert (len(outage), len(recovery)) == (1, 1)
    assert calls_before_the_breaker_opened < len(numbers), "the breaker did not pause syncing"
    # While open, the breaker lets one probe through every few seconds; 40 members retried would call far more.
    assert calls_while_down - calls_before_the_breaker_opened < seconds_down
    assert stats["max_creates_per_third_party_id"] == 1
    assert run.queue_depth() == 0


def test_smtp_down_leaves_syncing_alone_and_the_alert_arrives_when_it_returns(run: Run) -> None:
    port = free_port()  # nothing listens here yet
    run.store.upsert_member(siebel_member(**{"Member Number": "296-bad", "Last Name": ""}))
    numbers = run.enroll(50)
    run.enroll_existing(["296-bad"])
    worker = run.start_worker(**_alerting(port))
    eventually(lambda: run.synced() == len(numbers), timeout=60)
    eventually(lambda: (run.store.document("296-bad") or {}).get("CT Sync Status") == "Data Error", timeout=30)
    eventually(lambda: "alert_send_failed" in run.log.read_text(), timeout=30)
    smtp = SmtpServer(port).start()
    try:
        eventually(lambda: len(smtp.inbox.messages) == 1, timeout=30)  # the dispatcher's next retry, 5 s later
        digest = smtp.inbox.messages[0]
    finally:
        smtp.stop()
    assert stop(worker) == 0
    body = digest.get_payload(decode=True).decode()
    print(f"synced {run.synced()}/{len(numbers)} with SMTP down; delivered later: {digest['Subject']!r}")
    assert "296-bad" in body
    assert "Data Error" in body


def test_after_an_outage_syncing_resumes_at_the_first_probe_and_probes_are_never_more_than_the_cap_apart(
    run: Run,
) -> None:
    """CrowdTwist down, then back: the worker records each probe it schedules (status shows it), each at most the
    configured cap after the failure before it, and every member ends Synced. Prints the seconds from CrowdTwist's
    return to the first sync (bounded by the cap, plus a probe and a sync)."""
    cap = 2.0
    run.sandbox.state.set_faults(down=True)
    numbers = run.enroll(10)
    worker = run.start_worker(
        CTSYNC_WORKER__CONCURRENCY="2",
        CTSYNC_WORKER__PREFETCH="4",  # members keep waiting while the breaker is open
        CTSYNC_CROWDTWIST__RETRY_ATTEMPTS="1",  # one call per attempt: a probe is one call
        CTSYNC_WORKER__BREAKER_THRESHOLD="3",
        CTSYNC_WORKER__BREAKER_MAX_BACKOFF=f"{cap:.0f}s",
    )
    eventually(lambda: "breaker_opened" in run.log.read_text(), timeout=60)
    calls_at_open, opened = run.sandbox.state.stats()["total_calls"], time.monotonic()
    status: dict[str, Any] = {}

    def paused_in_status() -> bool:
        answer = subprocess.run(
            [CT_SYNC, "status", "--json"], env=run.env, capture_output=True, text=True, timeout=60, check=True
        )
        status.update(json.loads(answer.stdout))
        return any(b["state"] == "open" and b["next_probe_at"] for b in status["breakers"])

    eventually(paused_in_status, timeout=60)  # `ct-sync status`, another process, reads it from the ledger
    eventually(lambda: len(scheduled_probes(run)) >= 4, timeout=60)  # a few probes fail
    calls_while_down, seconds_down = run.sandbox.state.stats()["total_calls"] - calls_at_open, time.monotonic() - opened
    run.sandbox.state.set_faults(down=False)
    back = time.monotonic()
    eventually(lambda: run.synced() > 0, timeout=60)
    resumed_after = time.monotonic() - back
    eventually(lambda: run.synced() == len(numbers), timeout=120)
    assert stop(worker) == 0
    probes = scheduled_probes(run)
    print(f"syncing resumed {resumed_after:.1f} s after CrowdTwist's return (cap {cap:.0f} s); {len(probes)} probe(s) "
          f"scheduled; {calls_while_down} call(s) in {seconds_down:.1f} s down; breaker in status: "
          f"{[b for b in status['breakers'] if b['state'] == 'open']}")  # fmt: skip
    assert all(timedelta(0) < next_probe_at - at <= timedelta(seconds=cap) for at, next_probe_at in probes)
    # One probe at a time, each at least half the cap after the failure before it: CrowdTwist is not hammered.
    assert calls_while_down <= seconds_down / (cap / 2) + 2
    assert run.sandbox.state.stats()["max_creates_per_third_party_id"] == 1


def scheduled_probes(run: Run) -> list[tuple[datetime, datetime]]:
    """(recorded at, next probe at) of each probe the worker scheduled, from the ledger, oldest first."""
    engine = create_engine(f"sqlite:///{run.log.parent / 'ledger.sqlite'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(breaker_events.c.at, breaker_events.c.next_probe_at)
                .where(breaker_events.c.event == "probe_scheduled")
                .order_by(breaker_events.c.id)
            ).all()
    except OperationalError:  # the table is not made yet
        return []
    finally:
        engine.dispose()
    return [(at, next_probe_at) for at, next_probe_at in rows]

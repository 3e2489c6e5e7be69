"""Our own infrastructure down without a storm (issue 29): a real `ct-sync worker` on RabbitMQ whose PostgreSQL ledger
becomes unreachable mid-run (its connections go through a TCP proxy the test cuts) and comes back. The test prints
what it counted: warnings in the worker's log, connections tried while the ledger was away, CrowdTwist's updates per
member, the emails."""

from __future__ import annotations

import email
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sync_worker.core.messages import MemberEvent
from sync_worker.ledger.sql import SqlLedger
from tests.builders import siebel_member
from tests.integration.helpers import eventually
from tests.integration.proxy import SilenceableProxy
from tests.integration.worker_process import Run, stop

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]

GROUP = 60  # members in each of the three groups
# Another test's broker restart on a shared RabbitMQ is no warning about the ledger.
NOT_THE_LEDGER = {"broker_connection_lost"}


def _put(run: Run, number: str, **fields: str) -> None:
    document = {"Id": f"1-{number}", "Member Number": number, "Email Address": f"{number}@example.com", **fields}
    run.store.upsert_member(siebel_member(**document))


def _log(log: Path, *, since: int) -> list[dict[str, Any]]:
    lines = []
    for text in log.read_text().splitlines()[since:]:
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue  # a line a library printed on its own
    return lines


def _subjects(run: Run) -> list[str]:
    """The alerts the worker sent (no SMTP server set: its outbox folder)."""
    return [str(email.message_from_bytes(mail.read_bytes())["Subject"]) for mail in run.outbox.glob("*.eml")]


def test_a_ledger_outage_pauses_syncing_says_so_once_each_way_and_resends_crowdtwist_nothing(
    run: Run, postgres_database: str
) -> None:
    unchanged, changed, new = ([f"296-{group}{n:04d}" for n in range(GROUP)] for group in (1, 2, 3))
    with SilenceableProxy(("127.0.0.1", 5432)) as proxy:
        settings = {
            "CTSYNC_LEDGER__URL": postgres_database.replace(":5432/", f":{proxy.port}/"),
            "CTSYNC_WORKER__CONCURRENCY": "4",
            "CTSYNC_WORKER__RETRY_FIRST_DELAY": "1s",  # members retried in 2 s rather than 30 s
            "CTSYNC_WORKER__OUTAGE_ALERT_AFTER": "2s",
        }
        # Given CrowdTwist holds the first two groups (a first worker synced them) …
        for number in unchanged + changed:
            _put(run, number)
        run.enroll_existing(unchanged + changed)
        first = run.start_worker(**settings)
        eventually(lambda: run.synced() == 2 * GROUP, timeout=120)
        assert stop(first) == 0
        log_from = len(run.log.read_text().splitlines())

        # … when Siebel changes the second group and enrolls a third, and an event of each group comes in turn …
        for number in changed:
            _put(run, number, **{"Last Name": "Changed"})
        for number in new:
            _put(run, number)
        run.sandbox.state.reset_counters()
        run.sandbox.state.set_faults(latency=0.1)  # CrowdTwist takes its time: the run lasts through the outage
        run_started = datetime.now(UTC)
        kinds = ("update", "update", "enroll")
        run.publish(
            [
                MemberEvent(event_type=kind, member_number=number, source="poll")
                for triple in zip(unchanged, changed, new, strict=True)
                for kind, number in zip(kinds, triple, strict=True)
            ]
        )
        worker = run.start_worker(**settings)
        # … and the ledger becomes unreachable mid-run, for longer than the alert's delay …
        eventually(lambda: run.sandbox.state.stats()["total_calls"] >= 10, timeout=60)
        proxy.cut()
        calls_at_cut = run.sandbox.state.stats()["total_calls"]
        eventually(lambda: any("ledger database unreachable" in subject for subject in _subjects(run)), timeout=60)
        eventually(lambda: proxy.refused >= 2, timeout=60)  # probes tried it, and failed
        calls_while_down = run.sandbox.state.stats()["total_calls"] - calls_at_cut
        refused_while_down = proxy.refused
        proxy.restore()

        # … then every event ends with its outcome written and recorded.
        ledger = SqlLedger(postgres_database)
        try:

            def recorded(number: str) -> bool:
                rows = ledger.history(number, limit=10)
                return any(row.outcome in ("Synced", "Unchanged") and row.at >= run_started for row in rows)

            eventually(lambda: all(recorded(number) for number in unchanged + changed + new), timeout=180)
        finally:
            ledger.close()
        eventually(lambda: any("ledger database reachable again" in subject for subject in _subjects(run)), timeout=30)
        assert stop(worker) == 0
    lines = _log(run.log, since=log_from)
    warnings = Counter(
        line["event"]
        for line in lines
        if line.get("level") in ("warning", "error") and line["event"] not in NOT_THE_LEDGER
    )
    events = Counter(line["event"] for line in lines)
    stats = run.sandbox.state.stats()
    updates = Counter(stats["updates_per_third_party_id"])
    extra = sum(updates[n] for n in unchanged + new) + sum(max(updates[n] - 1, 0) for n in changed)
    documents = {document["Member Number"]: document for document in run.store.documents()}
    subjects = _subjects(run)
    print(
        f"warnings {sum(warnings.values())} {dict(warnings)}; connections tried while down {refused_while_down}; "
        f"CrowdTwist calls while down {calls_while_down} (in flight at the cut); updates {stats['updates']} for "
        f"{GROUP} changed members (extra {extra}); creates {stats['creates']} (most for one member "
        f"{stats['max_creates_per_third_party_id']}); emails {subjects}"
    )
    assert (events["ledger_unavailable"], events["ledger_available_again"]) == (1, 1)
    assert sum(warnings.values()) <= 4  # down, still down (alerted), the lock session lost, and little else
    assert extra == 0  # nothing CrowdTwist already had was sent again
    assert all(updates[number] == 1 for number in changed)
    assert stats["creates"] == GROUP
    assert stats["max_creates_per_third_party_id"] == 1
    assert all(documents[number].get("CT Sync Status") == "Synced" for number in unchanged + changed + new)
    assert all((run.sandbox.state.user(number) or {}).get("last_name") == "Changed" for number in changed)
    assert run.queue_depth() == 0
    assert run.dead_letters() == 0
    assert sum("unreachable" in subject for subject in subjects) == 1
    assert sum("reachable again" in subject for subject in subjects) == 1

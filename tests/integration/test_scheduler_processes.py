"""Two `ct-sync scheduler` processes (two hosts, as far as they can tell) on one PostgreSQL ledger: one leads, the
other stands by; a run missed while both were down is started once, by one of them; when the leader is stopped
(SIGTERM) the other takes over at once and starts nothing again."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync_worker.ledger.runs import RunLedger
from tests.integration.helpers import eventually
from tests.integration.worker_process import CT_SYNC

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


class Scheduler:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as handle:  # the child keeps its own descriptor
            self.process = subprocess.Popen([CT_SYNC, "scheduler"], env=env, stdout=handle, stderr=subprocess.STDOUT)

    def said(self, event: str) -> bool:
        return f'"event": "{event}"' in self.log.read_text()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def environment(tmp_path: Path, postgres_database: str) -> dict[str, str]:
    config = tmp_path / "ct-sync.toml"
    config.write_text('[jobs.nightly-poll]\nkind = "poll"\nschedule = "0 2 * * *"\n')
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith("CTSYNC_")},
        "CTSYNC_CONFIG": str(config),
        "CTSYNC_DATA_DIR": str(tmp_path / "data"),
        "CTSYNC_LEDGER__URL": postgres_database,
        "CTSYNC_SCHEDULER__LEASE": "5s",
    }


@pytest.fixture
def ledger(environment: dict[str, str]) -> Iterator[RunLedger]:
    runs = RunLedger(environment["CTSYNC_LEDGER__URL"])
    yield runs
    runs.close()


def test_two_schedulers_start_a_missed_run_once_and_the_standby_takes_over_without_repeating_it(
    environment: dict[str, str], ledger: RunLedger, tmp_path: Path
) -> None:
    # Both schedulers were down through at least one 02:00: the nightly poll is due the moment they are back.
    ledger.advance_schedule("nightly-poll", expected=None, to=datetime.now(UTC) - timedelta(days=2))
    schedulers = [Scheduler(environment, tmp_path / f"scheduler-{n}.log") for n in (1, 2)]
    try:
        eventually(lambda: all(s.said("scheduler_leading") or s.said("scheduler_standby") for s in schedulers), 60)
        (leader,) = [s for s in schedulers if s.said("scheduler_leading")]
        (standby,) = [s for s in schedulers if s is not leader]
        eventually(lambda: [(r.run_id, r.status) for r in ledger.runs()] == [("nightly-poll.1", "Success")], 60)
        assert leader.stop() == 0
        eventually(lambda: standby.said("scheduler_leading"), 60)  # the lease was handed back: no waiting it out
        assert standby.stop() == 0
    finally:
        for scheduler in schedulers:
            if scheduler.process.poll() is None:
                scheduler.process.kill()
                scheduler.process.wait()
    assert [row.run_id for row in ledger.runs()] == ["nightly-poll.1"]
    assert leader.said("scheduler_stopped")

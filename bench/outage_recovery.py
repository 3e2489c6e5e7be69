"""Recovery after a CrowdTwist outage (issue 29): how long after CrowdTwist comes back the worker syncs again.

A real `ct-sync worker` on RabbitMQ, at its default settings, with members queued; the CrowdTwist sandbox goes down
before the worker starts, stays down `--down` seconds after the breaker opened, then comes back. Measured from
outside: the seconds from CrowdTwist's return to the first member written back Synced, the CrowdTwist calls the
worker spent while it was down (its probes), and the seconds until every member is Synced.

Usage: python -m bench.outage_recovery [--down 240] [--members 20] [--setting CTSYNC_X=Y …]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from kombu.connection import Connection

from bench.harness import RABBITMQ_URL
from config import load_settings
from sandbox.servers import SandboxServer
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.queue.topology import QueueTopology
from tests.integration.worker_process import Run, ct_sync_environment, stop


def _wait(condition: object, *, timeout: float, every: float = 0.05) -> float:
    """Seconds until `condition()` held; raises after `timeout`."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise TimeoutError("condition not met in time")
        time.sleep(every)
    return time.monotonic() - started


def measure(*, down: float, members: int, settings: dict[str, str]) -> dict[str, object]:
    queue = f"bench-outage-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="ct-sync-outage-") as root, SandboxServer() as sandbox:
        data_dir = Path(root)
        env = ct_sync_environment(data_dir, RABBITMQ_URL, queue, CTSYNC_CROWDTWIST__BASE_URL=sandbox.url, **settings)
        config = load_settings(data_dir=data_dir)
        store = SqliteMemberStore(config.siebel_sqlite_path, config.siebel)
        topology = QueueTopology.named(queue)
        run = Run(env, store, sandbox, topology, data_dir / "worker.log", RABBITMQ_URL)
        try:
            sandbox.state.set_faults(down=True)
            numbers = run.enroll(members)
            worker = run.start_worker()
            _wait(lambda: "breaker_opened" in run.log.read_text(), timeout=120, every=0.2)
            calls_at_open = sandbox.state.stats()["total_calls"]
            time.sleep(down)  # the outage itself: nothing to wait for
            calls_while_down = sandbox.state.stats()["total_calls"] - calls_at_open
            sandbox.state.set_faults(down=False)
            first_sync = _wait(lambda: run.synced() > 0, timeout=900)
            all_synced = _wait(lambda: run.synced() == len(numbers), timeout=900) + first_sync
            stop(worker)
            probes = [line for line in run.log.read_text().splitlines() if "crowdtwist_probe_scheduled" in line]
            return {
                "down_s_after_open": down,
                "members": members,
                "calls_while_down": calls_while_down,
                "calls_per_minute_while_down": round(calls_while_down * 60 / down, 1),
                "seconds_from_return_to_first_sync": round(first_sync, 1),
                "seconds_from_return_to_all_synced": round(all_synced, 1),
                "probe_schedule_lines": len(probes),
            }
        finally:
            run.kill_leftover_workers()
            with Connection(RABBITMQ_URL) as connection:
                topology.delete(connection)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--down", type=float, default=240.0, help="seconds CrowdTwist stays down after the breaker opened"
    )
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--setting", action="append", default=[], help="CTSYNC_NAME=value for the worker")
    options = parser.parse_args()
    settings = dict(item.split("=", 1) for item in options.setting)
    print(json.dumps(measure(down=options.down, members=options.members, settings=settings), indent=2))


if __name__ == "__main__":
    main()

"""Many workers (issue 21): how throughput scales with worker processes, and how close they run to a shared budget.

    scaling   CrowdTwist at 100 ms, no budget in the way: 1, 2 and 4 `ct-sync worker` processes on one RabbitMQ
              queue, a shared PostgreSQL ledger (its member locks), 4 syncs in flight each: members/s, the ratio
              to one process, Siebel requests per member, CPU ms per member
    budget    CrowdTwist at 100 ms and 10,000 calls/min, ct-sync at its default settings (a 0.75 share), one budget
              shared through Redis: 1 and 4 processes, the calls/s they reach against the 125/s they may, and 429s

Usage: python -m bench.scale_out [--size smoke|full] [--runs 3]   (results JSON in bench/results/)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import (
    CT_SYNC,
    RABBITMQ_URL,
    Stage,
    dump,
    free_port,
    postgres_database,
    run_worker,
    sandbox_control,
    sandbox_process,
    sandbox_stats,
    summarise,
)
from bench.run import enroll_events

SIZES = {"smoke": {"scaling": 40, "budget_seconds": 3}, "full": {"scaling": 4000, "budget_seconds": 30}}
REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT, SHARE = 10_000, 0.75


@contextmanager
def backlog(root: Path, sandbox: str, *, members: int, **settings: str) -> Iterator[tuple[Stage, dict[str, str]]]:
    """`members` enrolls queued on RabbitMQ, a fresh PostgreSQL ledger, and the workers' environment with `settings`."""
    stage = Stage.fresh(root, broker_url=RABBITMQ_URL)
    try:
        with postgres_database() as ledger_url:
            stage.publish(enroll_events(stage.seed(members)))
            yield stage, stage.env(sandbox, CTSYNC_LEDGER__URL=ledger_url, **settings)
    finally:
        stage.cleanup()


def scaling(root: Path, sandbox: str, *, members: int, processes: int) -> dict[str, float]:
    sandbox_control(sandbox, latency=0.1)
    with backlog(
        root,
        sandbox,
        members=members,
        CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE="10000000",  # far above: latency, not the budget, limits
        CTSYNC_WORKER__CONCURRENCY="4",
    ) as (stage, env):
        ports = [free_port() for _ in range(processes)]
        measured = run_worker([CT_SYNC, "worker"], env, stage=stage, members=members, sandbox_url=sandbox,
                              timeout=1800, processes=processes, metrics_ports=ports)  # fmt: skip
        return measured.as_dict()


def at_budget(root: Path, sandbox: str, *, seconds: float, processes: int) -> dict[str, float]:
    ours = LIMIT * SHARE / 60  # calls per second the budget share allows
    members = int(ours * (seconds + 10) * 2)  # more than warm-up and window take: the budget limits, not the backlog
    sandbox_control(sandbox, latency=0.1, rate_limit_per_minute=LIMIT)
    try:
        with backlog(
            root,
            sandbox,
            members=members,
            CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE=str(LIMIT),
            CTSYNC_CROWDTWIST__BUDGET_URL=REDIS_URL,
            CTSYNC_CROWDTWIST__BUDGET_KEY=f"bench-{uuid.uuid4().hex[:8]}",
        ) as (_stage, env):
            workers = [subprocess.Popen([CT_SYNC, "worker"], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL) for _ in range(processes)]  # fmt: skip
            try:
                while sandbox_stats(sandbox)["total_calls"] < ours * 5:  # past the start: sized and paced
                    time.sleep(0.05)
                first, started = sandbox_stats(sandbox), time.monotonic()
                time.sleep(seconds)
                last, elapsed = sandbox_stats(sandbox), time.monotonic() - started
            finally:
                for worker in workers:
                    worker.terminate()
                for worker in workers:
                    worker.wait(60)
    finally:
        sandbox_control(sandbox)
    achieved = (last["total_calls"] - first["total_calls"]) / elapsed
    return {
        "budget_calls_per_s": round(ours, 1),
        "achieved_calls_per_s": round(achieved, 2),
        "share_of_budget": round(achieved / ours, 3),
        "rate_limited": last["rate_limited"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    size = SIZES[arguments.size]
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join(sys.argv),
        "size": arguments.size,
    }
    with tempfile.TemporaryDirectory(prefix="ct-sync-bench-") as tmp, sandbox_process() as sandbox:
        root = Path(tmp)
        for processes in (1, 2, 4):
            results[f"scaling_{processes}_processes"] = summarise(
                [scaling(root, sandbox, members=size["scaling"], processes=processes) for _ in range(arguments.runs)]
            )
        one = results["scaling_1_processes"]["members_per_s"]["median"]
        results["scaling_ratio_4_to_1"] = round(results["scaling_4_processes"]["members_per_s"]["median"] / one, 2)
        for processes in (1, 4):
            results[f"budget_{processes}_processes"] = summarise(
                [
                    at_budget(root, sandbox, seconds=size["budget_seconds"], processes=processes)
                    for _ in range(arguments.runs)
                ]
            )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    dump(Path("bench/results") / f"{stamp}-scale-out-{arguments.size}.json", results)
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()

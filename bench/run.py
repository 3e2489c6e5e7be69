"""ct-sync benchmarks, one command: `python -m bench.run [--size smoke|full] [--runs 3]`.

Scenarios (issue #8): ceiling (vs. the naive baseline in the same run, and two worker processes), the same
comparison against a CrowdTwist with production latency, calls per event, budget, latency, memory.
Results: JSON in bench/results/, and a Markdown summary on stdout for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    CT_SYNC,
    RABBITMQ_URL,
    Measurement,
    Stage,
    dump,
    member_document,
    postgres_database,
    run_worker,
    sandbox_control,
    sandbox_process,
    sandbox_stats,
    summarise,
)
from sync_worker.core.messages import MemberEvent
from sync_worker.queue.publisher import KombuPublisher
from sync_worker.queue.topology import QueueTopology

SIZES = {
    "smoke": {
        "ceiling": 200,
        "naive": 50,
        "production": 100,
        "naive_production": 10,
        "calls": 50,
        "budget_seconds": 3,
        "latency_seconds": 3,
        "memory": 500,
    },
    "full": {
        "ceiling": 20_000,
        "naive": 2_000,
        "production": 3_000,
        "naive_production": 150,
        "calls": 1_000,
        "budget_seconds": 30,
        "latency_seconds": 20,
        "memory": 200_000,
    },
}
SCENARIOS = ("ceiling", "production", "calls", "budget", "latency", "memory")
WORKER = [CT_SYNC, "worker"]
NAIVE = [sys.executable, "-m", "bench.naive_worker"]


def enroll_events(numbers: list[str]) -> list[MemberEvent]:
    return [MemberEvent(event_type="enroll", member_number=number, source="poll") for number in numbers]


def ceiling(
    root: Path,
    sandbox: str,
    *,
    members: int,
    broker: str | None,
    command: list[str],
    processes: int = 1,
    ledger_url: str | None = None,
    rss_trace: list[tuple[int, float]] | None = None,
) -> dict[str, float]:
    """Zero-latency sandbox, no limit: how fast the worker process(es) drain a backlog of enrolls."""
    sandbox_control(sandbox)
    stage = Stage.fresh(root, broker_url=broker)
    try:
        stage.publish(enroll_events(stage.seed(members)))
        env = stage.env(sandbox, CTSYNC_WORKER__RETRY_BUDGET="10m", CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE="10000000")
        if ledger_url:
            env["CTSYNC_LEDGER__URL"] = ledger_url
        measured = run_worker(command, env, stage=stage, members=members, sandbox_url=sandbox, timeout=3600,
                              processes=processes, rss_trace=rss_trace)  # fmt: skip
        return measured.as_dict()
    finally:
        stage.cleanup()


def two_workers(root: Path, sandbox: str, *, members: int) -> dict[str, float]:
    """The ceiling with two `ct-sync worker` processes on one queue and a shared PostgreSQL ledger (scale-out)."""
    with postgres_database() as ledger_url:
        return ceiling(root, sandbox, members=members, broker=RABBITMQ_URL, command=WORKER, processes=2,
                       ledger_url=ledger_url)  # fmt: skip


def production(root: Path, sandbox: str, *, members: int, command: list[str]) -> dict[str, float]:
    """CrowdTwist as in production: 100 ms answers, 10,000 calls/min per program; ct-sync at its default settings
    (a 0.75 share of that budget). How fast each drains a backlog of enrolls when latency, not CPU, is the limit."""
    limit = 10_000
    sandbox_control(sandbox, latency=0.1, rate_limit_per_minute=limit)
    stage = Stage.fresh(root, broker_url=RABBITMQ_URL)
    try:
        stage.publish(enroll_events(stage.seed(members)))
        env = stage.env(sandbox, CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE=str(limit))
        return run_worker(command, env, stage=stage, members=members, sandbox_url=sandbox, timeout=1800).as_dict()
    finally:
        sandbox_control(sandbox)
        stage.cleanup()


def memory(root: Path, sandbox: str, *, members: int) -> dict[str, Any]:
    """A backlog ten times the ceiling's: peak RSS must stay where the ceiling's was (prefetch bounds it).
    Resident size is sampled once a second, so flat-or-growing is seen, not guessed from the peak."""
    trace: list[tuple[int, float]] = []
    measured: dict[str, Any] = ceiling(root, sandbox, members=members, broker=RABBITMQ_URL, command=WORKER,
                                       rss_trace=trace)  # fmt: skip
    for share in (0.1, 0.5, 0.9):
        reached = [mb for synced, mb in trace if synced >= members * share]
        measured[f"rss_mb_at_{int(share * 100)}pct"] = round(reached[0], 1) if reached else None
    return measured


def calls_per_event(root: Path, sandbox: str, *, members: int) -> dict[str, float]:
    """Members already in CrowdTwist; each is edited, then 10 update events arrive in a burst; then each is edited
    once more and one update event arrives (steady updates)."""
    sandbox_control(sandbox)
    stage = Stage.fresh(root, broker_url=RABBITMQ_URL)
    env = stage.env(sandbox, CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE="10000000")
    try:
        numbers = stage.seed(members)
        stage.publish(enroll_events(numbers))
        enrolls = run_worker(WORKER, env, stage=stage, members=members, sandbox_url=sandbox, timeout=600)
        burst = [MemberEvent(event_type="update", member_number=number) for _ in range(10) for number in numbers]
        updates = _edit_then_sync(stage, env, sandbox, members=members, last_name="Edited", events=burst)
        steady_updates = [MemberEvent(event_type="update", member_number=number) for number in numbers]
        steady = _edit_then_sync(stage, env, sandbox, members=members, last_name="Steady", events=steady_updates)
        return {
            "enroll_calls_per_member": round(enrolls.ct_calls / members, 3),
            "burst_events": len(burst),
            "burst_ct_calls": updates.ct_calls,
            "burst_calls_per_member": round(updates.ct_calls / members, 3),
            "steady_calls_per_update": round(steady.ct_calls / members, 3),
        }
    finally:
        stage.cleanup()


def budget(root: Path, sandbox: str, *, seconds: float) -> dict[str, float]:
    """CrowdTwist at 100 ms and 6,000/min, our share 0.75: how close to 4,500/min we run, and 429s received."""
    limit, share = 6000, 0.75
    ours = limit * share / 60  # calls per second
    members = int(ours * seconds * 1.5)  # more than the window can take: the budget, not the backlog, limits
    sandbox_control(sandbox, latency=0.1, rate_limit_per_minute=limit)
    stage = Stage.fresh(root, broker_url=RABBITMQ_URL)
    env = stage.env(sandbox, CTSYNC_CROWDTWIST__REQUESTS_PER_MINUTE=str(limit),
                    CTSYNC_CROWDTWIST__BUDGET_SHARE=str(share), CTSYNC_WORKER__CONCURRENCY="32")  # fmt: skip
    try:
        stage.publish(enroll_events(stage.seed(members)))
        process = subprocess.Popen(WORKER, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while sandbox_stats(sandbox)["total_calls"] == 0:
                time.sleep(0.05)
            start_calls, started = sandbox_stats(sandbox)["total_calls"], time.monotonic()
            time.sleep(seconds)
            stats = sandbox_stats(sandbox)
            elapsed = time.monotonic() - started
        finally:
            process.terminate()
            process.wait(60)
        achieved = (stats["total_calls"] - start_calls) / elapsed
        return {"budget_calls_per_s": ours, "achieved_calls_per_s": round(achieved, 2),
                "share_of_budget": round(achieved / ours, 3), "rate_limited": stats["rate_limited"]}  # fmt: skip
    finally:
        sandbox_control(sandbox)
        stage.cleanup()


def latency(root: Path, sandbox: str, *, seconds: float) -> dict[str, float]:
    """Events at half the budget, CrowdTwist at 100 ms: event emitted → outcome written, p50 and p99."""
    rate = 10_000 * 0.75 / 60 / 2  # events per second: half of our default budget
    members = int(rate * seconds)
    sandbox_control(sandbox, latency=0.1)
    stage = Stage.fresh(root, broker_url=RABBITMQ_URL)
    env = stage.env(sandbox)
    try:
        numbers = stage.seed(members)
        process = subprocess.Popen(WORKER, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        emitted: dict[str, datetime] = {}
        try:
            time.sleep(2)  # connected and idle, as in production
            publisher = KombuPublisher(stage.connection(), QueueTopology.named(stage.queue))
            started = time.monotonic()
            for index, number in enumerate(numbers):
                wait = started + index / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                event = MemberEvent(event_type="enroll", member_number=number)
                emitted[number] = event.emitted_at
                publisher.publish(event)
            publisher.close()
            deadline = time.monotonic() + 60
            while stage.synced() < members and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            process.terminate()
            process.wait(60)
        with sqlite3.connect(stage.data_dir / "siebel.sqlite") as db:
            written = dict(db.execute(
                "SELECT member_number, json_extract(document, '$.\"CT Sync Time\"') FROM members"
            ).fetchall())  # fmt: skip
        latencies = sorted(
            (datetime.fromisoformat(written[n].replace("Z", "+00:00")) - emitted[n]).total_seconds()
            for n in numbers if written.get(n)
        )  # fmt: skip
        return {"events": members, "events_per_s": round(rate, 1),
                "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
                "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)}  # fmt: skip
    finally:
        sandbox_control(sandbox)
        stage.cleanup()


def _edit_then_sync(stage: Stage, env: dict[str, str], sandbox: str, *, members: int, last_name: str,
                    events: list[MemberEvent]) -> Measurement:  # fmt: skip
    """The `members` seeded members edited in Siebel, then `events` published and synced; CrowdTwist calls
    counted anew."""
    stage.store.load_members([{**member_document(n), "Last Name": f"{last_name}{n}"} for n in range(members)])
    httpx.post(f"{sandbox}/_sandbox/reset-counters").raise_for_status()
    stage.publish(events)
    _clear_statuses(stage)
    return run_worker(WORKER, env, stage=stage, members=members, sandbox_url=sandbox, timeout=600)


def _clear_statuses(stage: Stage) -> None:
    """So 'every member written back' means written back by the run being measured."""
    with sqlite3.connect(stage.data_dir / "siebel.sqlite") as db:
        db.execute("UPDATE members SET document = json_set(document, '$.\"CT Sync Status\"', '')")


def _ratio(ours: dict[str, dict[str, float]], naive: dict[str, dict[str, float]]) -> float | None:
    """ct-sync's median members/s over the baseline's, both from this run."""
    baseline = naive["members_per_s"]["median"]
    return round(ours["members_per_s"]["median"] / baseline, 1) if baseline else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help=f"comma-separated scenarios, of: {','.join(SCENARIOS)} (default: all)")
    arguments = parser.parse_args()
    size = SIZES[arguments.size]
    wanted = set((arguments.only or ",".join(SCENARIOS)).split(","))
    if unknown := wanted - set(SCENARIOS):
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": " ".join(sys.argv),
        "size": arguments.size,
    }
    runs = arguments.runs
    with tempfile.TemporaryDirectory(prefix="ct-sync-bench-") as tmp, sandbox_process() as sandbox:
        root = Path(tmp)
        if "ceiling" in wanted:
            results["ceiling_rabbitmq"] = summarise(
                [ceiling(root, sandbox, members=size["ceiling"], broker=RABBITMQ_URL, command=WORKER)
                 for _ in range(runs)])  # fmt: skip
            results["ceiling_embedded"] = ceiling(root, sandbox, members=size["ceiling"], broker=None, command=WORKER)
            results["ceiling_two_workers"] = summarise(
                [two_workers(root, sandbox, members=size["ceiling"]) for _ in range(runs)]
            )
            results["naive_rabbitmq"] = summarise(
                [ceiling(root, sandbox, members=size["naive"], broker=RABBITMQ_URL, command=NAIVE)
                 for _ in range(runs)])  # fmt: skip
            results["ratio_to_naive"] = _ratio(results["ceiling_rabbitmq"], results["naive_rabbitmq"])
        if "production" in wanted:
            results["production"] = summarise(
                [production(root, sandbox, members=size["production"], command=WORKER) for _ in range(runs)]
            )
            results["naive_production"] = summarise(
                [production(root, sandbox, members=size["naive_production"], command=NAIVE) for _ in range(runs)]
            )
            results["production_ratio_to_naive"] = _ratio(results["production"], results["naive_production"])
        if "calls" in wanted:
            results["calls_per_event"] = calls_per_event(root, sandbox, members=size["calls"])
        if "budget" in wanted:
            results["budget"] = budget(root, sandbox, seconds=size["budget_seconds"])
        if "latency" in wanted:
            results["latency"] = latency(root, sandbox, seconds=size["latency_seconds"])
        if "memory" in wanted:
            results["memory"] = memory(root, sandbox, members=size["memory"])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    dump(Path("bench/results") / f"{stamp}-{arguments.size}.json", results)
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()

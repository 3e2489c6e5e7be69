"""CrowdTwist's real limit far below ct-sync's setting (issue 29): the real `ct-sync worker`, at its default settings
(10,000 calls/min × 0.75), drains a backlog of enrolls against the sandbox over HTTP limited to 600 calls/min.
Measured: the calls CrowdTwist answered, the share it answered 429, whether every member was synced, and the rate
the pacer settled at (the worker's own log: the limit it measured, its pace in the last summary line).

Usage: python -m bench.rate_limit [--members 300] [--limit 600] [--latency 0] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import (
    RABBITMQ_URL,
    Stage,
    median,
    run_worker,
    sandbox_control,
    sandbox_process,
)
from bench.run import WORKER, enroll_events


def measure(root: Path, sandbox: str, *, members: int, limit: int, latency: float) -> dict[str, Any]:
    """One run: a fresh queue of `members` enrolls, the sandbox limited to `limit` calls a minute."""
    sandbox_control(sandbox, latency=latency, rate_limit_per_minute=limit)
    stage = Stage.fresh(root, broker_url=RABBITMQ_URL)
    try:
        stage.publish(enroll_events(stage.seed(members)))
        measured = run_worker(WORKER, stage.env(sandbox), stage=stage, members=members, sandbox_url=sandbox,
                              timeout=600)  # fmt: skip
        events = [json.loads(line) for line in (stage.data_dir / "worker.log").read_text().splitlines()
                  if line.startswith("{")]  # fmt: skip
    finally:
        sandbox_control(sandbox)
        stage.cleanup()
    lowered = [event for event in events if event.get("event") == "crowdtwist_pace_lowered"]
    summaries = [event for event in events if event.get("event") == "worker_summary"]
    measured_limits = [
        event["measured_limit_per_minute"] for event in lowered if event.get("measured_limit_per_minute")
    ]
    return {
        "members_synced": stage.synced(),
        "seconds": round(measured.seconds, 1),
        "calls": measured.ct_calls,
        "answered_429": measured.rate_limited,
        "share_429": round(measured.rate_limited / measured.ct_calls, 4),
        "accepted_per_minute": round((measured.ct_calls - measured.rate_limited) / measured.seconds * 60),
        "pace_lowered": len(lowered),
        "measured_limit_per_minute": measured_limits[-1] if measured_limits else None,
        "settled_per_minute": summaries[-1].get("crowdtwist_pace_per_minute") if summaries else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--limit", type=int, default=600, help="the sandbox's calls per minute")
    parser.add_argument("--latency", type=float, default=0.0, help="the sandbox's answer time, seconds")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as root, sandbox_process() as sandbox:
        for _ in range(args.runs):
            runs.append(measure(Path(root), sandbox, members=args.members, limit=args.limit, latency=args.latency))
            print(json.dumps(runs[-1]))
    shares = [run["share_429"] for run in runs]
    print(
        f"{platform.machine()}, Python {platform.python_version()}: {args.members} members, CrowdTwist at "
        f"{args.limit}/min, {args.runs} runs: 429 share median {median(shares):.1%} (max {max(shares):.1%}), "
        f"settled at {[run['settled_per_minute'] for run in runs]}/min, limit measured "
        f"{[run['measured_limit_per_minute'] for run in runs]}/min"
    )


if __name__ == "__main__":
    main()

"""The benchmark suite at smoke size, to prove it runs: figures are printed, never asserted (speed lives in
docs/benchmarks.md, measured on purpose, not in a test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run as bench
from bench.harness import RABBITMQ_URL, sandbox_process

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def test_every_scenario_runs_at_smoke_size(rabbitmq_url: str, tmp_path: Path) -> None:
    assert rabbitmq_url == RABBITMQ_URL
    with sandbox_process() as sandbox:
        ceiling = bench.ceiling(tmp_path, sandbox, members=30, broker=RABBITMQ_URL, command=bench.WORKER)
        embedded = bench.ceiling(tmp_path, sandbox, members=30, broker=None, command=bench.WORKER)
        naive = bench.ceiling(tmp_path, sandbox, members=10, broker=RABBITMQ_URL, command=bench.NAIVE)
        calls = bench.calls_per_event(tmp_path, sandbox, members=10)
        budget = bench.budget(tmp_path, sandbox, seconds=1)
        latency = bench.latency(tmp_path, sandbox, seconds=1)
    print(ceiling, embedded, naive, calls, budget, latency)
    # Shape, not speed: each scenario produced its figures.
    assert ceiling["ct_calls_per_member"] == 1.0  # one create per enroll
    assert naive["ct_calls_per_member"] == 2.0  # look-up, then create
    assert calls["burst_events"] == 100
    assert {"share_of_budget", "rate_limited"} <= budget.keys()
    assert {"p50_ms", "p99_ms"} <= latency.keys()

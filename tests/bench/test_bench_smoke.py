"""The benchmark suite at smoke size, to prove it runs: figures are printed, never asserted (speed lives in
docs/benchmarks.md, measured on purpose, not in a test)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench import floors
from bench import run as bench
from bench.harness import RABBITMQ_URL, sandbox_process
from tests.unavailable import unavailable

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def test_every_scenario_runs_at_smoke_size(rabbitmq_url: str, postgres_url: str, tmp_path: Path) -> None:
    assert rabbitmq_url == RABBITMQ_URL
    with sandbox_process() as sandbox:
        ceiling = bench.ceiling(tmp_path, sandbox, members=30, broker=RABBITMQ_URL, command=bench.WORKER)
        embedded = bench.ceiling(tmp_path, sandbox, members=30, broker=None, command=bench.WORKER)
        two_workers = bench.two_workers(tmp_path, sandbox, members=30)
        naive = bench.ceiling(tmp_path, sandbox, members=10, broker=RABBITMQ_URL, command=bench.NAIVE)
        production = bench.production(tmp_path, sandbox, members=20, command=bench.WORKER)
        naive_production = bench.production(tmp_path, sandbox, members=4, command=bench.NAIVE)
        calls = bench.calls_per_event(tmp_path, sandbox, members=10)
        budget = bench.budget(tmp_path, sandbox, seconds=1)
        latency = bench.latency(tmp_path, sandbox, seconds=1)
        memory = bench.memory(tmp_path, sandbox, members=30)
    print(ceiling, embedded, two_workers, naive, production, naive_production, calls, budget, latency, memory)
    # Shape, not speed: each scenario produced its figures.
    assert ceiling["ct_calls_per_member"] == 1.0  # one create per enroll
    assert two_workers["ct_calls_per_member"] == 1.0  # two processes on one queue: still no member twice
    assert naive["ct_calls_per_member"] == 2.0  # look-up, then create
    assert production["ct_calls_per_member"] == 1.0
    assert naive_production["ct_calls_per_member"] == 2.0
    assert {"rss_mb_at_10pct", "rss_mb_at_90pct", "peak_rss_mb"} <= memory.keys()
    assert calls["burst_events"] == 100
    assert "steady_calls_per_update" in calls
    assert {"share_of_budget", "rate_limited"} <= budget.keys()
    assert {"p50_ms", "p99_ms"} <= latency.keys()


def test_the_rate_limit_benchmark_runs_at_smoke_size(rabbitmq_url: str, tmp_path: Path) -> None:
    from bench import rate_limit

    with sandbox_process() as sandbox:
        result = rate_limit.measure(tmp_path, sandbox, members=30, limit=600, latency=0.0)
    print(result)
    assert result["members_synced"] == 30
    assert {"calls", "answered_429", "share_429", "measured_limit_per_minute", "settled_per_minute"} <= result.keys()


def test_the_cpu_floors_are_measured_for_every_step_of_a_sync() -> None:
    costs = floors.measure(operations=20, repeats=1)
    print(costs)
    assert set(floors.ONE_SYNC) <= set(costs)
    assert all(cost > 0 for _, cost in costs.values())


def test_the_segment_export_benchmark_runs_at_smoke_size(tmp_path: Path) -> None:
    from bench import segment_export
    from tests.sshd import require_sshd

    require_sshd()
    result = segment_export.run(300, tmp_path)
    print(result)
    assert result["rows"] == 300  # every seeded member is one CrowdTwist knows
    assert {"export_rows_per_s", "ct_sync_upload_mb_per_s", "sftp_upload_mb_per_s", "upload_ratio", "peak_rss_mb"} <= (
        result.keys()
    )


def test_the_siebel_emulator_benchmark_runs_at_smoke_size() -> None:
    from bench import siebel_emulator

    result = siebel_emulator.measure(members=200, sample=20)
    print(result)
    assert set(result) == {"sync_members_per_s", "poll_members_per_s"}  # and the poll read all 200 (asserted inside)


def test_the_outage_recovery_benchmark_runs_at_smoke_size(rabbitmq_url: str) -> None:
    from bench import outage_recovery

    result = outage_recovery.measure(down=1.0, members=6, settings={})
    print(result)
    assert {"seconds_from_return_to_first_sync", "calls_while_down", "probe_schedule_lines"} <= result.keys()


def test_the_intake_benchmark_runs_at_smoke_size(rabbitmq_url: str) -> None:
    """wrk posts for a second to a real `ct-sync intake` on each queue; what it counted as accepted is on the queue."""
    from bench import intake_throughput

    if shutil.which("wrk") is None:
        unavailable("wrk is not installed (scripts/ensure-services installs it)")
    for broker in ("embedded", "rabbitmq"):
        result = intake_throughput.measure(
            intake_throughput._THIS, broker=broker, connections=2, seconds=1, profile=None
        )
        print(broker, result)
        assert result["nothing_lost_nothing_extra"], result

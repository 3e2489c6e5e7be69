"""Benchmark harness: a CrowdTwist sandbox in its own process, a seeded SQLite Siebel stand-in, a pre-loaded queue,
and the real `ct-sync worker` (or the naive baseline) as a subprocess, measured from outside.

What is measured: wall time from the worker's start until every member is written back, the worker's CPU seconds
and peak RSS (from /proc), and the CrowdTwist calls the sandbox counted. The queue is filled before the worker
starts, so the load generator is never part of the measured time.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kombu.connection import Connection

from config.settings import SiebelSettings
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.messages import MemberEvent
from sync_worker.queue.publisher import KombuPublisher
from sync_worker.queue.topology import QueueTopology

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
PROGRAM = "1-BENCH"
CT_SYNC = str(Path(sys.executable).with_name("ct-sync"))
_TICKS = os.sysconf("SC_CLK_TCK")


def _serve_sandbox(port_queue: Any, stop: Any) -> None:
    from sandbox.servers import SandboxServer

    with SandboxServer() as server:
        port_queue.put(server.port)
        stop.wait()


@contextmanager
def sandbox_process() -> Iterator[str]:
    """A CrowdTwist sandbox in its own process (its own GIL); yields its URL."""
    context = multiprocessing.get_context("spawn")
    port_queue, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve_sandbox, args=(port_queue, stop), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{port_queue.get(timeout=30)}"
    finally:
        stop.set()
        process.join(10)


def sandbox_control(url: str, **faults: Any) -> None:
    httpx.post(f"{url}/_sandbox/reset").raise_for_status()
    if faults:
        httpx.post(f"{url}/_sandbox/faults", json=faults).raise_for_status()


def sandbox_stats(url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{url}/_sandbox/stats").json()
    return stats


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def member_document(number: int) -> dict[str, str]:
    return {
        "Id": f"1-B{number}",
        "Member Number": f"900-{number:07d}",
        "Status": "Active",
        "Member Type": "Individual",
        "Program Id": PROGRAM,
        "First Name": "Bench",
        "Last Name": f"Member{number}",
        "Email Address": f"bench.{number}@example.com",
        "Date of Birth": "1980-01-01",
        "Primary Postal Code": "10001",
        "Primary Country Code": "US",
        "Updated": "2026-11-22T10:00:00Z",
    }


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one run's ledger (synced states left by another run would skip calls)."""
    import psycopg  # a development dependency, like the benchmarks

    name = f"ct_sync_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Stage:
    """One benchmark run's files and queue: a data directory and a queue of its own."""

    data_dir: Path
    queue: str
    broker_url: str | None  # None: the embedded queue

    @classmethod
    def fresh(cls, root: Path, *, broker_url: str | None) -> Stage:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        data_dir = root / name
        data_dir.mkdir(parents=True)
        return cls(data_dir, name, broker_url)

    @property
    def store(self) -> SqliteMemberStore:
        return SqliteMemberStore(self.data_dir / "siebel.sqlite", SiebelSettings())

    def env(self, sandbox_url: str, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CTSYNC_")}
        env.update(
            CTSYNC_DATA_DIR=str(self.data_dir),
            CTSYNC_BROKER__QUEUE=self.queue,
            CTSYNC_CROWDTWIST__BASE_URL=sandbox_url,
            CTSYNC_SIEBEL__PROGRAM_ID=PROGRAM,
        )
        if self.broker_url:
            env["CTSYNC_BROKER__URL"] = self.broker_url
        env.update(extra)
        return env

    def connection(self) -> Connection:
        if self.broker_url:
            return Connection(self.broker_url, transport_options={"confirm_publish": True})
        from config import Settings
        from sync_worker.queue.broker import open_broker

        return open_broker(Settings(data_dir=self.data_dir, broker={"url": None}))

    def seed(self, members: int) -> list[str]:
        documents = [member_document(number) for number in range(members)]
        self.store.load_members(documents)
        return [document["Member Number"] for document in documents]

    def publish(self, events: list[MemberEvent]) -> None:
        publisher = KombuPublisher(self.connection(), QueueTopology.named(self.queue))
        publisher.publish_many(events)
        publisher.close()

    def synced(self) -> int:
        with sqlite3.connect(self.data_dir / "siebel.sqlite") as db:
            row = db.execute(
                "SELECT count(*) FROM members WHERE json_extract(document, '$.\"CT Sync Status\"') = 'Synced'"
            ).fetchone()
        return int(row[0])

    def cleanup(self) -> None:
        if not self.broker_url:
            return
        with Connection(self.broker_url) as connection:
            QueueTopology.named(self.queue).delete(connection)


@dataclass
class Measurement:
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    members: int
    ct_calls: int
    rate_limited: int
    siebel_calls: int | None = None  # scraped from the workers' /metrics when they serve one

    @property
    def members_per_second(self) -> float:
        return self.members / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "seconds": round(self.seconds, 3),
            "members_per_s": round(self.members_per_second, 1),
            "cpu_s_per_1000": round(self.cpu_seconds / self.members * 1000, 3) if self.members else 0.0,
            "ct_calls_per_member": round(self.ct_calls / self.members, 3) if self.members else 0.0,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "rate_limited": self.rate_limited,
            **(
                {"siebel_calls_per_member": round(self.siebel_calls / self.members, 3)}
                if self.siebel_calls is not None and self.members
                else {}
            ),
        }


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss_mb(pid: int, field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_worker(
    command: list[str],
    env: dict[str, str],
    *,
    stage: Stage,
    members: int,
    sandbox_url: str,
    timeout: float,
    processes: int = 1,
    rss_trace: list[tuple[int, float]] | None = None,
    metrics_ports: list[int] | None = None,
) -> Measurement:
    """Start the worker (`processes` of them on one queue), wait until every member is written back, stop them;
    return what was measured (CPU summed over the processes, the largest peak RSS). With `rss_trace`, the
    resident size of the first process is appended to it once a second, as (members written back, MB). With
    `metrics_ports` (one per process), each serves /metrics there and its Siebel requests are counted."""
    log = (stage.data_dir / "worker.log").open("ab")
    started = time.monotonic()
    envs = [
        {**env, "CTSYNC_METRICS__PORT": str(metrics_ports[index])} if metrics_ports else env
        for index in range(processes)
    ]
    running = [subprocess.Popen(command, env=envs[i], stdout=log, stderr=subprocess.STDOUT) for i in range(processes)]
    try:
        deadline, traced = started + timeout, started
        while (synced := stage.synced()) < members:
            if time.monotonic() > deadline or any(process.poll() is not None for process in running):
                raise RuntimeError(f"only {synced} of {members} synced; see {stage.data_dir / 'worker.log'}")
            if rss_trace is not None and time.monotonic() - traced >= 1.0:
                traced = time.monotonic()
                rss_trace.append((synced, _rss_mb(running[0].pid, "VmRSS")))
            time.sleep(0.05)
        seconds = time.monotonic() - started
        cpu = sum(_cpu_seconds(process.pid) for process in running)
        rss = max(_rss_mb(process.pid, "VmHWM") for process in running)
        siebel = sum(_siebel_calls(port) for port in metrics_ports) if metrics_ports else None
    finally:
        for process in running:
            process.terminate()
        for process in running:
            process.wait(60)
        log.close()
    stats = sandbox_stats(sandbox_url)
    return Measurement(
        seconds, cpu, rss, members, int(stats["total_calls"]), int(stats["rate_limited"]), siebel_calls=siebel
    )


def _siebel_calls(port: int) -> int:
    """Requests the worker made to Siebel (its stand-in), from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("ct_sync_siebel_calls_total{")))  # fmt: skip


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def summarise(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Median, min and max of every figure over the runs."""
    return {
        key: {"median": median([run[key] for run in runs]), "min": min(run[key] for run in runs),
              "max": max(run[key] for run in runs)}
        for key in runs[0]
    }  # fmt: skip


def dump(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str))

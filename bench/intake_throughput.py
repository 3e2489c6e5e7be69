"""Intake throughput benchmark, one command:
`python -m bench.intake_throughput [--seconds 15] [--connections 16 64] [--brokers embedded rabbitmq]
[--baseline DIR] [--runs 1] [--log-level INFO] [--profile cpu|wall]`.

A real `ct-sync intake` process (a fresh data directory; on RabbitMQ a fresh queue) is loaded by `wrk` (Debian's
package) with a Lua script posting update events as Siebel's workflow does (Siebel field names, a different Member
Number each request) for `--seconds` at 2 threads and each `--connections`. Reported: events/s (requests answered
per second), p50/p99 latency as wrk measured it, non-2xx answers and socket errors, the intake's CPU per event
(from /proc), and the load average of the machine before and after. Afterwards the intake is stopped (SIGTERM:
requests in flight are answered first) and the queue is read: it must hold exactly as many messages as the intake
answered 202 (its own `/metrics` count, which includes answers to requests wrk gave up on when its time ran out),
each with a distinct event id: nothing lost, nothing extra.

With `--baseline DIR` (another version's code, e.g. `git archive main | tar -x -C DIR`), each run measures that code
too, in the same way, alternating with this one: before and after side by side in one run. `--profile cpu` samples the
intake with py-spy during each measurement (`pip install py-spy`) and prints the functions holding the GIL most;
`--profile wall` samples every thread, waiting included (where a request's time goes).
Results: `bench/results/intake-throughput.json`; the intake's log is kept beside it after a run with refusals or a
queue that disagrees (a broker restarted mid-run, say, which refuses the requests in flight and may still store some
of their events: more messages than 202s, at least once, never fewer).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from kombu.connection import Connection

from bench.harness import RABBITMQ_URL, free_port
from bench.profile import top_functions
from sync_worker.queue.topology import QueueTopology

THREADS = 2
_RUN_CT_SYNC = "import sys; from sync_worker.cli import main; sys.argv[0] = 'ct-sync'; sys.exit(main())"
_RESULTS = Path(__file__).parent / "results"
_THIS = Path(__file__).resolve().parent.parent

# One request per call of `request()`: an update event for member 296-<thread><counter>, so every event differs.
# `done()` prints wrk's figures as one JSON line (latencies in microseconds).
_LUA = r"""
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
local counter = 0
local headers = { ["Content-Type"] = "application/json" }
local template = '{"event": "update", "member": {"Id": "1-%s", "Member Number": "296-%s", "Status": "Active", '
  .. '"Member Type": "Individual", "Program Id": "1-PRG", "First Name": "Ann", "Last Name": "O\'Brien", '
  .. '"Middle Name": "M", "Email Address": "ann.%s@example.com", "Date of Birth": "1979-11-30", '
  .. '"Primary Postal Code": "10001", "Primary City": "New York", "Primary Country Code": "US", "M/F": "F", '
  .. '"Language": "en", "Updated": "2026-11-22T10:00:00Z"}}'
request = function()
  counter = counter + 1
  local key = string.format("%d%07d", id, counter)
  return wrk.format("POST", "/v1/member-events", headers, string.format(template, key, key, key))
end
function done(summary, latency, requests)
  io.write(string.format(
    '\nWRK-JSON {"requests": %d, "duration_us": %d, "non_2xx": %d, "connect_errors": %d, "read_errors": %d, '
    .. '"write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _self_time(raw: Path, *, limit: int = 30) -> list[tuple[float, str]]:
    """The share of samples in which each function was the one running (py-spy's raw format: stack, count)."""
    leaves: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        name, _, where = leaf.partition(" (")
        leaves[f"{name} ({where.rsplit('/', 1)[-1].rstrip(')')}" if where else name] += int(count)
    total = sum(leaves.values()) or 1
    return [(count * 100 / total, key) for key, count in leaves.most_common(limit)]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _answers_202(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = re.search(r'ct_sync_intake_answers_total\{status="202"\} ([0-9.e+]+)', text)
    return int(float(found.group(1))) if found else 0


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _event_id(stored: dict[str, Any]) -> str:
    """The event id of a message as kombu's virtual transport stores it (the body base64-encoded by default)."""
    body = stored["body"]
    if stored.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body)
    event_id: str = json.loads(body)["event_id"]
    return event_id


def _queued_event_ids(broker: str, data_dir: Path, topology: QueueTopology) -> list[str]:
    """Every event id on the work queue, read without consuming on the embedded queue, drained on RabbitMQ (the
    queue is the run's own and deleted afterwards)."""
    if broker == "embedded":
        with sqlite3.connect(data_dir / "queue.sqlite") as db:
            rows = db.execute(
                "SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id WHERE q.name = ?",
                (topology.work_queue.name,),
            ).fetchall()
        return [_event_id(json.loads(payload)) for (payload,) in rows]
    ids: list[str] = []
    with Connection(RABBITMQ_URL) as connection:
        expected = topology.depths(connection)[topology.work_queue.name]
        channel = connection.channel()
        channel.basic_qos(0, 1000, False)

        def take(message: Any) -> None:
            ids.append(json.loads(message.body)["event_id"])

        with connection.Consumer(topology.work_queue, channel=channel, no_ack=True, callbacks=[], on_message=take):
            while len(ids) < expected:
                connection.drain_events(timeout=10)
        channel.close()
    return ids


def measure(
    code: Path, *, broker: str, connections: int, seconds: int, profile: str | None, log_level: str = "INFO"
) -> dict[str, Any]:
    """One measurement of the intake under `code`: a fresh data directory and queue, wrk for `seconds`."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    queue = f"ct-sync-bench-{uuid.uuid4().hex[:10]}"
    topology = QueueTopology.named(queue)
    with tempfile.TemporaryDirectory(prefix="ct-sync-bench-intake-") as folder:
        data_dir = Path(folder)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("CTSYNC_")},
            "PYTHONPATH": str(code),  # ahead of the installed (editable) package: the code under test
            "CTSYNC_DATA_DIR": str(data_dir),
            "CTSYNC_BROKER__QUEUE": queue,
            "CTSYNC_INTAKE__PORT": str(port),
            "CTSYNC_LOG__LEVEL": log_level,
        }
        if broker == "rabbitmq":
            env["CTSYNC_BROKER__URL"] = RABBITMQ_URL
            with Connection(RABBITMQ_URL) as connection:
                topology.declare(connection)
        script = data_dir / "post.lua"
        script.write_text(_LUA)
        with (data_dir / "intake.log").open("wb") as log:  # the child keeps its own descriptor
            intake = subprocess.Popen(
                [sys.executable, "-c", _RUN_CT_SYNC, "intake"], env=env, cwd=code, stdout=log, stderr=log
            )
        try:
            deadline = time.monotonic() + 60
            while not _healthy(url):
                if intake.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the intake did not start: {(data_dir / 'intake.log').read_text()[-2000:]}")
                time.sleep(0.1)
            load_before = os.getloadavg()[0]
            cpu_before = _cpu_seconds(intake.pid)
            raw = data_dir / "profile.txt"
            spy, shares = None, []
            if profile:
                py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
                spy = subprocess.Popen(
                    [py_spy, "record", "--pid", str(intake.pid), "--duration", str(seconds), "--format", "raw",
                     "--gil" if profile == "cpu" else "--idle", "-o", str(raw)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            done = subprocess.run(
                [wrk, f"-t{THREADS}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            cpu = _cpu_seconds(intake.pid) - cpu_before
            load_after = os.getloadavg()[0]
            if spy is not None:
                spy.wait(60)
            figures = json.loads(done.stdout.rpartition("WRK-JSON ")[2].splitlines()[0])
            time.sleep(0.5)  # let the intake answer what wrk gave up on when its time ran out
            accepted = _answers_202(url)
            if spy is not None and raw.exists():
                _RESULTS.mkdir(exist_ok=True)
                kept = _RESULTS / f"intake-profile-{code.name}-{broker}-c{connections}-{profile}.txt"
                shutil.copy(raw, kept)
                shares = [f"{share:5.1f}%  {where}" for share, where in top_functions(raw, limit=80)]
                shares += ["self:"] + [f"{share:5.1f}%  {where}" for share, where in _self_time(raw)]
        finally:
            intake.send_signal(signal.SIGTERM)
            exit_code = intake.wait(60)
        try:
            ids = _queued_event_ids(broker, data_dir, topology)
        finally:
            if broker == "rabbitmq":
                with Connection(RABBITMQ_URL) as connection:
                    topology.delete(connection)
        if figures["non_2xx"] or len(ids) != accepted:  # kept for a look at what the intake said
            _RESULTS.mkdir(exist_ok=True)
            kept_log = _RESULTS / f"intake-{code.name}-{broker}-c{connections}-{int(time.time())}.log"
            shutil.copy(data_dir / "intake.log", kept_log)
            print(f"the intake's log: {kept_log}", flush=True)
    wall = figures["duration_us"] / 1e6
    answered = figures["requests"]
    result: dict[str, Any] = {
        "events_per_s": round(answered / wall, 1),
        "p50_ms": round(figures["p50_us"] / 1000, 1),
        "p99_ms": round(figures["p99_us"] / 1000, 1),
        "max_ms": round(figures["max_us"] / 1000, 1),
        "answered": answered,
        "non_2xx": figures["non_2xx"],
        "socket_errors": sum(figures[key] for key in ("connect_errors", "read_errors", "write_errors", "timeouts")),
        "intake_202": accepted,
        "queued": len(ids),
        "distinct_event_ids": len(set(ids)),
        "cpu_ms_per_event": round(cpu * 1000 / max(answered, 1), 3),
        "load_before": round(load_before, 2),
        "load_after": round(load_after, 2),
        "intake_exit_code": exit_code,
    }
    result["nothing_lost_nothing_extra"] = result["queued"] == result["distinct_event_ids"] == accepted
    if spy is not None:
        result["profile"] = shares
    return result


def main(arguments: argparse.Namespace) -> None:
    codes = {"this": _THIS}
    if arguments.baseline:
        codes = {"baseline": Path(arguments.baseline).resolve(), **codes}
    started = datetime.now(UTC)
    results: dict[str, list[dict[str, Any]]] = {}
    for broker in arguments.brokers:
        for connections in arguments.connections:
            for _ in range(arguments.runs):
                for label, code in codes.items():  # alternating, so a busy minute on the machine hits both
                    key = f"{label} {broker} -c{connections}"
                    result = measure(
                        code, broker=broker, connections=connections, seconds=arguments.seconds,
                        profile=arguments.profile, log_level=arguments.log_level,
                    )  # fmt: skip
                    results.setdefault(key, []).append(result)
                    profile = result.pop("profile", None)
                    print(key, json.dumps(result), flush=True)
                    if profile:
                        print("\n".join(profile), flush=True)
    medians = {
        key: {
            figure: statistics.median(run[figure] for run in runs)
            for figure in ("events_per_s", "p50_ms", "p99_ms", "non_2xx", "socket_errors", "cpu_ms_per_event")
        }
        | {"nothing_lost_nothing_extra": all(run["nothing_lost_nothing_extra"] for run in runs)}
        for key, runs in results.items()
    }
    report = {
        "command": " ".join(["python -m bench.intake_throughput", *sys.argv[1:]]),
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "wrk": f"-t{THREADS}, {arguments.seconds} s",
        "intake_log_level": arguments.log_level,
        "runs": results,
        "medians": medians,
    }
    _RESULTS.mkdir(exist_ok=True)
    (_RESULTS / "intake-throughput.json").write_text(json.dumps(report, indent=2) + "\n")
    print("| run | events/s | p50 ms | p99 ms | non-2xx | socket errors | CPU ms/event | queued = 202s, distinct |")
    print("|---|---|---|---|---|---|---|---|")
    for key, figures in medians.items():
        print(
            f"| {key} | {figures['events_per_s']:,.0f} | {figures['p50_ms']} | {figures['p99_ms']} | "
            f"{figures['non_2xx']} | {figures['socket_errors']} | {figures['cpu_ms_per_event']} | "
            f"{'yes' if figures['nothing_lost_nothing_extra'] else 'NO'} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--brokers", nargs="+", choices=["embedded", "rabbitmq"], default=["embedded", "rabbitmq"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--log-level", default="INFO", help="the intake's CTSYNC_LOG__LEVEL (INFO writes a line per accepted event)"
    )
    parser.add_argument("--baseline", help="another version's code, measured alternately in the same run")
    parser.add_argument(
        "--profile",
        choices=["cpu", "wall"],
        help="sample the intake with py-spy while loaded: the thread holding "
        "the GIL (cpu), or every thread, waiting included (wall)",
    )
    main(parser.parse_args())

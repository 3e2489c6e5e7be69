"""Siebel REST emulator benchmark, one command:
`python -m bench.siebel_emulator [--members 20000] [--sample 300] [--runs 3] [--baseline DIR]`.

What a worker asks of Siebel for each member, a look-up by Member Number and then the write-back PUT, from 16
threads (the worker's default concurrency), through the REST adapter over HTTP; and what a poll asks, every member
in keyset pages of 100. The emulator serves a stand-in of N members (one bulk load: they share one `Updated`
second, Siebel's unkind case) from a process of its own, as under `ct-sync sandbox`.

With `--baseline DIR` (another version's code, e.g. `git archive main | tar -x -C DIR`), each run measures that code
too, in a process of its own, alternating with this one: before and after in one run, medians and their ratio.
Results: `bench/results/siebel-emulator-N.json`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from config.settings import SiebelSettings
from sandbox.servers import SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter.rest_store import SiebelRestStore
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.member import SyncOutcome, SyncStatus

THREADS = 16
_BATCH = 10_000
_RESULTS = Path(__file__).parent / "results"
_USER, _PASSWORD = "CTSYNC", "bench-pw"


def seed(path: Path, members: int) -> None:
    store = SqliteMemberStore(path, SiebelSettings())
    for start in range(0, members, _BATCH):
        store.load_members(
            [
                {
                    "Id": f"1-{n:08d}",
                    "Member Number": f"296-{n:08d}",
                    "Status": "Active",
                    "Member Type": "Individual",
                    "Program Id": "1-PRG",
                    "First Name": "Ann",
                    "Last Name": "Lee",
                    "Email Address": f"ann.lee.{n}@example.com",
                }
                for n in range(start, min(start + _BATCH, members))
            ],
            at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
        )


def _serve(path: Path, ports: multiprocessing.Queue, stop: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    store = SqliteMemberStore(path, SiebelSettings())
    with SiebelEmulatorServer(SiebelEmulator(store, username=_USER, password=_PASSWORD)) as server:
        ports.put(server.base_url)
        stop.wait()


def measure(*, members: int, sample: int) -> dict[str, float]:
    """One run on the code this process imports: members/s of look-up + write-back, and of a poll's read."""
    with tempfile.TemporaryDirectory(prefix="ct-sync-bench-") as folder:
        path = Path(folder) / "siebel.sqlite"
        seed(path, members)
        ports: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        stop = multiprocessing.Event()
        server = multiprocessing.Process(target=_serve, args=(path, ports, stop), daemon=True)
        server.start()
        settings = SiebelSettings(
            backend="rest", base_url=ports.get(timeout=30), username=_USER, password=SecretStr(_PASSWORD)
        )
        store = SiebelRestStore(settings)
        numbers = random.Random(7).sample([f"296-{n:08d}" for n in range(members)], sample)
        outcome = SyncOutcome(status=SyncStatus.SYNCED, at=datetime.now(UTC), ct_user_id=1)

        def sync_one(number: str) -> None:
            found = store.get_member(number)
            assert found is not None
            store.write_outcome(found.row_id, outcome)

        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(sync_one, numbers))
        synced = time.perf_counter() - started
        started = time.perf_counter()
        read = sum(len(page.items) for page in store.changed_after(None))
        polled = time.perf_counter() - started
        store.close()
        stop.set()
        server.join(10)
    assert read == members, f"the poll read {read} of {members}"
    return {"sync_members_per_s": sample / synced, "poll_members_per_s": members / polled}


def _run(code: Path, *, members: int, sample: int) -> dict[str, float]:
    """One run in a process of its own, importing the code under `code`."""
    environment = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--members", str(members)]
    done = subprocess.run(
        [*command, "--sample", str(sample)], env=environment, cwd=code, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the run on {code} failed: {done.stderr[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(arguments: argparse.Namespace) -> None:
    codes = {"this": Path(__file__).resolve().parent.parent}
    if arguments.baseline:
        codes = {"baseline": Path(arguments.baseline).resolve(), **codes}
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in codes}
    started = datetime.now(UTC)
    for _ in range(arguments.runs):
        for label, code in codes.items():  # alternating, so a busy minute on the machine hits both
            runs[label].append(_run(code, members=arguments.members, sample=arguments.sample))
            print(label, json.dumps(runs[label][-1]), flush=True)
    medians = {
        label: {figure: round(statistics.median(run[figure] for run in results), 1) for figure in results[0]}
        for label, results in runs.items()
    }
    report: dict[str, Any] = {
        "command": " ".join(["python -m bench.siebel_emulator", *sys.argv[1:]]),
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "members": arguments.members,
        "sample": arguments.sample,
        "threads": THREADS,
        "runs": runs,
        "medians": medians,
    }
    if "baseline" in medians:
        report["ratios"] = {
            figure: round(medians["this"][figure] / medians["baseline"][figure], 1) for figure in medians["this"]
        }
    _RESULTS.mkdir(exist_ok=True)
    (_RESULTS / f"siebel-emulator-{arguments.members}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({key: report[key] for key in ("medians", "ratios") if key in report}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--sample", type=int, default=300, help="members looked up and written back per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", help="another version's code, measured alternately in the same run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.child:
        print(json.dumps(measure(members=parsed.members, sample=parsed.sample)))
    else:
        main(parsed)

"""Console page benchmark, one command: `python -m bench.console_pages [--attempts 100000 1000000] [--runs 7]`.

For each size, an SQLite ledger of that many attempts (five per member, one in ten a failure, spread over 30 days)
is served by `ct-sync console` as its own process; each page is fetched `--runs` times with the bearer token, and
the median time to the whole answer is reported per page and size, with the ratio between the largest and the
smallest size. Results: bench/results/console-pages.json, a Markdown table on stdout for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from sync_worker.core.ports import AttemptRecord
from sync_worker.ledger.sql import SqlLedger

CT_SYNC = str(Path(sys.executable).with_name("ct-sync"))
TOKEN = "bench-console-token"
PAGES = {
    "overview": "/",
    "failures": "/failures",
    "failures, text filter": "/failures?q=already+taken",
    "failures, text found nowhere": "/failures?q=no+such+text",
    "member": "/member?number=296-00000042",
    "job runs": "/jobs",
}
_BATCH = 20_000


def seed(path: Path, attempts: int) -> None:
    ledger = SqlLedger(f"sqlite:///{path}")
    start = datetime.now(UTC) - timedelta(days=30)
    step = timedelta(days=30) / attempts
    for first in range(0, attempts, _BATCH):
        ledger.record(
            [
                AttemptRecord(
                    event_id=f"e{n}",
                    member_number=f"296-{n // 5:08d}",
                    event_type="update",
                    outcome="Data Error" if n % 10 == 0 else "Synced",
                    error="Email Address is already taken" if n % 10 == 0 else None,
                    ct_calls=1,
                    at=start + step * n,
                    source="intake",
                )
                for n in range(first, min(first + _BATCH, attempts))
            ]
        )
    ledger.close()


def measure(attempts: int, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder)
        seed(data_dir / "ledger.sqlite", attempts)
        port = _free_port()
        environment = {
            **os.environ,
            "CTSYNC_DATA_DIR": str(data_dir),
            "CTSYNC_CONSOLE__PORT": str(port),
            "CTSYNC_CONSOLE__TOKEN": TOKEN,
        }
        console = subprocess.Popen(
            [CT_SYNC, "console"], env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            base = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                _wait_until_up(client)
                medians = {}
                for name, path in PAGES.items():
                    client.get(path).raise_for_status()  # warm: the first reading pays for the file cache
                    seconds = []
                    for _ in range(runs):
                        began = time.perf_counter()
                        client.get(path).raise_for_status()
                        seconds.append(time.perf_counter() - began)
                    medians[name] = statistics.median(seconds)
            return medians
        finally:
            console.terminate()
            console.wait(30)


def _wait_until_up(client: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            client.get("/login")
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError("the console did not start")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    sizes = sorted(options.attempts)
    results = {size: measure(size, options.runs) for size in sizes}
    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "command": "python -m bench.console_pages " + " ".join(sys.argv[1:]),
        "median_seconds": {str(size): figures for size, figures in results.items()},
    }
    out = Path(__file__).parent / "results" / "console-pages.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print(f"| page | {' | '.join(f'{size:,} attempts' for size in sizes)} | ratio |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for name in PAGES:
        cells = " | ".join(f"{results[size][name] * 1000:,.0f} ms" for size in sizes)
        ratio = results[sizes[-1]][name] / results[sizes[0]][name]
        print(f"| {name} | {cells} | {ratio:.1f}× |")


if __name__ == "__main__":
    main()

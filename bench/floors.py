"""The CPU floor of one sync: each step a member costs, timed alone on one thread (CPU µs per operation).

Their sum is a lower bound on the CPU one member costs before thread hand-offs, AMQP frames and the pool, so it
bounds what one CPython process can reach at the ceiling: members/s ≤ 1,000,000 / sum(µs).

Usage: python -m bench.floors [--operations 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import http.client
import io
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import structlog

from bench.harness import median, member_document, sandbox_control, sandbox_process
from config.logging import configure_logging
from config.settings import DefaultsSettings, SiebelSettings
from crowdtwist_client.client import CrowdTwistClient
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.core.mapping import map_member
from sync_worker.core.member import SyncOutcome
from sync_worker.core.ports import AttemptRecord, SyncedState
from sync_worker.ledger.sql import SqlLedger

# What one enroll costs at the ceiling: one CrowdTwist call, the member read twice (before sending, and the
# read-after-send check), its outcome written, the mapping, the ledger's read and two writes, one log line.
ONE_SYNC = {"client": 1, "siebel_read": 2, "siebel_write": 1, "mapping": 1, "state_read": 1, "state_write": 1,
            "attempt": 1, "log": 1}  # fmt: skip


def cpu_microseconds(operation: Callable[[int], object], *, operations: int, repeats: int) -> float:
    """Median over `repeats` of the CPU time (this process, all threads) per call of `operation(i)`."""
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        for index in range(operations):
            operation(index)
        samples.append((time.process_time() - started) / operations * 1e6)
    return round(median(samples), 1)


def measure(*, operations: int, repeats: int) -> dict[str, tuple[str, float]]:
    """Each step's label and CPU µs per operation, by key."""
    with tempfile.TemporaryDirectory() as tmp, sandbox_process() as sandbox:
        sandbox_control(sandbox)
        store = SqliteMemberStore(Path(tmp) / "siebel.sqlite", SiebelSettings())
        documents = [member_document(number) for number in range(operations)]
        store.load_members(documents)
        numbers = [document["Member Number"] for document in documents]
        loaded = [store.get_member(number) for number in numbers]
        with httpx.Client(base_url=sandbox) as seeder:
            for number in numbers:
                body = {"third_party_id": number, "first_name": "Ann", "last_name": "Lee",
                        "email_address": f"{number}@example.com"}  # fmt: skip
                seeder.post("/v2/users", json=body).raise_for_status()
        path = "/v2/users/{}?id_type=third_party_id&api_key=k"

        raw = http.client.HTTPConnection(urlsplit(sandbox).netloc)

        def stdlib_get(index: int) -> None:
            raw.request("GET", path.format(numbers[index]))
            raw.getresponse().read()

        plain = httpx.Client(base_url=sandbox)
        client = CrowdTwistClient(base_url=sandbox, api_key="k")
        ledger = SqlLedger(f"sqlite:///{tmp}/ledger.sqlite")
        state = SyncedState("0" * 64, 1, datetime.now(UTC))
        outcome = SyncOutcome(status="Synced", ct_user_id=1, at=datetime.now(UTC))
        defaults = DefaultsSettings()
        configure_logging(json=True, stream=io.StringIO())
        log = structlog.get_logger("ct_sync.worker")

        def attempt(index: int) -> AttemptRecord:
            return AttemptRecord(f"e{index}", numbers[index], "enroll", "Synced", datetime.now(UTC), ct_user_id=1)

        steps: dict[str, tuple[str, Callable[[int], object]]] = {
            "stdlib": ("CrowdTwist look-up, http.client (the lowest Python HTTP cost)", stdlib_get),
            "httpx": ("CrowdTwist look-up, plain httpx.Client", lambda i: plain.get(path.format(numbers[i]))),
            "client": ("CrowdTwist look-up, CrowdTwistClient (httpx + retry, pacing, redaction)",
                       lambda i: client.get_user(numbers[i])),
            "siebel_read": ("Siebel stand-in: read the member (SQLite)", lambda i: store.get_member(numbers[i])),
            "siebel_write": ("Siebel stand-in: write the outcome (SQLite)",
                             lambda i: store.write_outcome(f"1-B{i}", outcome)),
            "mapping": ("map to the CrowdTwist payload, fingerprint it",
                        lambda i: map_member(loaded[i], defaults).fingerprint()),  # type: ignore[arg-type]
            "state_read": ("ledger: read the known state", lambda i: ledger.known_state(numbers[i])),
            "state_write": ("ledger: write the synced state (one thread: no group commit)",
                            lambda i: ledger.remember(numbers[i], state)),
            "attempt": ("ledger: attempt row (one thread: no group commit)", lambda i: ledger.record([attempt(i)])),
            "log": ("one structured log line (JSON, redaction)", lambda i: log.info("member_handled", member=i)),
        }  # fmt: skip
        costs = {
            key: (label, cpu_microseconds(step, operations=operations, repeats=repeats))
            for key, (label, step) in steps.items()
        }
        raw.close()
        plain.close()
        client.close()
        ledger.close()
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    costs = measure(operations=arguments.operations, repeats=arguments.repeats)
    print("| step | CPU µs per operation |\n|---|---|")
    for label, cost in costs.values():
        print(f"| {label} | {cost:,.0f} |")
    one_sync = sum(costs[key][1] * times for key, times in ONE_SYNC.items())
    print(f"\nsum for one sync: {one_sync:,.0f} µs → at most {1e6 / one_sync:,.0f} members/s per process")


if __name__ == "__main__":
    main()

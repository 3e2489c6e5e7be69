"""`ct-sync demo`: the whole chain on a laptop, no servers. A CrowdTwist sandbox, the SQLite Siebel stand-in seeded
with realistic members, the embedded queue, the intake and the worker, all in one process; events go through the
intake exactly as Siebel's workflow sends them; then the members CrowdTwist now knows go out as a segment file to
the embedded drop folder. `running_demo` keeps the chain up for the console. Files stay under `<data dir>/demo/`
for a look afterwards, the log among them (the terminal keeps the table); the resubmit command it suggests names
that folder and the ct-sync that ran the demo, so it works as printed.
"""

from __future__ import annotations

import json
import shlex
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from config.logging import logging_to_file
from config.settings import Settings, SiebelSettings
from sandbox.servers import SandboxServer, SiebelEmulatorServer
from sandbox.siebel.emulator import SiebelEmulator
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.alerts.texts import resubmit_command
from sync_worker.bootstrap import build_intake, build_run_ledger, build_segment_export, build_worker
from sync_worker.cli.app import ct_sync_command
from sync_worker.core.member import FAILURE_STATUSES
from sync_worker.entrypoints.intake import EVENTS_PATH
from sync_worker.http import BackgroundServer
from sync_worker.segments.export import SegmentReport, SegmentRequest

PROGRAM = "1-DEMO"
TAKEN_EMAIL = "j.smith@example.com"
_WAIT_SECONDS = 25.0


def _member(number: str, first: str, last: str, **fields: str) -> dict[str, str]:
    document = {
        "Id": f"1-{number.replace('-', '')}",
        "Member Number": number,
        "Status": "Active",
        "Member Type": "Individual",
        "Program Id": PROGRAM,
        "First Name": first,
        "Last Name": last,
        "Email Address": f"{first.lower()}.{last.lower()}@example.com".replace("'", ""),
        "Date of Birth": "11/30/1979",
        "Primary Postal Code": "10001",
        "Primary City": "New York",
        "Primary Country Code": "US",
        "M/F": "F",
        "Language": "ENU",
        "Tier": "Bronze",
    }
    document.update(fields)
    return document


# (member, story): what each sample member shows.
SAMPLE_MEMBERS: list[tuple[dict[str, str], str]] = [
    (_member("296-2185770", "Maria", "Garcia", Tier="Gold"), "enrolled"),
    (_member("296-2185771", "Liam", "O'Brien", **{"M/F": "M"}, Tier="Silver"), "enrolled (apostrophe sent as ’)"),
    (_member("296-2185772", "Chen", "Wei", **{"Email Address": ""}), "enrolled, no email: default domain"),
    (_member("296-2185773", "Amara", "Okafor", **{"Primary Country Code": "CA", "Primary Postal Code": "K1A 0B1"}),
     "enrolled (Canada)"),
    (_member("296-2185774", "Sofia", "Rossi", Tier="Gold"), "enrolled, then updated"),
    (_member("296-2185775", "Jane", "Smith", **{"Email Address": TAKEN_EMAIL}), "email already taken in CrowdTwist"),
    (_member("296-2185776", "Zoë", "Bright★"), "name CrowdTwist refuses"),
    (_member("296-2185777", "Noah", "Kim", **{"Member Type": "Household"}), "Household member"),
    (_member("296-2185778", "Ella", "Berg", **{"Program Id": "1-OTHER"}), "member of another program"),
    (_member("296-2185779", "Omar", "Haddad", Status="Inactive"), "inactive, never in CrowdTwist"),
]  # fmt: skip
UPDATED_LATER = {"296-2185774": {"Last Name": "Rossi-Bianchi", "Primary Postal Code": "10002"}}


@dataclass
class DemoRow:
    member_number: str
    story: str
    status: str
    error: str
    ct_user_id: str


@dataclass
class DemoReport:
    rows: list[DemoRow]
    ct_calls: dict[str, int]
    data_dir: Path
    log_file: Path
    settings: Settings  # the demo's own: embedded everything under `data_dir`
    emails: list[Path] = field(default_factory=list)
    resubmit: str | None = None
    segment: SegmentReport | None = None
    seconds: float = 0.0


DEMO_SIEBEL_USER = "CTSYNC"
DEMO_SIEBEL_PASSWORD = "demo-password-not-secret"  # noqa: S105 - the emulator's, printed in the docs


def demo_settings(base: Settings, *, data_dir: Path, sandbox_url: str, siebel_url: str | None = None) -> Settings:
    """Everything embedded and local, whatever the environment says."""
    # Field names at their defaults, whatever the environment says: the demo's stand-in is made with them.
    siebel = SiebelSettings(program_id=PROGRAM)
    if siebel_url is not None:
        siebel = SiebelSettings(
            program_id=PROGRAM,
            backend="rest",
            base_url=siebel_url,
            username=DEMO_SIEBEL_USER,
            password=SecretStr(DEMO_SIEBEL_PASSWORD),
        )
    return Settings(
        data_dir=data_dir,
        broker={"url": None},
        ledger={"url": None},
        crowdtwist={"base_url": sandbox_url, "api_key": "demo-api-key-not-secret", "retry_max_time": "2s"},
        siebel=siebel,
        defaults={"email_domain": "members.example.com", "postal_code": "10001", "city_id": 1, "country_code": "US"},
        alerts={"to": ["loyalty-admins@example.com"]},
        worker={"concurrency": 4, "prefetch": 16, "retry_budget": "30s"},
        intake={"host": "127.0.0.1", "port": 8080},
        console=base.console,
    )


def run_demo(base: Settings, *, with_rest: bool = False) -> DemoReport:
    """The story; with `with_rest`, the worker reads and writes Siebel through the REST emulator over HTTP."""
    with running_demo(base, with_rest=with_rest) as report:
        return report


@contextmanager
def running_demo(base: Settings, *, with_rest: bool = False) -> Iterator[DemoReport]:
    """The story, and the chain kept running (sandbox, worker) until the block ends: `ct-sync demo` serves the
    console on it meanwhile, so a resubmit from the page is synced while the operator watches. Every log line goes
    to `<data dir>/demo/demo.log` meanwhile."""
    started = time.monotonic()
    data_dir = base.data_dir.resolve() / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    log_file = data_dir / "demo.log"
    with logging_to_file(log_file), SandboxServer() as sandbox, ExitStack() as stack:
        _email_taken_in_crowdtwist(sandbox, TAKEN_EMAIL)
        store = SqliteMemberStore(data_dir / "siebel.sqlite", SiebelSettings())
        for document, _story in SAMPLE_MEMBERS:
            store.upsert_member(document)
        siebel_url = None
        if with_rest:
            emulator = SiebelEmulator(store, username=DEMO_SIEBEL_USER, password=DEMO_SIEBEL_PASSWORD)
            siebel_url = stack.enter_context(SiebelEmulatorServer(emulator)).base_url
        settings = demo_settings(base, data_dir=data_dir, sandbox_url=sandbox.url, siebel_url=siebel_url)
        worker = build_worker(settings)
        intake = build_intake(settings)
        thread = threading.Thread(target=worker.run, name="ct-sync-worker", daemon=True)
        thread.start()
        try:
            _tell_the_story(intake.app, store, worker.ledger)
            worker.supervisor.flush()  # the failure emails now, not when the worker stops
            worker.dispatcher.drain()
            rows = _rows(store)
            failures = [row.member_number for row in rows if row.status in FAILURE_STATUSES]
            # The demo's own data directory, named: the command reaches the demo's Siebel, queue and ledger. And
            # the ct-sync that ran the demo: `scripts/demo` leaves it in .venv/bin, which PATH may not hold.
            again = f"CTSYNC_DATA_DIR={shlex.quote(str(data_dir))} {resubmit_line(failures)}"
            yield DemoReport(
                rows=rows,
                ct_calls=dict(sandbox.state.stats()["calls"]),
                data_dir=data_dir,
                log_file=log_file,
                settings=settings,
                emails=sorted(settings.outbox_dir.glob("*.eml")),  # the worker's own alerts
                resubmit=again if failures else None,
                segment=_export_segment(settings, store),
                seconds=time.monotonic() - started,
            )
        finally:
            worker.stop()
            thread.join(10)
            intake.close()
            worker.close()


def resubmit_line(member_numbers: list[str]) -> str:
    """The alerts' resubmit command, started the way that runs this ct-sync (`ct_sync_command`)."""
    return ct_sync_command() + resubmit_command(member_numbers).removeprefix("ct-sync")


def _email_taken_in_crowdtwist(sandbox: SandboxServer, email: str) -> None:
    """Someone else in CrowdTwist already uses this email (e.g. enrolled on the website)."""
    user = {"third_party_id": "WEB-1", "first_name": "J", "last_name": "Smith", "email_address": email}
    sandbox.state.handle("POST", "/v2/users", {}, {}, _json_bytes(user))


def _tell_the_story(intake_app: Starlette, store: SqliteMemberStore, ledger: Any) -> None:
    """Every sample member posted to the intake as Siebel's workflow would (enrolls), then the updates, each wave
    waited for until the worker recorded it."""
    with BackgroundServer(intake_app) as intake, httpx.Client(base_url=intake.url, timeout=10) as siebel:
        posted = _post_all(siebel, store, "enroll", [doc["Member Number"] for doc, _ in SAMPLE_MEMBERS])
        _wait_for(ledger, posted)
        for number, changes in UPDATED_LATER.items():
            document = store.document(number) or {}
            store.upsert_member({**document, **changes})
        posted += _post_all(siebel, store, "update", list(UPDATED_LATER))
        _wait_for(ledger, posted)


def _export_segment(settings: Settings, store: SqliteMemberStore) -> SegmentReport:
    """The members now in CrowdTwist, as a segment file in the embedded drop folder (`<data dir>/sftp/`)."""
    runs = build_run_ledger(settings)
    try:
        exporter = build_segment_export(settings, runs=runs, store=store)
        return exporter.run(SegmentRequest(name="DemoMembers", where=(("Program Id", PROGRAM),)))
    finally:
        runs.close()


def _post_all(siebel: httpx.Client, store: SqliteMemberStore, event: str, numbers: list[str]) -> int:
    for number in numbers:
        document = store.document(number)
        member = {key: value for key, value in (document or {}).items() if not key.startswith("CT ")}
        response = siebel.post(EVENTS_PATH, json={"event": event, "member": member})
        response.raise_for_status()
    return len(numbers)


def _wait_for(ledger: Any, events: int) -> None:
    """Until the worker has an attempt row for every event posted (or the demo's patience runs out)."""
    deadline = time.monotonic() + _WAIT_SECONDS
    while time.monotonic() < deadline:
        if ledger.totals()["attempts"] >= events:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the worker did not handle {events} events in {_WAIT_SECONDS:.0f} s")


def _rows(store: SqliteMemberStore) -> list[DemoRow]:
    stories = {document["Member Number"]: story for document, story in SAMPLE_MEMBERS}
    rows = []
    for document in store.documents():
        number = document["Member Number"]
        rows.append(
            DemoRow(
                member_number=number,
                story=stories.get(number, ""),
                status=document.get("CT Sync Status") or "(not sent)",
                error=document.get("CT Sync Error") or "",
                ct_user_id=document.get("CT User Id") or "",
            )
        )
    return rows


def _json_bytes(document: dict[str, str]) -> bytes:
    return json.dumps(document).encode()

"""The composition root: builds the worker, the intake, the poller, the console, the jobs and the scheduler from
`Settings`, and accepts ready-made parts (fakes, a sandbox transport) so tests, the demo and the benchmarks exercise
the real wiring. The CLI builds everything from here: the builders some adapters keep beside their classes
(`build_ledger`, `build_publisher`, `build_dead_letters`, `probe_broker`) are offered here too (`import … as …`).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import httpx
import structlog
from starlette.applications import Starlette

from config.settings import Settings
from crowdtwist_client.client import CrowdTwistClient
from crowdtwist_client.drop.folder import FolderDrop
from siebel_adapter.rest_store import SiebelRestStore
from siebel_adapter.sqlite_store import SqliteMemberStore
from sync_worker.alerts.dispatcher import AlertDispatcher
from sync_worker.alerts.mailers import build_mailer
from sync_worker.alerts.policy import AlertPolicy
from sync_worker.console.backend import ConsoleBackend
from sync_worker.core.clock import SystemClock
from sync_worker.core.decisions import RetryPolicy
from sync_worker.core.errors import CtSyncError
from sync_worker.core.messages import MemberEvent, member_reference
from sync_worker.core.ports import (
    AttemptRecord,
    Clock,
    EventPublisher,
    FileDrop,
    LatestOutcomes,
    Mailer,
    MemberStore,
    PrivacyDeletions,
)
from sync_worker.core.privacy import PrivacyRequests
from sync_worker.core.resubmit import requeue_ct_failures
from sync_worker.core.sync import MemberSync
from sync_worker.entrypoints.intake import create_intake_app
from sync_worker.entrypoints.poller import Poller
from sync_worker.http import HealthServer, with_metrics
from sync_worker.jobs.catalog import Catalog
from sync_worker.jobs.kinds import JobKinds, KindTable, PageConfirmed, PollSummary
from sync_worker.jobs.runner import JobRunner
from sync_worker.jobs.scheduler import Scheduler
from sync_worker.ledger.locks import AdvisoryLocks, FileLocks
from sync_worker.ledger.operations import OperationsLog
from sync_worker.ledger.privacy import PrivacyLedger
from sync_worker.ledger.retention import purge_history
from sync_worker.ledger.runs import RunLedger
from sync_worker.ledger.sql import SqlLedger, create_ledger_engine
from sync_worker.ledger.sql import build_ledger as build_ledger
from sync_worker.metrics import Metrics
from sync_worker.queue.broker import claim_embedded_queue, open_broker, reclaim_unacked
from sync_worker.queue.broker import probe_broker as probe_broker
from sync_worker.queue.consumer import QueueWorker
from sync_worker.queue.dead_letters import build_dead_letters as build_dead_letters
from sync_worker.queue.publisher import KombuPublisher
from sync_worker.queue.publisher import build_publisher as build_publisher
from sync_worker.queue.topology import QueueTopology
from sync_worker.segments.export import SegmentExport
from sync_worker.worker.breaker import Breaker, BreakerState, Transition
from sync_worker.worker.breaker_events import BreakerEvents
from sync_worker.worker.handler import EventHandler
from sync_worker.worker.outages import OutageGate, Reporting
from sync_worker.worker.readiness import PROBE_MEMBER, ReadinessProbe
from sync_worker.worker.sizing import InFlightSizer
from sync_worker.worker.summary import MinuteSummary
from sync_worker.worker.supervisor import Supervisor

log = structlog.get_logger("ct_sync.bootstrap")


def describe_systems(settings: Settings) -> dict[str, str]:
    """Where each system is, for a start line an operator can check at a glance: hosts and files, never a
    password, token or key (URLs are cut to scheme, host, port and path)."""
    smtp = settings.alerts.smtp_host
    systems = {
        "broker": _where(settings.broker.url) if settings.broker.url else f"embedded queue {settings.broker_url}",
        "siebel": (
            _where(settings.siebel.base_url)
            if settings.siebel.backend == "rest" and settings.siebel.base_url
            else f"SQLite stand-in {settings.siebel_sqlite_path}"
        ),
        "crowdtwist": _where(settings.crowdtwist.base_url),
        "ledger": _where(settings.ledger.url) if settings.ledger.url else f"SQLite {settings.ledger_url}",
        "alerts": f"SMTP {smtp}:{settings.alerts.smtp_port}" if smtp else f"outbox {settings.outbox_dir}",
    }
    if settings.crowdtwist.budget_url is not None:
        systems["budget"] = _where(settings.crowdtwist.budget_url)
    if settings.metrics.port is not None:
        systems["metrics"] = f"http://{settings.metrics.host}:{settings.metrics.port}/metrics"
    return systems


def _where(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def build_member_store(settings: Settings, *, metrics: Metrics | None = None) -> MemberStore:
    counted = metrics.siebel_call if metrics is not None else lambda kind: None
    if settings.siebel.backend == "rest":
        return SiebelRestStore(settings.siebel, on_call=counted)
    return SqliteMemberStore(settings.siebel_sqlite_path, settings.siebel, on_call=counted)


def build_file_drop(settings: Settings) -> FileDrop:
    """CrowdTwist's SFTP folder when a host is set, else the local folder `<data dir>/sftp/` (the embedded default)."""
    if settings.sftp.host is not None:
        from crowdtwist_client.drop.sftp import SftpDrop  # paramiko loads only where SFTP is used, not in the worker

        return SftpDrop(settings.sftp)
    return FolderDrop(settings.drop_folder / settings.sftp.segment_directory.strip("/"))


def build_segment_export(
    settings: Settings,
    *,
    runs: RunLedger,
    store: MemberStore | None = None,
    drop: FileDrop | None = None,
    privacy: PrivacyDeletions | None = None,
    clock: Clock | None = None,
) -> SegmentExport:
    return SegmentExport(
        store=store or build_member_store(settings),
        drop=drop or build_file_drop(settings),
        deliveries=runs,
        runs=runs,
        privacy=privacy or build_privacy_register(settings),
        clock=clock or SystemClock(),
        program_id=settings.siebel.program_id,
        max_bytes=settings.sftp.max_file_bytes,
        spool_dir=settings.data_dir / "segments",
        archive_dir=settings.archive_dir,
    )


def build_poller(
    settings: Settings, *, store: MemberStore | None = None, publisher: EventPublisher | None = None
) -> Poller:
    """The change poller, its watermark under the data directory (`ct-sync poll` and the `poll` job kind)."""
    return Poller(
        store or build_member_store(settings),
        publisher or build_publisher(settings),
        watermark_path=settings.data_dir / "poll-watermark.json",
        overlap=settings.siebel.poll_overlap,
        program_id=settings.siebel.program_id,
    )


def build_run_ledger(settings: Settings) -> RunLedger:
    if settings.ledger.url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return RunLedger(settings.ledger_url)


def build_privacy_register(settings: Settings) -> PrivacyLedger:
    if settings.ledger.url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return PrivacyLedger(settings.ledger_url)


@dataclass
class Privacy:
    """What `ct-sync privacy` and the `privacy-followup` job work with; `close()` releases the client and pool."""

    requests: PrivacyRequests
    register: PrivacyLedger
    crowdtwist: CrowdTwistClient

    def close(self) -> None:
        self.crowdtwist.close()
        self.register.close()


def build_privacy(
    settings: Settings, *, transport: httpx.BaseTransport | None = None, clock: Clock | None = None
) -> Privacy:
    """Privacy requests through the sync's own CrowdTwist client: the same pacer, retries and budget."""
    register = build_privacy_register(settings)
    crowdtwist = build_crowdtwist(settings, transport=transport)
    requests = PrivacyRequests(crowdtwist=crowdtwist, register=register, clock=clock or SystemClock())
    return Privacy(requests, register, crowdtwist)


def build_operations_log(settings: Settings) -> OperationsLog:
    if settings.ledger.url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return OperationsLog(settings.ledger_url)


def build_crowdtwist(
    settings: Settings,
    *,
    transport: httpx.BaseTransport | None = None,
    metrics: Metrics | None = None,
    policy: AlertPolicy | None = None,
) -> CrowdTwistClient:
    # One connection per sync thread, a few spare for retries overlapping a slow answer.
    return CrowdTwistClient.from_settings(
        settings.crowdtwist,
        max_connections=settings.worker.concurrency + 4,
        transport=transport,
        observer=metrics.observe_call if metrics else None,
        pacing_observer=metrics.pacing_wait.inc if metrics else None,
        on_budget_sharing=(
            (lambda shared: policy.budget_sharing(shared, fallback=settings.crowdtwist.fallback_processes))
            if policy
            else lambda shared: None
        ),
    )


@dataclass
class Worker:
    """A wired worker: `run()` blocks until `stop()`; `close()` flushes alerts and releases clients and pools."""

    queue_worker: QueueWorker
    store: MemberStore
    crowdtwist: CrowdTwistClient
    ledger: SqlLedger
    supervisor: Supervisor
    dispatcher: AlertDispatcher
    metrics: Metrics
    runs: RunLedger | None = None
    health: HealthServer | None = None
    queue_lock: TextIO | None = None  # the embedded queue's: this is the data directory's one worker
    locks: AdvisoryLocks | FileLocks | None = None
    breaker_events: BreakerEvents | None = None
    systems: dict[str, str] | None = None  # where each system is, for the start line
    outages: OutageGate | None = None
    handler: EventHandler | None = None

    def run(self) -> None:
        """Serve health and metrics (a port already taken raises `ConfigurationError`), then consume."""
        if self.health is not None:
            self.health.start()
        log.info("worker_started", **(self.systems or {}))
        if self.breaker_events is not None:
            self.breaker_events.started()
        self.supervisor.started(probe=lambda: self.crowdtwist.get_user(PROBE_MEMBER))
        self.queue_worker.run()

    def stop(self) -> None:
        self.queue_worker.stop()

    def close(self) -> None:
        if self.handler is not None:
            self.handler.flush_history()  # what an outage of the ledger held back, before the ledger closes
        self.supervisor.flush()
        self.dispatcher.close()
        if self.breaker_events is not None:
            self.breaker_events.stopped()
        if self.health is not None:
            self.health.stop()
        self.crowdtwist.close()
        self.ledger.close()
        if self.runs is not None:
            self.runs.close()
        self.store.close()  # the REST store holds an HTTP pool
        if self.queue_lock is not None:
            self.queue_lock.close()
        if self.locks is not None:
            self.locks.close()

    def worker_checks(self) -> dict[str, bool]:
        checks = {
            "broker": self.queue_worker.connected.is_set(),
            "crowdtwist": self.supervisor.breaker.state is BreakerState.CLOSED,
        }
        if self.outages is not None:
            checks["ledger"] = self.outages.up("ledger")
        return checks


def build_worker(
    settings: Settings,
    *,
    store: MemberStore | None = None,
    crowdtwist: CrowdTwistClient | None = None,
    ledger: SqlLedger | None = None,
    mailer: Mailer | None = None,
    clock: Clock | None = None,
) -> Worker:
    queue_lock = claim_embedded_queue(settings)  # first: never reclaim another live worker's messages
    clock = clock or SystemClock()
    metrics = Metrics()
    store = store or build_member_store(settings, metrics=metrics)
    ledger = ledger or build_ledger(settings)
    policy = _alert_policy(settings, clock, latest=ledger)
    crowdtwist = crowdtwist or build_crowdtwist(settings, metrics=metrics, policy=policy)
    runs = build_run_ledger(settings)
    sync = MemberSync(
        store=store,
        crowdtwist=crowdtwist,
        known_states=ledger,
        defaults=settings.defaults,
        program_id=settings.siebel.program_id,
        clock=clock,
    )
    retry = RetryPolicy(
        budget=settings.worker.retry_budget,
        first_delay=settings.worker.retry_first_delay,
        max_delay=settings.worker.retry_max_delay,
        siebel_refusals=settings.worker.siebel_refusals,
    )
    locks = build_member_locks(settings)
    sizer = InFlightSizer(calls_per_second=lambda: crowdtwist.pace_per_second, cap=settings.worker.concurrency)
    handler = EventHandler(sync=sync, ledger=ledger, clock=clock, retry=retry, locks=locks)
    operations = build_operations_log(settings)
    breaker_events = BreakerEvents(operations, clock=clock.now)
    dispatcher = AlertDispatcher(mailer or build_mailer(settings), source=policy)

    def transition(transition: Transition) -> None:  # on the consumer's connection thread
        breaker_events.transition(transition)
        if transition.kind == "closed":  # what the open breaker parked goes back to work now, not minutes later
            queue_worker.release_parked()

    # The ledger and Siebel down: pause, probe each with its own cheap read, say so once each way.
    outages = OutageGate(
        probes={"ledger": lambda: ledger.known_state(PROBE_MEMBER), "siebel": lambda: store.get_member(PROBE_MEMBER)},
        clock=clock,
        policy=policy,
        alert_after=settings.worker.outage_alert_after,
    )
    supervisor = Supervisor(
        breaker=Breaker(
            clock=clock.now,
            threshold=settings.worker.breaker_threshold,
            max_backoff=settings.worker.breaker_max_backoff,
        ),
        policy=policy,
        dispatcher=dispatcher,
        metrics=metrics,
        sizer=sizer,
        clock=clock.now,
        monotonic=clock.monotonic,
        resubmit_failed_since=(lambda since: _requeue_ct_failures(settings, store, since))
        if settings.worker.auto_resubmit
        else None,
        housekeeping=lambda: purge_history(
            ledger, runs, operations, older_than=clock.now() - settings.ledger.retention
        ),
        on_transition=transition,
        on_probe_scheduled=breaker_events.probe_scheduled,
        summary=MinuteSummary(budget_per_minute=settings.crowdtwist.calls_per_minute),
        pauses=ledger,
        also_paused=lambda: outages.paused,
    )

    def dead_lettered(body: bytes | str, reason: str) -> None:
        member_number = member_reference(body)
        supervisor.dead_lettered(member_number, reason)
        if member_number is not None:
            handler.dead_lettered(member_number, reason)

    connection = open_broker(settings)
    reclaim_unacked(connection)  # the embedded queue: take back what a killed worker held
    topology = QueueTopology.from_settings(settings.broker)

    def depths(found: dict[str, int]) -> None:
        metrics.set_depths(found)
        supervisor.summary.queue_depth(found.get(topology.work_queue.name))

    def tick() -> None:
        outages.tick()
        supervisor.tick()

    queue_worker = QueueWorker(
        connection=connection,
        topology=topology,
        handler=Reporting(handler, outages),
        concurrency=settings.worker.concurrency,
        prefetch=settings.worker.prefetch,
        # The gate first: while the ledger or Siebel is down, the breaker is not asked (nor spends its probe).
        may_start=lambda: outages.allow() and supervisor.may_start(),
        on_handled=supervisor.handled,
        on_tick=tick,
        on_dead_letter=dead_lettered,
        on_depths=depths,
        in_flight=lambda: sizer.limit,
        max_hold=settings.worker.max_hold.total_seconds(),
    )
    worker = Worker(
        queue_worker,
        store,
        crowdtwist,
        ledger,
        supervisor,
        dispatcher,
        metrics,
        runs=runs,
        queue_lock=queue_lock,
        locks=locks,
        breaker_events=breaker_events,
        systems=describe_systems(settings),
        outages=outages,
        handler=handler,
    )
    if settings.metrics.port is not None:
        readiness = ReadinessProbe(store=store, extra=worker.worker_checks)
        worker.health = HealthServer(
            registry=metrics.registry, readiness=readiness, host=settings.metrics.host, port=settings.metrics.port
        )
    return worker


def build_member_locks(settings: Settings) -> AdvisoryLocks | FileLocks:
    """Where the ledger is shared, so are the locks: PostgreSQL's advisory locks, or a lock file beside SQLite."""
    url = settings.ledger_url
    if url.startswith(("postgresql", "postgres")):
        return AdvisoryLocks(create_ledger_engine(url, pool_size=1))
    # Beside the SQLite file the workers share (one host): sqlite:////var/lib/ct-sync/ledger.sqlite → ….locks
    return FileLocks(Path(url.split(":///", 1)[1]).with_suffix(".locks"))


def _alert_policy(settings: Settings, clock: Clock, *, latest: LatestOutcomes) -> AlertPolicy:
    """The alert policy; its digests read each member's state from `latest` (the ledger) as they go out."""
    return AlertPolicy(
        notify=settings.alerts.notify,
        digest_interval=settings.alerts.digest_interval,
        clock=clock.now,
        latest=latest,
    )


def _requeue_ct_failures(settings: Settings, store: MemberStore, since: datetime) -> int:
    with closing(build_publisher(settings)) as publisher:
        return requeue_ct_failures(store, publisher, since=since)


def build_console(settings: Settings, *, clock: Clock | None = None) -> tuple[Starlette, ConsoleBackend]:
    """The console's app and what it reads and acts through; `backend.close()` releases it all."""
    from sync_worker.console.app import create_console_app  # the console's own needs, loaded only for it

    clock = clock or SystemClock()
    store = build_member_store(settings)
    publisher = build_publisher(settings)
    ledger = build_ledger(settings)
    runs = build_run_ledger(settings)
    operations = build_operations_log(settings)
    dead_letters = build_dead_letters(settings)
    privacy = build_privacy_register(settings)
    backend = ConsoleBackend(
        ledger=ledger,
        runs=runs,
        operations=operations,
        store=store,
        publisher=publisher,
        privacy=privacy,
        dead_letters=dead_letters,
        queue_depths=dead_letters.depths,
        defaults=settings.defaults,
        program_id=settings.siebel.program_id,
        max_resubmits=settings.worker.max_resubmits,
        calls_per_minute=settings.crowdtwist.calls_per_minute,
        clock=clock.now,
        closers=[
            publisher.close,
            ledger.close,
            runs.close,
            operations.close,
            privacy.close,
            store.close,
        ],
    )
    token = settings.console.token.get_secret_value() if settings.console.token else None
    return create_console_app(backend, token=token, session_lifetime=settings.console.session_lifetime), backend


@dataclass
class Intake:
    """A wired intake: `app` serves Siebel's workflow (and `/metrics`); `close()` flushes alerts and releases."""

    app: Starlette
    publisher: KombuPublisher
    store: MemberStore
    ledger: SqlLedger
    policy: AlertPolicy
    dispatcher: AlertDispatcher

    def close(self) -> None:
        self.dispatcher.close()  # the digest still held goes out first, composed as it goes
        self.publisher.close()
        self.ledger.close()
        self.store.close()  # the REST store holds an HTTP pool


def build_intake(settings: Settings, *, clock: Clock | None = None) -> Intake:
    """The intake with its watch: every event the queue refused is an OIC Failure on the member (the intake writes
    it), a row of history, a count on `/metrics` and a line in the next failure alert."""
    clock = clock or SystemClock()
    store = build_member_store(settings)
    publisher = build_publisher(settings)
    ledger = build_ledger(settings)
    metrics = Metrics()
    policy = _alert_policy(settings, clock, latest=ledger)
    # The dispatcher asks the policy for due alerts once a second, on its own thread.
    dispatcher = AlertDispatcher(build_mailer(settings), source=policy)

    def refused(event: MemberEvent, reason: str) -> None:
        policy.member_outcome(event.member_number, "OIC Failure", reason)
        attempt = AttemptRecord(
            event_id=event.event_id,
            member_number=event.member_number,
            event_type=event.event_type,
            outcome="OIC Failure",
            at=clock.now(),
            error=reason,
            source="intake",
        )
        try:
            ledger.record([attempt])
        except CtSyncError as exc:
            log.error("ledger_unavailable", error=exc.message, rows=1)

    token = settings.intake.token.get_secret_value() if settings.intake.token else None
    readiness = ReadinessProbe(
        store=store, broker=lambda: probe_broker(settings), extra=lambda: {"publisher": not publisher.failing}
    )
    intake_app = create_intake_app(
        publisher=publisher,
        store=store,
        token=token,
        max_body_bytes=settings.intake.max_body_bytes,
        submit=publisher.submit,  # requests wait for their confirm on the event loop, not on a pool thread
        readiness=readiness,
        on_answer=lambda status: metrics.intake_answers.labels(status=str(status)).inc(),
        on_refused=refused,
    )
    app = with_metrics(intake_app, metrics.registry)
    return Intake(app, publisher, store, ledger, policy, dispatcher)


# -- jobs and the scheduler ----------------------------------------------------------------------------------------


class RunAdapters:
    """The `RunParts` of one job run, built from `Settings` when first asked for and closed with the run
    (`resources`); a store, publisher, drop folder or clock handed in (tests, the demo) is used instead."""

    def __init__(
        self,
        settings: Settings,
        resources: ExitStack,
        *,
        runs: RunLedger,
        store: MemberStore | None = None,
        publisher: EventPublisher | None = None,
        drop: FileDrop | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._settings = settings
        self._resources = resources
        self._runs = runs
        self._store = store
        self._publisher = publisher
        self._drop = drop
        self._clock = clock

    def member_store(self) -> MemberStore:
        if self._store is None:
            self._store = build_member_store(self._settings)
            self._resources.callback(self._store.close)
        return self._store

    def publisher(self) -> EventPublisher:
        if self._publisher is None:
            publisher = build_publisher(self._settings)
            self._resources.callback(publisher.close)
            self._publisher = publisher
        return self._publisher

    def segment_export(self) -> SegmentExport:
        return build_segment_export(
            self._settings, runs=self._runs, store=self.member_store(), drop=self._drop, clock=self._clock
        )

    def poll_once(self) -> Callable[[PageConfirmed], PollSummary]:
        return build_poller(self._settings, store=self.member_store(), publisher=self.publisher()).run_once

    def resubmit_history(self) -> SqlLedger:
        return self._resources.enter_context(closing(build_ledger(self._settings)))

    def privacy_register(self) -> PrivacyLedger:
        return self._resources.enter_context(closing(build_privacy_register(self._settings)))

    def privacy_requests(self) -> PrivacyRequests:
        return self._resources.enter_context(closing(build_privacy(self._settings, clock=self._clock))).requests


@dataclass
class Jobs:
    """What `ct-sync jobs` and `ct-sync scheduler` work with; `close()` sends the last emails and releases pools."""

    catalog: Catalog
    runs: RunLedger
    runner: JobRunner
    dispatcher: AlertDispatcher

    def close(self) -> None:
        self.dispatcher.close()
        self.runs.close()


def build_jobs(
    settings: Settings,
    *,
    catalog: Catalog | None = None,
    kinds: JobKinds | None = None,
    mailer: Mailer | None = None,
    clock: Clock | None = None,
    stopping: threading.Event | None = None,
) -> Jobs:
    """Raises `ConfigurationError` naming the job when a job's options break its command's rules."""
    catalog = catalog or Catalog.from_settings(settings)
    clock = clock or SystemClock()
    runs = build_run_ledger(settings)
    dispatcher = AlertDispatcher(mailer or build_mailer(settings))
    runner = JobRunner(
        runs=runs,
        kinds=kinds
        or KindTable(
            lambda resources: RunAdapters(settings, resources, runs=runs, clock=clock),
            max_resubmits=settings.worker.max_resubmits,
        ),
        notify=dispatcher.submit,
        clock=clock,
        stopping=stopping,
    )
    return Jobs(catalog, runs, runner, dispatcher)


def build_scheduler(jobs: Jobs, settings: Settings, *, clock: Clock | None = None) -> Scheduler:
    clock = clock or SystemClock()
    return Scheduler(
        catalog=jobs.catalog,
        runner=jobs.runner,
        state=jobs.runs,
        clock=clock,
        owner=f"{socket.gethostname()}:{os.getpid()}",
        lease=settings.scheduler.lease,
        housekeeping=lambda: purge_history(jobs.runs, older_than=clock.now() - settings.ledger.retention),
    )

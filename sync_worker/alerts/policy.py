"""When to email, and what: one email per state change of the integration, one when it clears, and member-level
failures in a digest at most every `digest_interval`. `due()` hands out what to send now; the clock and the
ledger's latest outcomes are injected (ports), so it is tested with fakes.

A digest says what is true when it is sent: `due()` composes it then, reading each member's newest decisive
attempt from the ledger (another worker, or a later attempt, may have synced it). A member synced since its failure
is left out and counted as recovered; the others are shown with their status now. A digest with nobody left to
name is not sent. `due()` is called on the dispatcher's thread (the ledger read must never hold up a sync).

    CrowdTwist unreachable / credentials refused   at once, once per outage; "reachable again" when it clears
    the ledger or Siebel unreachable for a while   once per outage, when it has lasted (the worker's outage gate
                                                   says when); "reachable again" when it clears
    a worker started after a credentials pause     "accepts our credentials again", once CrowdTwist does
    first member failures after a quiet spell      at once ("Data Errors appeared", …): the state change
    further member failures                        batched into a digest, at most one per interval
    notify=all                                     also a digest of successes counts
    notify=none                                    nothing
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog

from config.durations import format_duration
from sync_worker.alerts.texts import MemberFailure, failure_digest
from sync_worker.core.errors import CtSyncError
from sync_worker.core.ports import Alert, LatestOutcomes

log = structlog.get_logger("ct_sync.alerts")
FAILURES = frozenset({"Data Error", "CT Failure", "OIC Failure", "Dead-lettered"})
RECOVERED = "Synced"


class AlertPolicy:
    def __init__(
        self,
        *,
        notify: str,
        digest_interval: timedelta,
        clock: Callable[[], datetime],
        latest: LatestOutcomes | None = None,
    ) -> None:
        self._notify = notify
        self._interval = digest_interval
        self._clock = clock
        self._latest = latest  # the ledger: where each member stands now, across every process
        self._lock = threading.Lock()  # fed from the consumer thread, read by the dispatcher's thread
        # Member → its latest failure: a member failing again before the digest goes is one member, not two.
        self._pending: dict[str, MemberFailure] = {}
        self._recovered: set[str] = set()  # pending members this process saw sync since
        self._successes: Counter[str] = Counter()
        self._last_digest: datetime | None = None
        self._quiet = True  # no member failures in the last interval
        self._outbox: list[Alert] = []

    def member_outcome(self, member_number: str, status: str, reason: str | None) -> None:
        if self._notify == "none":
            return
        with self._lock:
            if status in FAILURES:
                self._pending.pop(member_number, None)  # re-inserted: the digest lists members by latest failure
                self._pending[member_number] = MemberFailure(member_number, status, reason or "", self._clock())
                self._recovered.discard(member_number)
            else:
                self._successes[status] += 1
                if status == RECOVERED and self._pending.pop(member_number, None) is not None:
                    self._recovered.add(member_number)

    def outage_began(self, *, since: datetime, cause: str, credentials: bool) -> None:
        """CrowdTwist stopped answering (or refused our key) and syncing paused: one alert for the whole outage."""
        self._tell(_outage_alert(since=since, cause=cause, credentials=credentials))

    def outage_ended(self, *, since: datetime) -> None:
        """CrowdTwist answers again: one recovery alert."""
        self._tell(_recovery(since=since))

    def credentials_accepted(self, *, since: datetime) -> None:
        """A worker started after a pause for refused credentials, and CrowdTwist accepts its key: one "resumed"
        alert (the process that paused, which would have sent the recovery alert, may be long gone)."""
        self._tell(_credentials_resumed(since=since))

    def system_unavailable(self, system: str, *, since: datetime, cause: str) -> None:
        """The ledger or Siebel has been unreachable for a while and syncing is paused: one alert for the outage."""
        self._tell(_system_down(system, since=since, cause=cause))

    def system_available_again(self, system: str, *, since: datetime) -> None:
        """The ledger or Siebel, whose outage was alerted, answers again."""
        self._tell(_system_back(system, since=since))

    def _tell(self, alert: Alert) -> None:
        if self._notify != "none":
            with self._lock:
                self._outbox.append(alert)

    def budget_sharing(self, shared: bool, *, fallback: int) -> None:
        """The CrowdTwist budget shared through Redis was lost (this process paces alone at 1/`fallback` of it), or
        found again: one alert each way."""
        if shared:
            self._tell(
                Alert(
                    subject="[ct-sync] shared CrowdTwist budget reachable again",
                    body="Redis answers again: every worker process draws on the one shared budget.\n",
                )
            )
            return
        self._tell(
            Alert(
                subject="[ct-sync] shared CrowdTwist budget unreachable: pacing alone",
                body=(
                    f"Redis (CTSYNC_CROWDTWIST__BUDGET_URL) cannot be reached. Syncing goes on: this worker paces at "
                    f"1/{fallback} of the budget (CTSYNC_CROWDTWIST__FALLBACK_PROCESSES), so up to {fallback} "
                    "processes together stay within it. It returns to the shared budget by itself.\n"
                ),
            )
        )

    def recovery_resubmitted(self, count: int) -> None:
        """After an outage, the members that ended CT Failure during it were queued again."""
        if count:
            self._tell(
                Alert(
                    subject=f"[ct-sync] {count} member(s) resubmitted after the CrowdTwist outage",
                    body=f"{count} member(s) that ended 'CT Failure' during the outage were queued again.\n",
                )
            )

    def due(self, *, flush: bool = False) -> list[Alert]:
        """The alerts to send now; with `flush` (shutdown), the pending digest too, whatever the interval."""
        now = self._clock()
        digest: tuple[list[MemberFailure], int, bool] | None = None
        with self._lock:
            alerts, self._outbox = self._outbox, []
            interval_over = self._last_digest is None or now - self._last_digest >= self._interval
            if self._pending and (self._quiet or interval_over or flush):
                # The first failures after a quiet spell are a state change: tell at once.
                digest = (list(self._pending.values()), len(self._recovered), self._quiet)
                self._pending, self._recovered, self._quiet, self._last_digest = {}, set(), False, now
            elif interval_over and not self._pending:
                self._recovered = set()
                if self._notify == "all" and self._successes:
                    alerts.append(_successes(self._successes, self._interval))
                    self._successes = Counter()
                    self._last_digest = now
                if self._last_digest is not None and now - self._last_digest >= self._interval:
                    self._quiet = True
        if digest is not None:  # composed outside the lock: the ledger read must not hold up the consumer's thread
            failures, recovered, first = digest
            composed = self._compose(failures, recovered=recovered, now=now)
            if composed is not None:
                alerts.append(_with_state(composed, first=first))
        return alerts

    def _compose(self, failures: Sequence[MemberFailure], *, recovered: int, now: datetime) -> Alert | None:
        """The digest as it stands now, or None when every member it would name has synced since."""
        if self._latest is None:
            return failure_digest(failures, recovered=recovered)
        try:
            latest = self._latest.latest_outcomes([failure.member_number for failure in failures])
        except CtSyncError as exc:
            log.warning("digest_statuses_unread", error=exc.message)
            return failure_digest(failures, recovered=recovered, unread=exc.message)
        remaining: list[MemberFailure] = []
        for failure in failures:
            newest = latest.get(failure.member_number)
            if newest is None or (failure.at is not None and newest.at < failure.at):
                remaining.append(failure)  # the ledger knows nothing newer than the failure this process saw
            elif newest.outcome == RECOVERED:
                recovered += 1
            elif newest.outcome in FAILURES:
                remaining.append(MemberFailure(failure.member_number, newest.outcome, newest.error or "", newest.at))
            else:
                remaining.append(failure)  # skipped since: nothing was written on the member, its failure stands
        if not remaining:
            log.info("digest_not_sent", recovered=recovered, reason="every member named has synced since")
            return None
        return failure_digest(remaining, recovered=recovered, as_of=now)


def _with_state(digest: Alert, *, first: bool) -> Alert:
    if not first:
        return digest
    return Alert(subject=digest.subject.replace("[ct-sync]", "[ct-sync] failures appeared:", 1), body=digest.body)


def _outage_alert(*, since: datetime, cause: str, credentials: bool) -> Alert:
    if credentials:
        subject = "[ct-sync] CrowdTwist refused our credentials: syncing paused"
        action = "Check CTSYNC_CROWDTWIST__API_KEY (revoked or rotated?). ct-sync probes and resumes by itself."
    else:
        subject = "[ct-sync] CrowdTwist unreachable: syncing paused"
        action = "ct-sync probes CrowdTwist with backoff and resumes by itself; nothing is lost meanwhile."
    body = (
        f"Since {since:%Y-%m-%d %H:%M:%S} UTC: {cause}\n\n"
        f"No new member syncs are started; queued members wait.\n{action}\n"
    )
    return Alert(subject=subject, body=body)


def _recovery(*, since: datetime) -> Alert:
    return Alert(
        subject="[ct-sync] CrowdTwist reachable again: syncing resumed",
        body=(
            f"The outage that began {since:%Y-%m-%d %H:%M:%S} UTC is over.\n"
            "Members that ended 'CT Failure' during it are resubmitted automatically; to do it by hand:\n"
            f"  ct-sync resubmit --status 'CT Failure' --since {since:%Y-%m-%dT%H:%M:%SZ}\n"
        ),
    )


def _credentials_resumed(*, since: datetime) -> Alert:
    return Alert(
        subject="[ct-sync] CrowdTwist accepts our credentials again: syncing resumed",
        body=(
            f"Syncing paused {since:%Y-%m-%d %H:%M:%S} UTC because CrowdTwist refused our credentials.\n"
            "A worker started since, and CrowdTwist accepts its API key: syncing has resumed.\n"
            "Members that ended 'CT Failure' during the pause are resubmitted automatically; to do it by hand:\n"
            f"  ct-sync resubmit --status 'CT Failure' --since {since:%Y-%m-%dT%H:%M:%SZ}\n"
        ),
    )


# The systems of the worker's outage gate, as the alerts name them, with the setting that says where each is.
_SYSTEMS = {
    "ledger": ("the ledger database", "CTSYNC_LEDGER__URL"),
    "siebel": ("Siebel", "CTSYNC_SIEBEL__BASE_URL"),
}


def _system_down(system: str, *, since: datetime, cause: str) -> Alert:
    name, setting = _SYSTEMS.get(system, (system, ""))
    where = f" (where {setting} points)" if setting else ""
    return Alert(
        subject=f"[ct-sync] {name} unreachable: syncing paused",
        body=(
            f"Since {since:%Y-%m-%d %H:%M:%S} UTC ct-sync cannot reach {name}{where}: {cause}\n\n"
            "No new member syncs are started; queued members wait, and nothing is lost meanwhile.\n"
            "ct-sync probes it with backoff and resumes by itself, without sending CrowdTwist again what it has.\n"
        ),
    )


def _system_back(system: str, *, since: datetime) -> Alert:
    name, _ = _SYSTEMS.get(system, (system, ""))
    return Alert(
        subject=f"[ct-sync] {name} reachable again: syncing resumed",
        body=f"The outage of {name} that began {since:%Y-%m-%d %H:%M:%S} UTC is over; queued members are synced.\n",
    )


def _successes(counts: Counter[str], interval: timedelta) -> Alert:
    lines = [f"  {status}: {count}" for status, count in sorted(counts.items())]
    return Alert(
        subject=f"[ct-sync] {sum(counts.values())} member event(s) handled in the last {format_duration(interval)}",
        body="\n".join(lines) + "\n",
    )

"""The worker's summary line, once a minute: what it did since the last one (members synced, unchanged, skipped,
errors, retries), the CrowdTwist calls it spent (its probes' included) and the share of its budget they were, the
pace CrowdTwist's 429s held it to when that is below the budget, the work queue's depth and whether syncing is
paused: if CrowdTwist's breaker paused it, since when and when CrowdTwist is probed next. One line a minute tells an
operator how a run goes; one line per member does not.

Fed from the consumer's thread (outcomes) and the pool's (dead letters); read by the supervisor's tick.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from sync_worker.worker.breaker import Pause

_ERRORS = ("Data Error", "CT Failure", "OIC Failure", "Dead-lettered")


class MinuteSummary:
    def __init__(self, *, budget_per_minute: float) -> None:
        self._budget_per_minute = budget_per_minute  # the CrowdTwist calls this process may make in a minute
        self._lock = threading.Lock()
        self._outcomes: Counter[str] = Counter()
        self._calls = 0
        self._probes = 0
        self._queue_depth: int | None = None

    def outcome(self, outcome: str, *, calls: int = 0) -> None:
        with self._lock:
            self._outcomes[outcome] += 1
            self._calls += calls

    def probed(self, *, calls: int) -> None:
        """One probe of CrowdTwist while syncing was paused."""
        with self._lock:
            self._probes += 1
            self._calls += calls

    def queue_depth(self, depth: int | None) -> None:
        """The work queue's latest depth (the consumer reads it every few seconds)."""
        with self._lock:
            self._queue_depth = depth

    def take(
        self,
        *,
        seconds: float,
        pause: Pause | None,
        also_paused: bool = False,
        pace_per_minute: float | None = None,
    ) -> dict[str, Any]:
        """The line's fields for the last `seconds`, and a fresh start for the next line. `pause`: the breaker's;
        `also_paused`: paused for another cause (the ledger or Siebel down); `pace_per_minute`: the pacer's rate in
        force, shown when below the budget (CrowdTwist's real limit is lower than configured)."""
        with self._lock:
            outcomes, calls, probes = self._outcomes, self._calls, self._probes
            self._outcomes, self._calls, self._probes = Counter(), 0, 0
            depth = self._queue_depth
        budget = self._budget_per_minute * seconds / 60
        errors = {status: outcomes[status] for status in _ERRORS if outcomes[status]}
        return {
            "synced": outcomes["Synced"],
            "unchanged": outcomes["Unchanged"],
            "skipped": outcomes["Skipped"],
            "errors": sum(errors.values()),
            **({"errors_by_status": errors} if errors else {}),
            "retries": outcomes["Retrying"],
            "crowdtwist_calls": calls,
            "budget_use": f"{calls / budget:.0%}" if budget > 0 else None,
            **(
                {"crowdtwist_pace_per_minute": round(pace_per_minute)}
                if pace_per_minute is not None and round(pace_per_minute) < round(self._budget_per_minute)
                else {}
            ),
            "queue_depth": depth,
            **({"probes": probes} if probes else {}),
            "paused": pause is not None or also_paused,
            **(
                {"paused_since": pause.since.isoformat(), "next_probe_at": pause.next_probe_at.isoformat()}
                if pause is not None
                else {}
            ),
        }

"""Readiness (`/readyz`) of the intake and the worker: is the member store answering, is the broker, and whatever
else the caller adds (the worker: its connection and its outage breaker). Cached briefly, so probes cost little."""

from __future__ import annotations

import time
from collections.abc import Callable

from sync_worker.core.errors import CtSyncError
from sync_worker.core.ports import MemberStore

# A Member Number no program uses: looking it up changes nothing anywhere.
PROBE_MEMBER = "ct-sync-check-probe"


class ReadinessProbe:
    """`/readyz` checks for the intake and the worker: cached for a few seconds, so probes cost Siebel little."""

    def __init__(
        self,
        *,
        store: MemberStore,
        broker: Callable[[], object] | None = None,
        extra: Callable[[], dict[str, bool]] = dict,
        every: float = 10.0,
    ) -> None:
        self._store = store
        self._broker = broker
        self._extra = extra
        self._every = every
        self._checked = float("-inf")
        self._last: dict[str, bool] = {}

    def __call__(self) -> dict[str, bool]:
        if time.monotonic() - self._checked >= self._every:
            checks = {"store": _reachable(lambda: self._store.get_member(PROBE_MEMBER))}
            if self._broker is not None:
                checks["broker"] = _reachable(self._broker)
            self._last, self._checked = checks, time.monotonic()
        return {**self._last, **self._extra()}


def _reachable(probe: Callable[[], object]) -> bool:
    try:
        probe()
    except CtSyncError:
        return False
    return True

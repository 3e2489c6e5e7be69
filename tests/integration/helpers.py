"""Helpers for queue tests: a scripted handler, and waiting for a condition."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from sync_worker.core.decisions import Decision, Handled
from sync_worker.core.messages import MemberEvent


class ScriptedHandler:
    """Records every batch; `decide` picks the decision for a batch (ack by default)."""

    def __init__(self, decide: Callable[[Sequence[MemberEvent]], Decision] | None = None) -> None:
        self.batches: list[list[MemberEvent]] = []
        self.redelivered: list[bool] = []  # per batch: did the broker say it delivered one of them before
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set once a sync has begun
        self.decide = decide or (lambda events: Decision("ack", "Synced"))

    def handle(self, events: Sequence[MemberEvent], *, redelivered: bool = False) -> Handled:
        self.entered.set()
        self.gate.wait(10)
        with self.lock:
            self.batches.append(list(events))
            self.redelivered.append(redelivered)
        return Handled(self.decide(events), events[0].member_number, 1)

    def crashed(self, events: Sequence[MemberEvent], exc: Exception) -> Handled:
        raise AssertionError("no crash expected") from exc

    @property
    def handled_events(self) -> list[MemberEvent]:
        with self.lock:
            return [event for batch in self.batches for event in batch]


def eventually(condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")

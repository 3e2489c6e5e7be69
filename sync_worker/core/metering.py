"""Counting the HTTP requests one piece of work spends (the ledger's "CT calls"), retries included, and the seconds
it waited for the pacer (the rest of its time is what sizing its in-flight count by Little's law needs).

Context-local: each worker thread counts its own sync. Stdlib only, so the core may use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class CallMeter:
    calls: int = 0
    paced_seconds: float = 0.0


_current: ContextVar[CallMeter | None] = ContextVar("ct_sync_call_meter", default=None)


@contextmanager
def count_calls() -> Iterator[CallMeter]:
    meter = CallMeter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def record_call() -> None:
    meter = _current.get()
    if meter is not None:
        meter.calls += 1


def record_pacing(seconds: float) -> None:
    meter = _current.get()
    if meter is not None:
        meter.paced_seconds += seconds

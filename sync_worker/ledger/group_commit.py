"""Group commit: writes from many threads share transactions, so a busy worker commits once per batch, not per row.

No writer thread: the thread that gets the write turn commits everything pending at that moment, its own write
and the ones that queued up while the previous transaction ran (the classic leader/follower scheme of database
logs). Every caller returns only once its own write is committed, or raises if that transaction failed, so
callers keep the guarantee of a plain synchronous write: nothing is acked before its history is on disk.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

Write = TypeVar("Write")


@dataclass
class _Pending(Generic[Write]):
    write: Write
    done: bool = False
    error: Exception | None = None


class GroupCommit(Generic[Write]):
    """`submit(write)` blocks until `commit(batch)` has committed a batch holding `write`."""

    def __init__(self, commit: Callable[[list[Write]], None], *, failed: Callable[[Exception], Exception]) -> None:
        self._commit = commit
        self._failed = failed  # one exception per waiting thread: a raised exception object is not shared
        self._pending: list[_Pending[Write]] = []
        self._pending_lock = threading.Lock()
        self._turn = threading.Lock()

    def submit(self, write: Write) -> None:
        mine = _Pending(write)
        with self._pending_lock:
            self._pending.append(mine)
        with self._turn:
            if not mine.done:  # nobody took it along while we waited: commit everything pending now
                with self._pending_lock:
                    batch, self._pending = self._pending, []
                error: Exception | None = None
                try:
                    self._commit([pending.write for pending in batch])
                except Exception as exc:  # noqa: BLE001 - every writer of the batch must hear of any failure
                    error = exc
                for pending in batch:
                    pending.error, pending.done = error, True
        if mine.error is not None:
            raise self._failed(mine.error)

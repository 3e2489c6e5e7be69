"""Per-member locks across worker processes, where the ledger lives — so every deployment has them:

- PostgreSQL ledger (workers on several hosts): session advisory locks, `pg_try_advisory_lock`, all of a process's
  on one connection of its own (a session holds any number of them; one connection per process, however many syncs
  are in flight). PostgreSQL releases them when that connection ends, so a killed worker never leaves a member
  locked. Should that connection break, its locks are gone with it: the process says so in its log and opens a new
  one; the syncs in flight at that moment finish unguarded (the next event of each member is guarded again).
- SQLite ledger (workers on one host): POSIX byte-range locks (`fcntl.lockf`) on one file beside the ledger, one
  byte per member (a 63-bit hash of the Member Number). The kernel releases them when the process ends.

Chosen over a Redis lock (Redis is optional: the shared budget's, not the ledger's) and over sharding by consistent
hash with single-active-consumer queues (one RabbitMQ queue per shard, rebalancing by hand, nothing on the embedded
queue). The cost: one lock and one unlock per sync, measured in docs/benchmarks.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from config.redaction import redact_text
from sync_worker.core.errors import TransientError

log = structlog.get_logger("ct_sync.locks")


def member_key(member_number: str) -> int:
    """A stable signed 64-bit key for a Member Number (PostgreSQL's advisory lock keys are bigint)."""
    return int.from_bytes(hashlib.blake2b(member_number.encode(), digest_size=8).digest(), "big", signed=True)


class AdvisoryLocks:
    """`MemberLocks` on PostgreSQL: the ledger's database, one autocommit session per process."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._session: Connection | None = None
        self._lock = threading.Lock()  # one statement at a time on the one session

    def try_lock(self, member_number: str) -> bool:
        return bool(self._execute(func.pg_try_advisory_lock(member_key(member_number))))

    def unlock(self, member_number: str) -> None:
        try:
            self._execute(func.pg_advisory_unlock(member_key(member_number)))
        except TransientError as exc:  # the session is gone, and its locks with it: nothing left to release
            # One line per member would repeat the session's loss, said once below.
            log.debug("member_lock_release_failed", error=exc.message)

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None
        self._engine.dispose()

    def _execute(self, call: Any) -> Any:
        with self._lock:
            try:
                if self._session is None:
                    # Autocommit: session locks need no transaction, and none is left open between syncs.
                    self._session = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                return self._session.execute(select(call)).scalar()
            except SQLAlchemyError as exc:
                if self._session is not None:
                    self._session.invalidate()  # its locks died with it; the next call opens a new session
                    self._session = None
                    log.warning("member_lock_session_lost", error=type(exc).__name__)
                raise _unavailable(exc) from None


class FileLocks:
    """`MemberLocks` for workers on one host: a byte per member in one lock file. POSIX locks belong to the process,
    so this process counts its own holders per byte (two members may hash to one) and unlocks at the last."""

    _SPAN = 2**62  # bytes of the lock file addressed (a sparse range: nothing is written)

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._holders: Counter[int] = Counter()
        self._lock = threading.Lock()

    def try_lock(self, member_number: str) -> bool:
        offset = member_key(member_number) % self._SPAN
        with self._lock:
            if self._holders[offset] == 0:
                try:
                    fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                except BlockingIOError:
                    return False
            self._holders[offset] += 1
            return True

    def unlock(self, member_number: str) -> None:
        offset = member_key(member_number) % self._SPAN
        with self._lock:
            if self._holders[offset] == 0:
                return
            self._holders[offset] -= 1
            if self._holders[offset] == 0:
                del self._holders[offset]
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, offset)

    def close(self) -> None:
        os.close(self._fd)


def _unavailable(exc: SQLAlchemyError) -> TransientError:
    detail = redact_text(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
    return TransientError(f"member locks unavailable: {detail}", system="ledger")

"""Per-member locks across worker processes: one holder at a time, and a lock that dies with its holder."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from sync_worker.ledger.locks import AdvisoryLocks, FileLocks
from sync_worker.ledger.sql import create_ledger_engine
from tests.integration.helpers import eventually


def test_postgres_advisory_locks_admit_one_session_and_die_with_it(postgres_url: str) -> None:
    first = AdvisoryLocks(create_ledger_engine(postgres_url))
    second = AdvisoryLocks(create_ledger_engine(postgres_url))  # another worker process: its own sessions
    try:
        assert first.try_lock("296-1")
        assert not second.try_lock("296-1")
        assert second.try_lock("296-2")  # another member is free
        first.unlock("296-1")
        assert second.try_lock("296-1")
        second.close()  # the process ends: its connections close, and with them (once its backend exits) its locks
        eventually(lambda: first.try_lock("296-1"))
    finally:
        first.close()
        second.close()


def _hold_until_told(path: Path, held: Any, release: Any) -> None:
    locks = FileLocks(path)
    assert locks.try_lock("296-1")
    held.set()
    release.wait(30)  # then the process exits without unlocking: the kernel drops its locks


def test_file_locks_admit_one_process_and_die_with_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.locks"
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    other = context.Process(target=_hold_until_told, args=(path, held, release))
    other.start()
    try:
        assert held.wait(30)
        locks = FileLocks(path)
        assert not locks.try_lock("296-1")
        assert locks.try_lock("296-2")
        release.set()
        other.join(30)
        assert locks.try_lock("296-1")
        locks.close()
    finally:
        release.set()
        other.join(30)


def test_two_members_sharing_a_byte_in_one_process_keep_it_until_both_are_done(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path / "ledger.locks")
    locks._SPAN = 1  # type: ignore[misc]  # every member on one byte: the collision made certain
    assert locks.try_lock("296-1")
    assert locks.try_lock("296-2")
    locks.unlock("296-1")
    assert locks._holders == {0: 1}  # still held for 296-2
    locks.unlock("296-2")
    assert locks._holders == {}
    locks.close()

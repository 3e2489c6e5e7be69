"""Group commit: concurrent writes share transactions, and nobody returns before their own write is committed."""

from __future__ import annotations

import threading
import time

import pytest

from sync_worker.core.errors import TransientError
from sync_worker.ledger.group_commit import GroupCommit


def _failed(error: Exception) -> TransientError:
    return TransientError(f"ledger unavailable: {error}", system="ledger")


def test_a_lone_write_is_committed_before_submit_returns() -> None:
    committed: list[list[str]] = []
    group = GroupCommit(committed.append, failed=_failed)
    group.submit("a")
    assert committed == [["a"]]


def test_writes_that_queue_during_a_commit_share_the_next_one() -> None:
    committed: list[list[int]] = []
    in_first_commit, first_commit_may_end = threading.Event(), threading.Event()

    def commit(batch: list[int]) -> None:
        if not committed:
            in_first_commit.set()
            first_commit_may_end.wait(10)
        committed.append(batch)

    group: GroupCommit[int] = GroupCommit(commit, failed=_failed)
    returned: list[int] = []

    def write(value: int) -> None:
        group.submit(value)
        returned.append(value)

    leader = threading.Thread(target=write, args=(0,))
    leader.start()
    assert in_first_commit.wait(10)  # the leader's write is taken and its commit is held open
    followers = [threading.Thread(target=write, args=(n,)) for n in range(1, 9)]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 10
    while len(group._pending) < 8 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert returned == []  # nobody is back before their write is committed
    first_commit_may_end.set()
    for thread in [leader, *followers]:
        thread.join(10)

    assert committed[0] == [0]
    assert sorted(committed[1]) == list(range(1, 9))  # eight writes, one commit
    assert len(committed) == 2
    assert sorted(returned) == list(range(9))


def test_many_threads_each_write_committed_exactly_once() -> None:
    committed: list[list[tuple[int, int]]] = []
    group: GroupCommit[tuple[int, int]] = GroupCommit(committed.append, failed=_failed)

    def writer(thread: int) -> None:
        for sequence in range(200):
            group.submit((thread, sequence))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    writes = [write for batch in committed for write in batch]
    assert sorted(writes) == [(thread, sequence) for thread in range(16) for sequence in range(200)]
    for thread in range(16):  # one thread's writes are committed in its order
        assert [sequence for owner, sequence in writes if owner == thread] == list(range(200))


def test_every_writer_of_a_failed_commit_gets_its_own_error_and_the_next_commit_works() -> None:
    failing = threading.Event()
    failing.set()
    committed: list[list[str]] = []

    def commit(batch: list[str]) -> None:
        if failing.is_set():
            raise OSError("disk I/O error")
        committed.append(batch)

    group = GroupCommit(commit, failed=_failed)
    errors: list[TransientError] = []
    for value in ("a", "b"):
        with pytest.raises(TransientError, match="ledger unavailable: disk I/O error") as raised:
            group.submit(value)
        errors.append(raised.value)
    assert errors[0] is not errors[1]

    failing.clear()
    group.submit("c")
    assert committed == [["c"]]
